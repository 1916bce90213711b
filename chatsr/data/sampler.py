"""One sample from a random skeleton: the guards on its canonical key, data drawn for it (each
variable on its own support, constants per sample, targets that must be usable) and the
record with its prompt.

>>> from chatsr.data.generator_config import GeneratorConfig
>>> sampler = _sampler(GeneratorConfig(max_vars=2, num_points=20))
>>> X, y, constants = sampler.data(np.random.default_rng(0), ["mul", "C", "x1"], 1)
>>> X.shape, y.shape, len(constants)
((20, 1), (20,), 1)
"""

from __future__ import annotations

import bisect
import functools
import math
from fractions import Fraction

import numpy as np

from chatsr.data.benchmarks import benchmark_exclusions
from chatsr.data.generator_config import GeneratorConfig
from chatsr.data.prompts import make_prompt
from chatsr.data.records import make_record
from chatsr.data.trees import _cumulative, _ScienceSampler, _structure_problem, _TreeSampler
from chatsr.symbolic.canonical import canonical
from chatsr.symbolic.evaluation import evaluate
from chatsr.symbolic.operators import CONSTANT, OPERATORS
from chatsr.symbolic.skeletons import VARIABLE_IN_KEY, ExclusionSet, written_key
from chatsr.symbolic.units import (
    QUANTITIES,
    Dimension,
    dimension_of,
    linear_dimensions,
    parse_unit,
    quantity_name,
)

# Supports, log10 of their scales: symmetric U(-a, a); positive U(lo, lo * r) (e.g. [0.4, 30],
# [300, 1000]); log-uniform over [lo, lo * r]. Positive ones are mirrored to negative at times.
_SYMMETRIC_A = (-0.3, 1.0)
_POSITIVE_LO, _POSITIVE_RATIO = (-2.0, 2.5), (0.2, 1.5)
_LOG_LO, _LOG_RATIO = (-2.0, 1.0), (1.0, 3.0)
_NEGATIVE_PROB = 0.15
_DATA_TRIES = 3  # data draws per skeleton before it is given up
_UNIT_TRIES = 4  # unit draws per formula before it goes without units
_DIMENSIONLESS_PROB = 0.15  # a free variable's chance to be a pure number
_UNIT_DIMS = tuple(parse_unit(u) for u in QUANTITIES)


@functools.lru_cache(maxsize=8)
def _exclusion(exclude: str | tuple | None) -> ExclusionSet:
    if exclude == "benchmarks":
        return benchmark_exclusions()
    return ExclusionSet(exclude or ())


