"""The generator's settings, checked when they are made: what the formulas, data and prompts of
generated samples look like, and which formula lengths the settings allow (counted over tree
shapes, so that a config no formula fits is an error here, not an endless search later).

>>> GeneratorConfig(max_vars=2, operators=["add", "sin"]).operators
(('add', 1.0), ('sin', 1.0))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatsr.symbolic.expressions import Expression, ExpressionError
from chatsr.symbolic.operators import OPERATORS, canonical_name

__all__ = ["DEFAULT_OPERATORS", "GeneratorConfig"]

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
    canonical: bool = True  # targets in one preorder spelling (chatsr.symbolic.canonical),
    # except where that spelling needs an operator left out of operators
    science_weight: float = 0.0  # share of formulas from the science-shaped prior (trees)
    science_max_vars: int = 8  # most variables of a science-shaped formula (<= max_dims)
    science_max_length: int = 30  # most tokens of a science-shaped formula
    units_prob: float = 0.0  # share of samples whose prompt states SI units (consistent ones)

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:  # frozen: normalise fields in place once
            object.__setattr__(self, name, value)

        for name in ("max_length", "min_length", "max_vars", "max_dims", "science_max_vars",
                     "science_max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must not exceed max_length "
                             f"({self.max_length})")
        for name in ("max_vars", "science_max_vars") if self.science_weight else ("max_vars",):
            if getattr(self, name) > self.max_dims:
                raise ValueError(f"{name} ({getattr(self, name)}) must not exceed max_dims "
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
                           ("max_nonfinite", 1), ("fact_prob", 1), ("science_weight", 1),
                           ("units_prob", 1)):
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

