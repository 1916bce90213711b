"""Synthetic training samples: random formulas, data drawn from them, ChatSR's JSON format.

How a sample is made, and why it differs from the reference generator (SPEC.md):

1. **Formula skeleton.** ``k ~ U{1..max_vars}`` variables and a length ``m`` uniform over the
   feasible lengths in ``[min_length, max_length]``; then a tree shape drawn *uniformly* among the
   unary–binary shapes with ``m`` nodes and at least ``k`` leaves, by counting completions as
   Lample & Charton (2019) do with D(e, n) (their count is over operators, ours over all nodes
   and with the leaf condition, so no shape is rejected). Operators are drawn by weight within
   each arity; leaves are ``x1..xk`` (each at least once), ``C`` placeholders and, rarely, the
   integers ``const_1..5``.
2. **Guards.** Cheap structural rules (no operator of constants only, no inverse pairs such as
   ``exp(log(·))``, no ``a - a``), then the canonical key (:mod:`chatsr.symbolic.skeletons`): the key
   must still contain every variable (``x2 - x2`` cancels) and as many constants as the tree
   (``C*C*x`` has one), must not be a benchmark skeleton (:class:`~chatsr.symbolic.skeletons.ExclusionSet`)
   and, with ``unique``, must not repeat.
3. **Data.** Each variable gets its own support (symmetric, positive or log-uniform ranges, of
   many scales); constants are drawn per sample (log-uniform magnitude, random sign, sometimes
   a small integer); 10–800 points log-uniform. Targets with too many non-finite values, huge
   values or no variation are redrawn, then the formula is dropped; a few non-finite points are
   dropped. Optional Gaussian noise relative to std(y).
4. **Prompt.** The human turn may state true facts about the target (:mod:`chatsr.data.prompts`).

Randomness is seeded per chunk of ``CHUNK_SIZE`` samples (``default_rng([seed, chunk])``), and
chunks are merged in order, so the output depends on the seed and never on ``workers``.

>>> samples = generate_samples(3, max_vars=2, num_points=20, seed=0, progress=False)
>>> [s["id"] for s in samples], samples[0]["num_points"], len(samples[0]["data_points"][0])
(['sr_0', 'sr_1', 'sr_2'], 20, 11)
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import logging
import math
import multiprocessing
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from chatsr.data.benchmarks import benchmark_exclusions
from chatsr.data.prompts import make_prompt
from chatsr.data.records import make_record
from chatsr.symbolic.expressions import Expression, ExpressionError
from chatsr.symbolic.operators import CONSTANT, OPERATORS, arity, canonical_name
from chatsr.symbolic.skeletons import VARIABLE_IN_KEY, ExclusionSet, written_key

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_OPERATORS",
    "GeneratorConfig",
    "generate_samples",
    "iter_samples",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 32  # samples per seeded chunk: the unit of work of one process
_MAX_TRIES = 50 * CHUNK_SIZE  # candidates per chunk before it returns short
_MAX_STALE = 20  # chunks in a row without a new sample before generation gives up

# Relative frequencies within each arity (NeSymReS-like: arithmetic first, then the common
# functions, then the rare ones real formulas still need).
DEFAULT_OPERATORS: dict[str, float] = {
    "add": 1.0, "sub": 0.6, "mul": 1.0, "div": 0.6, "pow": 0.1,
    "sin": 0.35, "cos": 0.35, "tan": 0.05, "log": 0.25, "exp": 0.25, "sqrt": 0.3, "abs": 0.05,
    "neg": 0.05, "inv": 0.2, "pow2": 0.4, "pow3": 0.15, "asin": 0.05, "acos": 0.03,
    "atan": 0.05, "sinh": 0.02, "cosh": 0.02, "tanh": 0.05,
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What generated samples look like. Every field is also a keyword of
    :func:`generate_samples` and :func:`iter_samples`.

    >>> GeneratorConfig(max_vars=2).num_points
    (10, 800)
    >>> GeneratorConfig(min_length=9, max_length=5)
    Traceback (most recent call last):
    ...
    ValueError: min_length (9) must not exceed max_length (5)
    """

    max_length: int = 15  # most tokens in a formula (preorder)
    min_length: int = 1  # fewest tokens
    max_vars: int = 3  # a formula uses x1..xk, k ~ U{1..max_vars}, each at least once
    max_dims: int = 10  # x columns of data_points (the vocabulary's x1..x10); unused ones are 0
    num_points: int | tuple[int, int] = (10, 800)  # points per sample: fixed, or log-uniform range
    noise: float = 0.0  # std of Gaussian noise on y, relative to std(y)
    operators: Mapping[str, float] | Sequence[str] | None = None  # weights; None: DEFAULT_OPERATORS
    exclude: str | Sequence[str | Expression] | None = "benchmarks"  # skeletons never emitted
    unary_weight: float = 1.0  # a unary node's weight in the shape count: 1 = uniform shapes
    leaf_probs: tuple[float, float, float] = (0.55, 0.4, 0.05)  # extra leaves: var, C, 1..5
    constant_range: tuple[float, float] = (0.1, 10.0)  # |C| log-uniform here, random sign
    integer_constant_prob: float = 0.2  # chance a C is a small integer ±1..5 instead
    support_weights: tuple[float, float, float] = (0.4, 0.4, 0.2)  # x ranges: ±a, [lo,hi], log
    y_max: float = 1e6  # reject targets with |y| above this
    min_rel_std: float = 1e-3  # reject targets with std(y) below this times |mean(y)|
    max_nonfinite: float = 0.05  # largest share of non-finite y that is dropped, not rejected
    fact_prob: float = 0.7  # share of prompts that state facts about the target

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:  # frozen: normalise fields in place once
            object.__setattr__(self, name, value)

        for name in ("max_length", "min_length", "max_vars", "max_dims"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must not exceed max_length "
                             f"({self.max_length})")
        if self.max_vars > self.max_dims:
            raise ValueError(f"max_vars ({self.max_vars}) must not exceed max_dims "
                             f"({self.max_dims}), the number of x columns")
        points = self.num_points
        points = (points, points) if isinstance(points, int) else tuple(points)
        if len(points) != 2 or not all(isinstance(p, int) for p in points) or \
                not 1 <= points[0] <= points[1]:
            raise ValueError(f"num_points must be a positive integer or a range (low, high) "
                             f"with 1 <= low <= high, got {self.num_points!r}")
        fix("num_points", points)
        for name, most in (("noise", math.inf), ("min_rel_std", math.inf),
                           ("unary_weight", math.inf), ("integer_constant_prob", 1),
                           ("max_nonfinite", 1), ("fact_prob", 1)):
            value = getattr(self, name)
            if not 0 <= value <= most:
                raise ValueError(f"{name} must be a number in [0, {most}], got {value!r}")
        for name in ("leaf_probs", "support_weights"):
            value = tuple(getattr(self, name))
            if len(value) != 3 or min(value) < 0 or sum(value) <= 0:
                raise ValueError(f"{name} must be three non-negative weights, not all zero, "
                                 f"got {value!r}")
            fix(name, value)
        low, high = self.constant_range
        if not 0 < low <= high:
            raise ValueError(f"constant_range must be (low, high) with 0 < low <= high, got "
                             f"{self.constant_range!r}")
        fix("constant_range", (float(low), float(high)))
        if not self.y_max > 0:
            raise ValueError(f"y_max must be positive, got {self.y_max!r}")
        fix("operators", _operator_weights(self.operators))
        fix("exclude", self.exclude if self.exclude is None or isinstance(self.exclude, str)
            else tuple(self.exclude))
        if isinstance(self.exclude, str) and self.exclude != "benchmarks":
            raise ValueError(f"exclude must be 'benchmarks', None or a list of formulas, got "
                             f"{self.exclude!r}")
        _lengths(self)  # raises when no formula fits the lengths and variables


