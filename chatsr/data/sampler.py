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

import numpy as np

from chatsr.data.benchmarks import benchmark_exclusions
from chatsr.data.generator_config import GeneratorConfig
from chatsr.data.prompts import make_prompt
from chatsr.data.records import make_record
from chatsr.data.trees import _cumulative, _structure_problem, _TreeSampler
from chatsr.symbolic.evaluation import evaluate
from chatsr.symbolic.operators import CONSTANT
from chatsr.symbolic.skeletons import VARIABLE_IN_KEY, ExclusionSet, written_key

# Supports, log10 of their scales: symmetric U(-a, a); positive U(lo, lo * r) (e.g. [0.4, 30],
# [300, 1000]); log-uniform over [lo, lo * r]. Positive ones are mirrored to negative at times.
_SYMMETRIC_A = (-0.3, 1.0)
_POSITIVE_LO, _POSITIVE_RATIO = (-2.0, 2.5), (0.2, 1.5)
_LOG_LO, _LOG_RATIO = (-2.0, 1.0), (1.0, 3.0)
_NEGATIVE_PROB = 0.15
_DATA_TRIES = 3  # data draws per skeleton before it is given up


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

    def sample(self, rng: np.random.Generator, seen: set[str] | None
               ) -> tuple[str, dict] | str:
        """One sample (``data_points`` an array) and its skeleton key, or the reason the
        candidate was rejected."""
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
        data = self.data(rng, names, k)
        if isinstance(data, str):
            return data
        X, y, constants = data
        if seen is not None:
            seen.add(key)
        prompt = make_prompt(names, X, self.trees.operator_names, rng,
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


@functools.lru_cache(maxsize=8)
def _sampler(config: GeneratorConfig) -> _Sampler:
    return _Sampler(config)

