"""Random formula skeletons: a tree shape drawn uniformly among those of the chosen length,
operators drawn by weight, leaves ``x1..xk`` (each at least once), ``C`` and small integers;
and the cheap structural guards a skeleton must pass before its data are drawn.

>>> from chatsr.data.generator_config import GeneratorConfig
>>> names, k = _TreeSampler(GeneratorConfig(max_vars=2)).tree(np.random.default_rng(0))
>>> len(names) <= 15 and {f"x{i}" for i in range(1, k + 1)} <= set(names)
True
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

import numpy as np

from chatsr.data.generator_config import GeneratorConfig, _arities, _completions, _lengths
from chatsr.symbolic.operators import CONSTANT, OPERATORS, arity

_INVERSE_PAIRS = {("exp", "log"), ("log", "exp"), ("sqrt", "pow2"), ("pow2", "sqrt"),
                  ("inv", "inv"), ("neg", "neg"), ("abs", "abs"), ("abs", "pow2"),
                  ("abs", "sqrt"), ("abs", "exp"), ("abs", "cosh"), ("sin", "asin"),
                  ("asin", "sin"), ("cos", "acos"), ("acos", "cos"), ("tan", "atan"),
                  ("atan", "tan")}
_VARIABLES = [f"x{i}" for i in range(1, 100)]
_INTEGERS = [f"const_{i}" for i in range(1, 6)]


def _step(F: list, j: int, e: int, m: int, unary: float) -> tuple[float, float]:
    total = F[j][e][m]
    if not total:  # unreachable state
        return 0.0, 0.0
    return F[j][e - 1][m - 1] / total, (F[j][e - 1][m - 1] + unary * F[j][e][m - 1]) / total


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative shares of three weights, without the last (bisect gives 0, 1 or 2)."""
    total = sum(weights)
    return [w / total for w in itertools.accumulate(weights)][:2]


class _TreeSampler:
    """The shape and operator tables of a config, and random skeletons drawn with them."""

    def __init__(self, config: GeneratorConfig):
        self.config = config
        self.lengths = _lengths(config)
        weights = dict(config.operators)
        self.operator_names = [n for n, w in weights.items() if w > 0]
        self.ops, self.op_cum = {}, {}
        for a in (1, 2):
            names = [n for n in self.operator_names if OPERATORS[n].arity == a]
            self.ops[a] = names
            self.op_cum[a] = list(itertools.accumulate(weights[n] for n in names))
        unary, binary = _arities(config)
        F = _completions(config.max_length, unary, binary, config.max_vars - 1)
        size = config.max_length + 1
        # step[j][e][m]: (P(leaf), P(leaf or unary)) for the next node in preorder, with e open
        # slots, m nodes to place, j binary nodes still needed
        self.step = [[[_step(F, j, e, m, unary) for m in range(size)] for e in range(size)]
                     for j in range(config.max_vars)]
        self.leaf_cum = _cumulative(config.leaf_probs)

    def tree(self, rng: np.random.Generator) -> tuple[list[str], int]:
        """A random skeleton and its number of variables.

        Uniform numbers are drawn in two batches and consumed in Python: one numpy call per
        choice would cost more than the whole tree.
        """
        c = self.config
        u = rng.random(2 * c.max_length + 2).tolist()
        k = 1 + int(u[0] * c.max_vars)
        lengths = self.lengths[k]
        m = lengths[int(u[1] * len(lengths))]
        names = [""] * m
        leaves = []
        e, j = 1, k - 1  # open slots; binary nodes still needed for k leaves
        for i in range(m):
            p_leaf, p_unary = self.step[j][e][m - i]
            v = u[2 + i]
            if v < p_leaf:
                leaves.append(i)
                e -= 1
                continue
            a = 1 if v < p_unary else 2
            cum = self.op_cum[a]
            names[i] = self.ops[a][bisect.bisect_right(cum, u[2 + m + i] * cum[-1])]
            e += a - 1
            j = max(j - a + 1, 0)
        n = len(leaves)
        v = rng.random(3 * n).tolist()
        for r in range(k):  # partial Fisher-Yates: k random leaves carry x1..xk
            s = r + int(v[r] * (n - r))
            leaves[r], leaves[s] = leaves[s], leaves[r]
            names[leaves[r]] = _VARIABLES[r]
        p_var, p_const = self.leaf_cum
        for i in range(k, n):
            kind, value = v[n + i], v[2 * n + i]
            names[leaves[i]] = _VARIABLES[int(value * k)] if kind < p_var else CONSTANT \
                if kind < p_const else _INTEGERS[int(value * 5)]
        return names, k