def _operator_weights(operators: Mapping[str, float] | Sequence[str] | None
                      ) -> tuple[tuple[str, float], ...]:
    if operators is None:
        operators = DEFAULT_OPERATORS
    elif isinstance(operators, str):
        raise ValueError(f"operators must be a list of names or a mapping name -> weight, got "
                         f"the string {operators!r}")
    # a mapping, names (weight 1), or (name, weight) pairs as a normalised config holds them
    items = operators.items() if isinstance(operators, Mapping) else [
        (o, 1.0) if isinstance(o, str) else o for o in operators]
    weights = {}
    for name, weight in items:
        canonical = name if name in OPERATORS else _operator_name(name)
        if not weight >= 0:
            raise ValueError(f"operators: the weight of {name!r} must be >= 0, got {weight!r}")
        weights[canonical] = float(weight)
    if not any(weights.values()):
        raise ValueError(f"operators must enable at least one operator, got {operators!r}")
    return tuple(weights.items())


def _operator_name(spelling: str) -> str:
    try:
        name = canonical_name(spelling)
    except ExpressionError:
        name = ""
    if name not in OPERATORS:
        raise ValueError(f"operators: {spelling!r} is not an operator; choose from "
                         f"{', '.join(OPERATORS)}")
    return name


@functools.lru_cache(maxsize=8)
def _exclusion(exclude: str | tuple | None) -> ExclusionSet:
    if exclude == "benchmarks":
        return benchmark_exclusions()
    return ExclusionSet(exclude or ())