class _Sampler:
    """Everything precomputed from a config; one per process and config."""

    def __init__(self, config: GeneratorConfig):
        self.config = config
        self.trees = _TreeSampler(config)
        self.support_cum = _cumulative(config.support_weights)
        self.exclusion = _exclusion(config.exclude)
        self.science = _ScienceSampler(config)
        self.operator_weights = {n: w for n, w in config.operators if w > 0}
        self.allowed = set(self.operator_weights)

    def sample(self, rng: np.random.Generator, seen: set[str] | None
               ) -> tuple[str, dict] | str:
        """One sample (``data_points`` an array) and its skeleton key, or the reason the
        candidate was rejected."""
        c = self.config
        science = c.science_weight > 0 and rng.random() < c.science_weight
        if science:
            names, k = self.science.tree(rng)
            if not self.allowed.issuperset(n for n in names if n in OPERATORS):
                return "operator not enabled"
        else:
            names, k = self.trees.tree(rng)
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
        data = self.data(rng, names, k, positive=science)
        if isinstance(data, str):
            return data
        X, y, constants = data
        if c.canonical:
            written = self.canonical(names, constants, X, y)
            if isinstance(written, str):
                return written
            names, constants, y = written
            if len(names) > (c.science_max_length if science else c.max_length):
                return "canonical form too long"
            if tuple(names) != skeleton:  # two spellings may share one canonical form
                key = written_key(tuple(names))
                if seen is not None and key in seen:
                    return "duplicate"
        if seen is not None:
            seen.add(key)
        units = self.units(rng, names, constants, k) \
            if c.units_prob and rng.random() < c.units_prob else None
        if c.noise:
            y = y + c.noise * y.std() * rng.standard_normal(len(y))
        prompt = make_prompt(names, X, self.operator_weights, rng, fact_prob=c.fact_prob,
                             units=units, y=y)
        return key, make_record(names, constants, X, y, max_dims=c.max_dims, prompt=prompt,
                                lists=False, units=units)

    def canonical(self, names: list[str], constants: list[float], X: np.ndarray,
                  y: np.ndarray) -> tuple[list[str], list[float], np.ndarray] | str:
        """The canonical spelling of a formula, its constants and its targets (computed
        again, so that the record reproduces them exactly), checked against the targets of
        the formula as drawn."""
        written, values = canonical(names, constants)
        # the canonical spelling may need operators the config leaves out (x*x is pow2(x)):
        # then the formula keeps the spelling it was drawn in
        if written == tuple(names) or not self.allowed.issuperset(
                n for n in written if n in OPERATORS):
            return names, constants, y
        if written in self.exclusion:
            return "excluded skeleton"
        again = np.broadcast_to(evaluate(written, X, values), y.shape).astype(float)
        if not np.allclose(again, y, rtol=1e-6, atol=1e-9 * max(1.0, np.abs(y).max())):
            return "canonical form differs"
        return list(written), list(values), again

    def units(self, rng: np.random.Generator, names: list[str], constants: list[float], k: int
              ) -> dict[str, str] | None:
        """SI units for ``x1..xk`` and ``y`` that make the formula dimensionally consistent,
        or None when the draws give none with integer exponents.

        The consistency conditions are linear in the variables' dimensions
        (:func:`chatsr.symbolic.units.linear_dimensions`): the free variables of their
        reduced row echelon form get random common units, the others follow.
        """
        form, conditions = linear_dimensions(names, constants)
        variables = [f"x{i}" for i in range(1, k + 1)]
        pivots, free = _echelon(conditions, variables)
        for _ in range(_UNIT_TRIES):
            dims = {v: _UNIT_DIMS[int(rng.integers(len(_UNIT_DIMS)))]
                    if rng.random() > _DIMENSIONLESS_PROB else Dimension() for v in free}
            for v, row in pivots.items():
                total = Dimension()
                for u, coefficient in row.items():
                    total = total * dims[u] ** -coefficient
                dims[v] = total
            dims["y"] = dimension_of(names, dims, constants)
            if dims["y"] is not None and all(e.denominator == 1 for d in dims.values()
                                             for e in d.exponents):
                return {v: _unit_text(d) for v, d in dims.items()}
        return None

    def data(self, rng: np.random.Generator, names: list[str], k: int, *,
             positive: bool = False) -> tuple[np.ndarray, np.ndarray, list[float]] | str:
        """``X`` (n, k), ``y`` (n,) and the constants, or why no draw gave usable targets.
        ``positive``: every variable on a positive support."""
        c = self.config
        low, high = c.num_points
        n = min(int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))), high)
        n_draw = n + math.ceil(n * c.max_nonfinite)  # a few spare points for dropped ones
        reason = ""
        for _ in range(_DATA_TRIES):
            X = self.inputs(rng, k, n_draw, positive=positive)
            constants = self.constants(rng, names.count(CONSTANT))
            y = evaluate(names, X, constants)
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
                return X, y, constants
        return reason

    def inputs(self, rng: np.random.Generator, k: int, n: int, *, positive: bool = False
               ) -> np.ndarray:
        """``n`` points of ``k`` variables, each from its own randomly drawn support
        (``positive``: a positive one, linear or log-uniform)."""
        X = rng.random((n, k))
        for j, (u_kind, u_low, u_width, u_sign) in enumerate(rng.random((k, 4)).tolist()):
            kind = bisect.bisect_right(self.support_cum, u_kind)
            if positive:  # linear or log-uniform, never mirrored
                kind, u_sign = (1 if u_kind < 0.5 else 2), 1.0
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


@functools.lru_cache(maxsize=8)
def _sampler(config: GeneratorConfig) -> _Sampler:
    return _Sampler(config)



def _unit_text(dimension: Dimension) -> str:
    named = quantity_name(dimension)
    return named[1] if named else str(dimension)


def _echelon(conditions: list[dict], variables: list[str]
             ) -> tuple[dict[str, dict[str, Fraction]], list[str]]:
    """The reduced row echelon form of linear conditions on ``variables``: each pivot
    variable as ``{free variable: coefficient}`` (pivot + sum(coefficient * free) = 0), and
    the free variables."""
    rows = [[Fraction(c.get(v, 0)) for v in variables] for c in conditions]
    pivots: list[int] = []
    r = 0
    for col in range(len(variables)):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col]), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][col]
        rows[r] = [x / lead for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col]:
                factor = rows[i][col]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(col)
        r += 1
    free = [v for j, v in enumerate(variables) if j not in pivots]
    solved = {variables[col]: {variables[j]: rows[i][j] for j in range(len(variables))
                               if j != col and rows[i][j]}
              for i, col in enumerate(pivots)}
    return solved, free