def _structure_problem(names: list[str]) -> str:
    """Cheap structural rejections: an operator of constants only, an inverse pair, ``a - a``."""
    stack: list[tuple[int, int, bool]] = []  # (start, end, constant) of subtrees, leftmost last
    for i in range(len(names) - 1, -1, -1):
        name = names[i]
        a = arity(name)
        if a == 0:
            stack.append((i, i + 1, name[0] != "x"))
            continue
        first = stack.pop()
        if (name, names[i + 1]) in _INVERSE_PAIRS:
            return "inverse pair"
        if a == 1:
            if first[2]:
                return "constant subtree"
            stack.append((i, first[1], False))
            continue
        second = stack.pop()
        if first[2] and second[2]:
            return "constant subtree"
        if name in ("add", "sub", "div") and \
                names[first[0]:first[1]] == names[second[0]:second[1]]:
            return "identical operands"
        stack.append((i, second[1], False))
    return ""


# The science-shaped prior ----------------------------------------------------------------------
# Exponents of power laws (weights), spelled with exact tokens so that canonical forms read them
# back exactly: x**(3/2) is pow3(sqrt(x)), x**4 is pow(x, 4).
_EXPONENTS = ((1, 0.36), (2, 0.16), (-1, 0.16), (-2, 0.08), ("1/2", 0.07), ("-1/2", 0.05),
              (3, 0.04), ("3/2", 0.03), ("-3/2", 0.02), (-3, 0.02), (4, 0.01))
_SPELLED = {1: [], 2: ["pow2"], 3: ["pow3"], "1/2": ["sqrt"], "3/2": ["pow3", "sqrt"]}
# Functions of a dimensionless group g, as preorder templates ("G" is g)
_GROUP_FUNCTIONS = (
    (["exp", "neg", "G"], 0.22), (["exp", "G"], 0.05), (["sin", "G"], 0.12),
    (["cos", "G"], 0.12), (["log", "G"], 0.08), (["sqrt", "add", "const_1", "G"], 0.06),
    (["sqrt", "sub", "const_1", "G"], 0.06), (["inv", "sqrt", "sub", "const_1", "G"], 0.08),
    (["inv", "add", "const_1", "G"], 0.07), (["sub", "const_1", "G"], 0.05),
    (["tanh", "G"], 0.04), (["sub", "const_1", "exp", "neg", "G"], 0.05),
)
_GROUP_EXPONENTS = ((1, 0.5), (-1, 0.3), (2, 0.1), (-2, 0.1))  # groups are mostly ratios
_FORMS = (("power law", 0.35), ("sum", 0.25), ("function", 0.3), ("norm", 0.1))
_VARIABLE_COUNTS = (0.15, 0.22, 0.22, 0.16, 0.1, 0.07, 0.05, 0.03)  # k = 1..8: few are common


def _choice(rng: np.random.Generator, table: Sequence[tuple]) -> object:
    weights = [w for _, w in table]
    return table[bisect.bisect_right(list(itertools.accumulate(weights)),
                                     rng.random() * sum(weights))][0]


def _chain(op: str, parts: list[list[str]]) -> list[str]:
    """``op`` right-nested over the parts, in preorder."""
    out: list[str] = []
    for i, part in enumerate(parts):
        out += ([op] if i < len(parts) - 1 else []) + part
    return out


