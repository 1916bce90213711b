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
