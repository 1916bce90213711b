"""Every short formula over one or two columns, scored with linear scaling: seeds for the engine.

Genetic programming seldom assembles a particular short formula whose parts do not pay off on
their own: on ``x`` in [1.5, 10], Operon does not reach ``x/sqrt(x**2 - 1)`` (7 nodes) in
seconds. With one or two columns, as the dimensionless groups of a problem with units often
are, every formula of up to ``MAX_SIZE`` nodes can be tried instead, as AI Feynman's brute
force does. Formulas are built bottom up by size from the variables and the constant 1; each
distinct function (values on the sample points, in single precision) is kept once, in its
shortest form; each is scored by R² after the best ``a * f + b``, in closed form, so its
constants need no fit.

>>> import numpy as np
>>> x = np.linspace(1.5, 10.0, 50).reshape(-1, 1)
>>> best = short_formulas(x, 3.0 * x[:, 0] / np.sqrt(x[:, 0] ** 2 - 1) + 2.0, most=1)[0]
>>> best.with_constants([round(c, 6) for c in best.constants]).infix()
'2.0 + 3.0/sqrt(1 - 1/x1**2)'
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from chatsr.symbolic.evaluation import evaluate
from chatsr.symbolic.expressions import Expression

__all__ = ["MAX_SIZE", "MAX_VARIABLES", "short_formulas"]

# nodes, by columns: 1/sqrt(1 - x**2) has 6, x/sqrt(x**2 - 1) 7, x/exp(1/y) 5; one more node
# multiplies the formulas by about 7 (one column) and 9 (two), their time too (0.3 s and 2.5 s
# for the last size here)
MAX_SIZE = {1: 7, 2: 6}
MAX_VARIABLES = max(MAX_SIZE)
POINTS = 64  # sample points a formula is scored on (its seed is refitted on all)
MAX_PER_SIZE = 30_000  # distinct functions kept of each size, the first built: bounds time
_CHUNK = 2_000_000  # values computed at once
UNARY = ("neg", "inv", "pow2", "sqrt", "exp", "log", "sin", "cos")
BINARY = ("add", "sub", "mul", "div")
_COMMUTATIVE = {"add", "mul"}
# single precision less the last 8 bits (about 5 digits): rounding differences of one function
# (x*exp(-1/y) and x/exp(1/y)) fall together
_MANTISSA = np.uint32(0xFFFFFF00)
_MIX = np.random.default_rng(0).integers(1, 2**63, size=POINTS, dtype=np.uint64)  # hash weights
_LARGE = 1e30  # larger values are overflow on the way, not a law's


class _Level:
    """The distinct functions of one size: their values (m, POINTS) and how each was built,
    a row (m, 5) of integers: the name's index in ``names``, then the level and the index
    there of each operand (-1 where there is none)."""

    def __init__(self, values: np.ndarray, built: np.ndarray):
        self.values, self.built = values, built


def short_formulas(X: np.ndarray, y: np.ndarray, *, operators: Collection[str] | None = None,
                   sample_weight: np.ndarray | None = None, loss: str = "mse", most: int = 8,
                   max_size: int | None = None) -> list[Expression]:
    """The ``most`` formulas ``C * f + C`` over the columns of ``X`` (at most
    ``MAX_VARIABLES``) that fit ``y`` best, ``f`` of at most ``max_size`` nodes (None:
    ``MAX_SIZE`` for that many columns), most accurate first, shortest first among equals,
    with the constants of their linear scaling; of formulas that are ``a * f + b`` of one
    another, only the first.

    ``operators`` (None: all of `UNARY` and `BINARY`) are those ``f`` may use. Under
    ``loss="log"`` the fit weighs each point by ``1 / y**2`` (relative error), times
    ``sample_weight``. Nothing here depends on a clock or a random draw.
    """
    if X.shape[1] > MAX_VARIABLES:
        raise ValueError(f"short_formulas tries formulas over at most {MAX_VARIABLES} columns; "
                         f"X has {X.shape[1]}")
    max_size = MAX_SIZE[X.shape[1]] if max_size is None else max_size
    rows = np.unique(np.linspace(0, len(y) - 1, min(POINTS, len(y))).astype(int))
    target = np.asarray(y, dtype=float)[rows]
    weight = np.ones(len(rows)) if sample_weight is None else np.asarray(
        sample_weight, dtype=float)[rows]
    if loss == "log":
        weight = weight / target**2
    weight = weight / weight.sum()
    allowed = set(UNARY + BINARY) if operators is None else set(operators)
    unary = [n for n in UNARY if n in allowed]
    binary = [n for n in BINARY if n in allowed]
    leaves = [f"x{k}" for k in range(1, X.shape[1] + 1)] + ["const_1"]
    names = [*leaves, *unary, *binary]
    first = np.vstack([np.asarray(X, dtype=float)[rows].T, np.ones(len(rows))])
    built = np.full((len(leaves), 5), -1)
    built[:, 0] = np.arange(len(leaves))
    levels = [_Level(first, built)]
    seen = set(_hashes(first).tolist())
    scored = [_scores(first[:-1], target, weight, 1)]
    for size in range(2, max_size + 1):
        values, built = _combine(levels, size, [names.index(n) for n in unary],
                                 [names.index(n) for n in binary], names)
        keep = _new(values, seen, MAX_PER_SIZE)
        values, built = values[keep], built[keep]
        levels.append(_Level(values, built))
        scored.append(_scores(values, target, weight, size))
    table = np.concatenate(scored)  # rows: r2, size, index in level, a, b
    out, shapes = [], set()
    for r2, size, index, a, b in table[np.lexsort((table[:, 1], -table[:, 0]))]:
        if len(out) == most or not np.isfinite(r2):
            break
        values = levels[int(size) - 1].values[int(index)]
        shape = (values - values.mean()) / values.std()
        shape = int(_hashes(np.sign(shape[np.flatnonzero(shape)[0]]) * shape[None])[0])
        if shape not in shapes:  # not -f or 1 - f of one before
            shapes.add(shape)
            f = _names(levels, names, int(size) - 1, int(index))
            out.append(Expression(("add", "mul", "C", *f, "C"), (a, b)))
    return out


def _combine(levels: list[_Level], size: int, unary: list[int], binary: list[int],
             names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The values of every formula of ``size`` nodes built from the smaller levels, finite
    and not constant, with how each was built (`_Level`)."""
    parts, built = [], []
    below = levels[size - 2]
    for code in unary:
        parts.append(_apply(names[code], below.values))
        built.append(np.column_stack([np.full(len(below.values), code),
                                      np.full(len(below.values), size - 2),
                                      np.arange(len(below.values)),
                                      np.full((len(below.values), 2), -1)]))
    for left in range(1, size - 1):
        right = size - 1 - left
        a, b = levels[left - 1].values, levels[right - 1].values
        for code in binary:
            if names[code] in _COMMUTATIVE and left > right:
                continue  # the same functions as (right, left)
            step = max(1, _CHUNK // max(1, len(b) * a.shape[1]))
            for start in range(0, len(a), step):
                block = a[start:start + step]
                pairs = np.broadcast_to(block[:, None, :], (len(block), len(b), a.shape[1]))
                other = np.broadcast_to(b[None, :, :], pairs.shape)
                parts.append(_apply(names[code], pairs.reshape(-1, a.shape[1]),
                                    other.reshape(-1, a.shape[1])))
                i, j = np.divmod(np.arange(len(block) * len(b)), len(b))
                built.append(np.column_stack([np.full(len(i), code), np.full(len(i), left - 1),
                                              start + i, np.full(len(i), right - 1), j]))
    width = levels[0].values.shape[1]
    values = np.concatenate(parts) if parts else np.empty((0, width))
    built = np.concatenate(built) if built else np.empty((0, 5), dtype=int)
    with np.errstate(all="ignore"):
        good = np.isfinite(values).all(axis=1) & (np.abs(values).max(axis=1) < _LARGE) & (
            np.ptp(values, axis=1) > 1e-12 * np.abs(values).max(axis=1))
    return values[good], built[good]


def _apply(name: str, *operands: np.ndarray) -> np.ndarray:
    """The operator ``name`` on the rows of its operands (each (m, n)), as chatsr computes it."""
    columns = np.column_stack([o.ravel() for o in operands])
    variables = [f"x{k}" for k in range(1, len(operands) + 1)]
    with np.errstate(all="ignore"):
        return evaluate((name, *variables), columns).reshape(operands[0].shape)


def _hashes(values: np.ndarray) -> np.ndarray:
    """One 64-bit hash of each row's values to about 5 digits: equal functions, one hash."""
    with np.errstate(over="ignore"):
        bits = values.astype(np.float32).view(np.uint32) & _MANTISSA
        return (bits.astype(np.uint64) * _MIX[:values.shape[1]]).sum(axis=1, dtype=np.uint64)


def _new(values: np.ndarray, seen: set[int], most: int) -> np.ndarray:
    """Indices of the first ``most`` rows of ``values`` whose function is not in ``seen`` nor
    met earlier; their hashes join ``seen``."""
    hashes = _hashes(values)
    _, first = np.unique(hashes, return_index=True)
    first.sort()
    keep = np.array([i for i in first if int(hashes[i]) not in seen], dtype=int)[:most]
    seen.update(hashes[keep].tolist())
    return keep


def _scores(values: np.ndarray, target: np.ndarray, weight: np.ndarray, size: int
            ) -> np.ndarray:
    """For each row ``f`` of ``values``: the weighted R² of the best ``a * f + b`` against
    ``target``, ``size``, its index, ``a`` and ``b`` (R² -inf where ``f`` is flat)."""
    if not len(values):
        return np.empty((0, 5))
    scale = np.abs(values).max(axis=1, keepdims=True)
    f = values / scale  # R² does not change with the scale; overflow does
    mean_f, mean_t = f @ weight, target @ weight
    var_f = (f * f) @ weight - mean_f**2
    cov = f @ (weight * target) - mean_f * mean_t
    var_t = weight @ target**2 - mean_t**2
    with np.errstate(all="ignore"):
        r2 = np.where(var_f > 1e-12, cov**2 / (var_f * var_t), -np.inf)
        a = cov / var_f
    b = mean_t - a * mean_f
    return np.column_stack([r2, np.full(len(f), size), np.arange(len(f)), a / scale[:, 0], b])


def _names(levels: list[_Level], names: list[str], level: int, index: int
           ) -> tuple[str, ...]:
    """The preorder of the formula at ``index`` of ``levels[level]``."""
    code, *operands = levels[level].built[index]
    out = [names[code]]
    for k in range(0, 4, 2):
        if operands[k] >= 0:
            out += _names(levels, names, operands[k], operands[k + 1])
    return tuple(out)