class _ScienceSampler:
    """Formulas shaped like the ones scientists look for: products and ratios of powers of
    variables (rational exponents), sums of a few of them, functions of dimensionless-looking
    groups (``exp(-a/b)``, ``sin(w*t)``, ``1/sqrt(1 - v**2/c**2)``) and Euclidean norms."""

    def __init__(self, config: GeneratorConfig):
        counts = _VARIABLE_COUNTS[:config.science_max_vars]
        self.counts = tuple((k, w) for k, w in enumerate(counts, 1))

    def tree(self, rng: np.random.Generator) -> tuple[list[str], int]:
        k = _choice(rng, self.counts)
        variables = [f"x{i}" for i in range(1, k + 1)]
        form = _choice(rng, _FORMS)
        order = [variables[i] for i in rng.permutation(k)]
        if form == "power law" or k == 1 and form != "function":
            return self.monomial(rng, order, coefficient=True), k
        if form == "sum":
            parts = self.split(rng, order, int(rng.integers(2, 4)))
            return _chain("add", [self.monomial(rng, p, coefficient=True) for p in parts]), k
        if form == "norm":
            first, rest = self.split(rng, order, 2)
            squares = _chain("add", [["pow2", v] if j == 0 or rng.random() < 0.6
                                     else ["mul", "C", "pow2", v] for j, v in enumerate(first)])
            norm = ["sqrt", *squares] if len(first) > 1 and rng.random() < 0.7 else squares
            return (["mul", *self.monomial(rng, rest, coefficient=False), *norm]
                    if rest and rng.random() < 0.7 else norm), k
        # a function of a group, times a power law of the other variables
        size = min(k, int(rng.integers(1, 4)))
        group_vars, rest = order[:size], order[size:]
        group = self.monomial(rng, group_vars, coefficient=len(group_vars) == 1
                              or rng.random() < 0.4, exponents=_GROUP_EXPONENTS)
        template = _choice(rng, _GROUP_FUNCTIONS)
        i = template.index("G")
        function = [*template[:i], *group, *template[i + 1:]]
        if not rest:
            return (["mul", "C", *function] if rng.random() < 0.5 else function), k
        return ["mul", *self.monomial(rng, rest, coefficient=True), *function], k

    @staticmethod
    def split(rng: np.random.Generator, items: list[str], parts: int) -> list[list[str]]:
        """``items`` cut into ``parts`` groups (as many as there are items, at most); a
        group of one item may borrow another, so that sums share variables."""
        parts = min(parts, len(items))
        cuts = sorted(rng.choice(np.arange(1, len(items)), parts - 1, replace=False).tolist()) \
            if parts > 1 else []
        groups = [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]
        if len(items) > 1:
            for g in groups:
                if len(g) == 1 and rng.random() < 0.3:
                    g.append(next(v for v in items if v not in g))
        return groups

    def monomial(self, rng: np.random.Generator, variables: list[str], *, coefficient: bool,
                 exponents: Sequence[tuple] = _EXPONENTS) -> list[str]:
        """A coefficient times powers of ``variables``, those with negative exponents under
        one division."""
        top: list[list[str]] = []
        bottom: list[list[str]] = []
        for v in variables:
            e = _choice(rng, exponents)
            negative = e.startswith("-") if isinstance(e, str) else e < 0
            magnitude = e.lstrip("-") if isinstance(e, str) else abs(e)
            spelled = ["pow", v, "const_4"] if magnitude == 4 else [*_SPELLED[magnitude], v]
            (bottom if negative else top).append(spelled)
        if not top:
            top.append(["const_1"] if not coefficient else [])
        if coefficient and rng.random() < 0.75:
            top.insert(0, ["C"])
        top = [t for t in top if t]
        numerator = _chain("mul", top) if top else ["const_1"]
        return ["div", *numerator, *_chain("mul", bottom)] if bottom else numerator