# Tree shapes ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _completions(max_length: int, unary: float, binary: bool, min_binary: int) -> list:
    """``F[j][e][m]``: shapes that fill ``e`` open slots with exactly ``m`` nodes, at least ``j``
    of them binary (a tree has one more leaf than binary nodes), each unary node counting
    ``unary`` (Lample & Charton's D(e, n), counted over all nodes, with the leaf condition)."""
    size = max_length + 2
    F = [[[0] * size for _ in range(size + 1)] for _ in range(min_binary + 1)]
    for j in range(min_binary + 1):
        F[j][0][0] = 1 if j == 0 else 0
        for m in range(1, size):
            for e in range(1, m + 1):
                F[j][e][m] = (F[j][e - 1][m - 1] + unary * F[j][e][m - 1]
                              + binary * F[max(j - 1, 0)][e + 1][m - 1])
    return F


def _step(F: list, j: int, e: int, m: int, unary: float) -> tuple[float, float]:
    total = F[j][e][m]
    if not total:  # unreachable state
        return 0.0, 0.0
    return F[j][e - 1][m - 1] / total, (F[j][e - 1][m - 1] + unary * F[j][e][m - 1]) / total


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative shares of three weights, without the last (bisect gives 0, 1 or 2)."""
    total = sum(weights)
    return [w / total for w in itertools.accumulate(weights)][:2]


def _lengths(config: GeneratorConfig) -> dict[int, list[int]]:
    """The feasible formula lengths for each variable count ``k``."""
    F = _completions(config.max_length, *_arities(config), config.max_vars - 1)
    lengths = {k: [m for m in range(config.min_length, config.max_length + 1)
                   if F[k - 1][1][m] > 0] for k in range(1, config.max_vars + 1)}
    for k, feasible in lengths.items():
        if feasible:
            continue
        if k > 1 and not _arities(config)[1]:
            raise ValueError(f"max_vars={config.max_vars} needs a binary operator to combine "
                             f"variables; enable one in operators")
        if 2 * k - 1 > config.max_length:
            raise ValueError(f"max_vars={config.max_vars} needs formulas of at least "
                             f"{2 * k - 1} tokens, but max_length is {config.max_length}")
        raise ValueError(f"no formula of {config.min_length} to {config.max_length} tokens "
                         f"can be built: without a unary operator every length is odd")
    return lengths


def _arities(config: GeneratorConfig) -> tuple[float, bool]:
    """The unary node weight (0 when no unary operator is enabled), and whether any binary one
    is."""
    enabled = {OPERATORS[n].arity for n, w in config.operators if w > 0}
    return (config.unary_weight if 1 in enabled else 0.0), 2 in enabled


# Evaluation: the operators' own numpy templates, applied node by node. For one-off skeletons
# this is ~5x cheaper than compiling them (chatsr.symbolic.evaluation), and it is the same arithmetic.
_NUMPY = {name: eval(f"lambda {', '.join('ab'[:op.arity])}: {op.numpy.format('a', 'b')}",
                     {"np": np}) for name, op in OPERATORS.items()}
_INVERSE_PAIRS = {("exp", "log"), ("log", "exp"), ("sqrt", "pow2"), ("pow2", "sqrt"),
                  ("inv", "inv"), ("neg", "neg"), ("abs", "abs"), ("abs", "pow2"),
                  ("abs", "sqrt"), ("abs", "exp"), ("abs", "cosh"), ("sin", "asin"),
                  ("asin", "sin"), ("cos", "acos"), ("acos", "cos"), ("tan", "atan"),
                  ("atan", "tan")}
# Supports, log10 of their scales: symmetric U(-a, a); positive U(lo, lo * r) (e.g. [0.4, 30],
# [300, 1000]); log-uniform over [lo, lo * r]. Positive ones are mirrored to negative at times.
_SYMMETRIC_A = (-0.3, 1.0)
_POSITIVE_LO, _POSITIVE_RATIO = (-2.0, 2.5), (0.2, 1.5)
_LOG_LO, _LOG_RATIO = (-2.0, 1.0), (1.0, 3.0)
_NEGATIVE_PROB = 0.15
_DATA_TRIES = 3  # data draws per skeleton before it is given up
_VARIABLES = [f"x{i}" for i in range(1, 100)]
_INTEGERS = [f"const_{i}" for i in range(1, 6)]


class _Sampler:
    """Everything precomputed from a config; one per process and config."""

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
        self.support_cum = _cumulative(config.support_weights)
        self.exclusion = _exclusion(config.exclude)

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

    def sample(self, rng: np.random.Generator, seen: set[str] | None
               ) -> tuple[str, dict] | str:
        """One sample (``data_points`` an array) and its skeleton key, or the reason the
        candidate was rejected."""
        names, k = self.tree(rng)
        reason = _structure_problem(names)
        if reason:
            return reason
        skeleton = tuple(names)
        key = written_key(skeleton)
        if len(set(VARIABLE_IN_KEY.findall(key))) < k:
            return "cancels a variable"
        if key.count("C") < names.count(CONSTANT):
            return "redundant constants"
        if seen is not None and key in seen:
            return "duplicate"
        if skeleton in self.exclusion:
            return "excluded skeleton"
        data = self.data(rng, names, k)
        if isinstance(data, str):
            return data
        X, y, constants = data
        if seen is not None:
            seen.add(key)
        prompt = make_prompt(names, X, self.operator_names, rng,
                             fact_prob=self.config.fact_prob)
        return key, make_record(names, constants, X, y, max_dims=self.config.max_dims,
                                prompt=prompt, lists=False)

    def data(self, rng: np.random.Generator, names: list[str], k: int
             ) -> tuple[np.ndarray, np.ndarray, list[float]] | str:
        """``X`` (n, k), ``y`` (n,) and the constants, or why no draw gave usable targets."""
        c = self.config
        low, high = c.num_points
        n = min(int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))), high)
        n_draw = n + math.ceil(n * c.max_nonfinite)  # a few spare points for dropped ones
        reason = ""
        for _ in range(_DATA_TRIES):
            X = self.inputs(rng, k, n_draw)
            constants = self.constants(rng, names.count(CONSTANT))
            y = _evaluate(names, X, constants)
            finite = np.isfinite(y)
            if finite.sum() < n:
                reason = "non-finite targets"
                continue
            X, y = (X[finite][:n], y[finite][:n]) if not finite.all() else (X[:n], y[:n])
            std = y.std()
            if np.abs(y).max() > c.y_max:
                reason = "targets too large"
            elif not std > max(c.min_rel_std * abs(y.mean()), 1e-10):
                reason = "constant targets"
            else:
                if c.noise:
                    y = y + c.noise * std * rng.standard_normal(n)
                return X, y, constants
        return reason

    def inputs(self, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
        """``n`` points of ``k`` variables, each from its own randomly drawn support."""
        X = rng.random((n, k))
        for j, (u_kind, u_low, u_width, u_sign) in enumerate(rng.random((k, 4)).tolist()):
            kind = bisect.bisect_right(self.support_cum, u_kind)
            if kind == 0:
                X[:, j] = 10 ** _between(_SYMMETRIC_A, u_low) * (2 * X[:, j] - 1)
                continue
            low = 10 ** _between(_POSITIVE_LO if kind == 1 else _LOG_LO, u_low)
            if kind == 1:
                X[:, j] = low + low * (10 ** _between(_POSITIVE_RATIO, u_width) - 1) * X[:, j]
            else:
                X[:, j] = low * 10 ** (_between(_LOG_RATIO, u_width) * X[:, j])
            if u_sign < _NEGATIVE_PROB:
                X[:, j] = -X[:, j]
        return X

    def constants(self, rng: np.random.Generator, count: int) -> list[float]:
        """Values for the ``C`` placeholders: log-uniform magnitude or a small integer, ± sign."""
        log_low, log_high = (math.log(b) for b in self.config.constant_range)
        values = []
        for u_value, u_integer, u_sign in rng.random((count, 3)).tolist():
            value = 1.0 + int(u_value * 5) if u_integer < self.config.integer_constant_prob \
                else math.exp(log_low + u_value * (log_high - log_low))
            values.append(-value if u_sign < 0.5 else value)
        return values


def _between(bounds: tuple[float, float], u: float) -> float:
    return bounds[0] + u * (bounds[1] - bounds[0])


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


def _evaluate(names: list[str], X: np.ndarray, constants: list[float]) -> np.ndarray:
    """Evaluate a preorder skeleton on ``X`` (n, k); same values as :class:`Expression`."""
    stack: list = []
    c = len(constants)
    for i in range(len(names) - 1, -1, -1):
        name = names[i]
        op = _NUMPY.get(name)
        if op is not None:
            stack.append(op(*(stack.pop() for _ in range(OPERATORS[name].arity))))
        elif name == CONSTANT:
            c -= 1  # preorder numbering, visited right to left
            stack.append(constants[c])
        elif name[0] == "x":
            stack.append(X[:, int(name[1:]) - 1])
        else:
            stack.append(float(name[6:]))  # const_k
    return stack.pop()  # an array: every formula has a variable


@functools.lru_cache(maxsize=8)
def _sampler(config: GeneratorConfig) -> _Sampler:
    return _Sampler(config)


def _chunk(config: GeneratorConfig, seed: int, chunk: int, unique: bool
           ) -> tuple[list[tuple[str, dict]], Counter]:
    """``CHUNK_SIZE`` samples (with their skeleton keys) from their own seeded stream, or
    fewer if ``_MAX_TRIES`` candidates do not give them."""
    sampler = _sampler(config)
    rng = np.random.default_rng([seed, chunk])
    out: list[tuple[str, dict]] = []
    seen: set[str] | None = set() if unique else None
    stats: Counter = Counter()
    with np.errstate(all="ignore"):
        for _ in range(_MAX_TRIES):  # fewer samples only where the settings allow few formulas
            result = sampler.sample(rng, seen)
            if isinstance(result, str):
                stats[result] += 1
                continue
            out.append(result)
            if len(out) == CHUNK_SIZE:
                break
    stats["accepted"] += len(out)
    return out, stats


def _too_few(found: int, stats: Counter) -> RuntimeError:
    rejected = {k: v for k, v in stats.most_common() if k != "accepted"}
    return RuntimeError(f"only {found} sample(s) after {sum(stats.values())} candidate formulas "
                        f"(rejected: {rejected}); ask for fewer samples, allow longer formulas "
                        f"or more operators, or allow repeated skeletons (unique=False)")


def _chunks(config: GeneratorConfig, seed: int, chunk_ids: Iterable[int], unique: bool,
            workers: int) -> Iterator[tuple[list[tuple[str, dict]], Counter]]:
    """Chunk results in the order of ``chunk_ids``, computed by ``workers`` processes."""
    if workers == 1:
        for chunk in chunk_ids:
            yield _chunk(config, seed, chunk, unique)
        return
    ids = iter(chunk_ids)
    # Not multiprocessing.Pool: a consumer that stops early left it to terminate(), which can
    # deadlock on the task queue's lock (seen in CI). The executor cancels what has not started
    # and waits for the chunks in progress (each under a second) instead.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context())
    try:
        pending = deque(pool.submit(_chunk, config, seed, chunk, unique)
                        for chunk in itertools.islice(ids, 2 * workers))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(_chunk, config, seed, chunk, unique)
                           for chunk in itertools.islice(ids, 1))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _resolve(config: GeneratorConfig | None, options: dict[str, Any]) -> GeneratorConfig:
    config = config or GeneratorConfig()
    unknown = set(options) - {f.name for f in dataclasses.fields(GeneratorConfig)}
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}: the options are the "
                        f"fields of GeneratorConfig")
    return dataclasses.replace(config, **options) if options else config


def _check_count(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _finish(record: dict, index: int) -> dict:
    """Give a record from :func:`_chunk` its id and JSON-ready data points."""
    record["id"] = f"sr_{index}"
    record["data_points"] = record["data_points"].tolist()
    return record


def generate_samples(num_samples: int, config: GeneratorConfig | None = None, *, seed: int = 0,
                     workers: int = 1, unique: bool = True, progress: bool = True,
                     **options: Any) -> list[dict]:
    """Generate ``num_samples`` samples in ChatSR's JSON format (with ``constants``).

    Parameters
    ----------
    num_samples
        How many samples.
    config
        A :class:`GeneratorConfig`; ``options`` override its fields, e.g. ``max_length=15,
        min_length=1, max_vars=3, max_dims=10, num_points=(10, 800), noise=0.0,
        operators=None, exclude="benchmarks"``.
    seed
        The output depends on the seed only, not on ``workers``.
    workers
        Processes generating chunks of ``CHUNK_SIZE`` samples in parallel.
    unique
        Every skeleton at most once (by :func:`chatsr.symbolic.skeletons.skeleton_key`), so no
        skeleton is in two splits.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of dict
        Samples with ids ``sr_0, sr_1, …`` in random order.

    Examples
    --------
    >>> from chatsr.symbolic.expressions import Expression
    >>> s = generate_samples(1, max_vars=1, num_points=5, seed=1, progress=False)[0]
    >>> X, y = np.array(s["data_points"])[:, :1], np.array(s["data_points"])[:, -1]
    >>> bool(np.allclose(Expression.parse(s["expression_tokens"])(X, s["constants"]), y))
    True
    """
    _check_count("num_samples", num_samples, 0)
    _check_count("workers", workers, 1)
    _check_count("seed", seed, 0)
    config = _resolve(config, options)
    _sampler(config)  # configuration errors surface here, not in a worker
    samples: list[dict] = []
    seen: set[str] = set()
    stats: Counter = Counter()
    stale = 0  # consecutive chunks that added nothing new
    with tqdm(total=num_samples, disable=not progress, desc="generating", unit="sample") as bar:
        chunks = _chunks(config, seed, itertools.count(), unique, workers)
        try:
            while len(samples) < num_samples:
                pairs, chunk_stats = next(chunks)
                stats += chunk_stats
                before = len(samples)
                for key, record in pairs:
                    if unique and key in seen:
                        stats["duplicate"] += 1
                        continue
                    seen.add(key)
                    samples.append(_finish(record, len(samples)))
                    if len(samples) == num_samples:
                        break
                bar.update(len(samples) - before)
                stale = 0 if len(samples) > before else stale + 1
                if stale == _MAX_STALE:
                    raise _too_few(len(samples), stats)
        finally:
            chunks.close()
    logger.info("generated %d samples; rejected candidates: %s", len(samples),
                {k: v for k, v in stats.items() if k != "accepted"})
    return samples


def iter_samples(seed: int = 0, config: GeneratorConfig | None = None, *,
                 shard: tuple[int, int] = (0, 1), **options: Any) -> Iterator[dict]:
    """An endless stream of samples for on-the-fly training; it never repeats a sample.

    Shard ``(i, n)`` yields chunks ``i, i+n, i+2n, …`` of the seed's stream, so ``n`` data-loader
    workers each with their own ``i`` together see every chunk once. Skeletons may recur (the
    short ones must), with fresh constants and points; ids are ``sr_<position in the stream>``.

    >>> stream = iter_samples(seed=3, max_vars=2, num_points=(10, 20))
    >>> [next(stream)["id"] for _ in range(2)]
    ['sr_0', 'sr_1']
    """
    _check_count("seed", seed, 0)
    index, count = shard
    if not (isinstance(count, int) and count >= 1 and isinstance(index, int)
            and 0 <= index < count):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    config = _resolve(config, options)
    for chunk in itertools.count(index, count):
        pairs, stats = _chunk(config, seed, chunk, unique=False)
        if not pairs:
            raise _too_few(0, stats)
        for j, (_, record) in enumerate(pairs):
            yield _finish(record, chunk * CHUNK_SIZE + j)
