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
_LARGE = 1e30  # larger values are overflow on the way, not a law's
# f(a*x) on one column: a constant inside (sin(2*pi*x), 1/(exp(x/(2*pi)) - 1)) that the
# linear scaling outside cannot give. f of up to SCALED_SIZE nodes; a on a grid 4.4 % apart (a
# sine of 25 radians is still near its law there) up to FINE_SIZE nodes, 9 % above; the
# _REFINED best on the grid refined. Thousands of smooth formulas come within 1e-9 of a
# near-linear law on the grid, so the law itself may rank some hundreds below the best (on 60
# laws g(a*x), 20 kinds, 3 ranges each: 42 found with 128 refined, 44 with 512).
SCALED_SIZE = 6
FINE_SIZE = 5
_COARSE = 2
SCALES = 2.0 ** (np.arange(-64, 65) / 16)
_SPANS = (SCALES[0], 1.0, SCALES[-1])  # the formulas for the grid are built at its ends too
_MIX = np.random.default_rng(0).integers(1, 2**63, size=POINTS * len(_SPANS),
                                         dtype=np.uint64)  # hash weights
_SCALES_AT_ONCE = 8
_REFINED = 512
_EXACT = 1 - 1e-12  # an R² that leaves nothing for a constant inside to explain
# a constant inside must leave at most this share of what the best formula without one leaves
# unexplained: one more constant fitted to noise seldom does (on 20 noisy points of sqrt(x) a
# sine inside did better by a little and led the search astray)
_GAIN = 0.1
# degrees of the polynomials that tell a function of one product or ratio (`_one_function`):
# in it, and in the two columns (16 terms for 64 points: it does not interpolate)
_DEGREE, _DEGREE_BOTH = 12, 3
_ALONE = 1e-3  # the share of the variance the first may leave at most


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
    plain = np.ones(len(rows)) if sample_weight is None else np.asarray(
        sample_weight, dtype=float)[rows]
    weight = plain / target**2 if loss == "log" else plain
    weight, plain = weight / weight.sum(), plain / plain.sum()
    allowed = set(UNARY + BINARY) if operators is None else set(operators)
    unary = [n for n in UNARY if n in allowed]
    binary = [n for n in BINARY if n in allowed]
    leaves = [f"x{k}" for k in range(1, X.shape[1] + 1)] + ["const_1"]
    names = [*leaves, *unary, *binary]
    codes = [names.index(n) for n in unary], [names.index(n) for n in binary]
    columns = np.asarray(X, dtype=float)[rows].T
    levels = _build(np.vstack([columns, np.ones(len(rows))]), max_size, *codes, names)
    table = np.concatenate([_scores(levels[0].values[:-1], target, weight, 1)] + [
        _scores(level.values, target, weight, size)
        for size, level in enumerate(levels[1:], start=2)])  # rows: r2, size, index, a, b
    out, shapes = [], set()
    for r2, size, index, a, b in table[np.lexsort((table[:, 1], -table[:, 0]))]:
        if len(out) == most or not np.isfinite(r2):
            break
        shape = _shape(levels[int(size) - 1].values[int(index)])
        if shape not in shapes:  # not -f or 1 - f of one before
            shapes.add(shape)
            f = _names(levels, names, int(size) - 1, int(index))
            out.append(Expression(("add", "mul", "C", *f, "C"), (a, b)))
    best = np.nanmax(table[:, 0], initial=-np.inf)
    if X.shape[1] == 1 and "mul" in allowed and -np.inf < best < _EXACT:
        # built anew on x at the grid's ends as well: sqrt(1 - 1/x**2) is not real at a = 1
        # on x in [0.4, 2], yet it is at a = 16, and a = 3.7 may be the law; on the points
        # the grid ranks on (`_on_grid`)
        spans = np.concatenate([a * columns[0, ::2] for a in _SPANS])
        scaled = _build(np.vstack([spans, np.ones(len(spans))]), SCALED_SIZE, *codes, names,
                        blocks=len(_SPANS))
        out += _scaled(scaled, names, columns[0], target, plain, most // 2)
    if X.shape[1] == 2 and -np.inf < best < _EXACT:
        out += _of_one_product(np.asarray(X, dtype=float), np.asarray(y, dtype=float), rows,
                               allowed, sample_weight, loss, most // 2)
    return out


def _of_one_product(X: np.ndarray, y: np.ndarray, rows: np.ndarray, allowed: set[str],
                    sample_weight: np.ndarray | None, loss: str, most: int
                    ) -> list[Expression]:
    """Formulas ``factor * g(u)``, ``u`` one of ``x1*x2`` and ``x1/x2`` and ``factor`` 1, a
    column or its inverse, wherever ``y / factor`` looks like a function of ``u`` alone
    (`_one_function`): for ``g``, the ``most`` best of the one-column enumeration of ``u``,
    longer formulas and constants inside (II.11.28's ``1 + u/(1 - u/3)`` with ``u = x1*x2``;
    I.6.2's ``exp(-u**2/2)/x1`` with ``u = x2/x1``)."""
    weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    factors = [None] + [(op, k) for op in ("mul", "div") if op in allowed for k in range(2)]
    out = []
    for name in sorted({"mul", "div"} & allowed):
        with np.errstate(all="ignore"):
            u = _apply(name, X[:, :1].T, X[:, 1:].T)[0]
        if not np.isfinite(u).all():  # x1/x2 with x2 = 0 somewhere
            continue
        for factor in factors:
            with np.errstate(all="ignore"):
                value = 1.0 if factor is None else X[:, factor[1]] ** (
                    1 if factor[0] == "mul" else -1)
                g = y / value
                # the error in y is value times that in g: the same loss, weighted
                w = weight if loss == "log" else weight * value**2
            if not (np.isfinite(g).all() and np.isfinite(w).all()
                    and _one_function(u[rows], X[rows], g[rows], w[rows] / w[rows].sum())):
                continue
            found = short_formulas(u[:, None], g, operators=allowed, sample_weight=w,
                                    loss=loss, most=most)
            for e in found:
                e = _substitute(e, (name, "x1", "x2"))
                if factor is not None:
                    column = f"x{factor[1] + 1}"
                    e = Expression(("mul", column, *e.names) if factor[0] == "mul" else
                                   ("div", *e.names, column), e.constants)
                out.append(e)
            break  # another factor that works differs by a power of u: the same formulas
    return out


def _one_function(u: np.ndarray, X: np.ndarray, target: np.ndarray, weight: np.ndarray
                  ) -> bool:
    """Whether ``target`` looks like a function of ``u`` alone: a polynomial of degree
    `_DEGREE` in ``u`` leaves next to nothing, or little (`_ALONE`) and at most twice what one
    of degree `_DEGREE_BOTH` in each column of ``X`` leaves (both then fit the noise; where
    both fit badly, ``1/x2`` near 0, the target is no function of ``u`` to be sure of)."""
    def unexplained(basis: np.ndarray) -> float:
        root = np.sqrt(weight)[:, None]
        fit = np.linalg.lstsq(basis * root, target * root[:, 0], rcond=None)[0]
        return float(weight @ (target - basis @ fit) ** 2)

    def unit(v: np.ndarray) -> np.ndarray:  # onto [-1, 1], where Chebyshev's basis is tame
        return 2 * (v - v.min()) / np.ptp(v) - 1

    if np.ptp(u) <= 0 or len(u) <= 2 * _DEGREE:
        return False
    one = np.polynomial.chebyshev.chebvander(unit(u), _DEGREE)
    both = np.polynomial.chebyshev.chebvander2d(unit(X[:, 0]), unit(X[:, 1]),
                                                [_DEGREE_BOTH] * 2)
    variance = float(weight @ (target - weight @ target) ** 2)
    alone = unexplained(one)
    return alone <= 1e-12 * variance or alone <= min(_ALONE * variance, 2 * unexplained(both))


def _substitute(expression: Expression, column: tuple[str, ...]) -> Expression:
    """``expression`` in ``x1`` with the preorder ``column`` in place of each ``x1``."""
    names = [t for name in expression.names for t in (column if name == "x1" else (name,))]
    return Expression(tuple(names), expression.constants)


def _build(first: np.ndarray, max_size: int, unary: list[int], binary: list[int],
           names: list[str], blocks: int = 1) -> list[_Level]:
    """The levels of formulas of 1 to ``max_size`` nodes from the leaves' values ``first``,
    each distinct function once; where ``first`` holds ``blocks`` blocks of points, a
    formula is kept if it is real and not constant on one of them at least (`_combine`)."""
    built = np.full((len(first), 5), -1)
    built[:, 0] = np.arange(len(first))
    levels = [_Level(first, built)]
    seen = set(_hashes(first).tolist())
    for size in range(2, max_size + 1):
        values, built = _combine(levels, size, unary, binary, names, blocks)
        keep = _new(values, seen, MAX_PER_SIZE)
        levels.append(_Level(values[keep], built[keep]))
    return levels


def _scaled(levels: list[_Level], names: list[str], x: np.ndarray, target: np.ndarray,
            weight: np.ndarray, most: int) -> list[Expression]:
    """Up to ``most`` formulas ``C * f(C * x1) + C`` with ``f`` from ``levels`` whose R² is
    above that of the best formula without the constant inside (``a = 1``) by `_GAIN`, best
    first. ``weight`` is the points' own, never the log loss's ``1 / y**2``: near a zero of
    ``sin(a*x)**2`` the relative error changes so fast with ``a`` that no grid ranks the law."""
    peaks, logs, steps, where, best = [], [], [], [], -np.inf
    for sizes, scales in ((range(2, FINE_SIZE + 1), SCALES),
                          (range(FINE_SIZE + 1, SCALED_SIZE + 1), SCALES[::_COARSE])):
        r2 = _on_grid(levels[:sizes[-1]], names, x, target, weight, scales, sizes[0] - 1)
        best = max(best, np.nanmax(r2[:, np.argmin(np.abs(np.log(scales)))], initial=-np.inf))
        peak, log_a = _peaks(r2, np.log(scales))
        peaks.append(peak)
        logs.append(log_a)
        steps.append(np.full(len(peak), np.log(scales[1] / scales[0])))
        where += [(size - 1, index) for size in sizes
                  for index in range(len(levels[size - 1].values))]
    peak, log_a, step = np.concatenate(peaks), np.concatenate(logs), np.concatenate(steps)
    found, shapes = [], set()
    for m in np.argsort(-peak, kind="stable")[:_REFINED]:
        if not peak[m] > best:  # on the grid: not even the formulas without one beaten
            break
        r2, expression, values = _refine(_names(levels, names, *where[m]), log_a[m], step[m],
                                         x, target, weight)
        if not (1 - r2 < _GAIN * (1 - best) and np.abs(values).max() < _LARGE):
            continue  # refined off its peak, or to values that overflow on the way
        shape = _shape(values)
        if shape not in shapes:
            shapes.add(shape)
            found.append((r2, expression))
    found.sort(key=lambda pair: -pair[0])
    return [e for _, e in found[:most]]


def _on_grid(levels: list[_Level], names: list[str], x: np.ndarray, target: np.ndarray,
             weight: np.ndarray, scales: np.ndarray, first: int) -> np.ndarray:
    """(m, len(scales)): the R² of ``f(a * x)`` for each formula ``f`` of ``levels[first:]``
    and each ``a`` in ``scales``, on every other point (enough to rank them for `_refine`)."""
    x, target, weight = x[::2], target[::2], weight[::2] / weight[::2].sum()
    out = []
    for start in range(0, len(scales), _SCALES_AT_ONCE):
        chunk = scales[start:start + _SCALES_AT_ONCE]
        leaf = np.vstack([np.concatenate([a * x for a in chunk]), np.ones(len(x) * len(chunk))])
        values = np.concatenate(_replay(levels, names, leaf)[first:])
        out.append(_line(values.reshape(len(values), len(chunk), len(x)), target, weight)[0])
    return np.concatenate(out, axis=1)


def _peaks(r2: np.ndarray, log_scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The highest R² of each row of ``r2`` (m, grid) and its log scale, between the grid's
    points: a parabola in -log(1 - R²) through the best point and its neighbours."""
    with np.errstate(all="ignore"):
        depth = -np.log1p(-np.clip(np.nan_to_num(r2, nan=-np.inf), -1.0, 1.0 - 1e-15))
    k = np.clip(np.argmax(depth, axis=1), 1, depth.shape[1] - 2)
    rows = np.arange(len(depth))
    left, mid, right = depth[rows, k - 1], depth[rows, k], depth[rows, k + 1]
    with np.errstate(all="ignore"):
        curve = left - 2 * mid + right
        shift = np.where(curve < 0, np.clip(0.5 * (left - right) / curve, -1, 1), 0.0)
        top = np.where(curve < 0, mid - 0.25 * (left - right) * shift, mid)
    step = log_scales[1] - log_scales[0]
    top = np.where(np.isfinite(top), np.maximum(top, depth.max(axis=1)), -np.inf)
    return -np.expm1(-top), log_scales[k] + shift * step


def _refine(f: tuple[str, ...], log_scale: float, step: float, x: np.ndarray,
            target: np.ndarray, weight: np.ndarray) -> tuple[float, Expression, np.ndarray]:
    """``C * f(a * x1) + C`` with ``a`` refined within a grid ``step`` of ``exp(log_scale)``,
    its R² and the values of ``f(a * x1)``."""
    from scipy.optimize import minimize_scalar

    def r2(log_a: float) -> float:
        return float(_line(evaluate(f, np.exp(log_a) * x[:, None]), target, weight)[0])

    with np.errstate(all="ignore"):
        log_a = minimize_scalar(lambda v: -np.nan_to_num(r2(v), nan=-np.inf),
                                bounds=(log_scale - step, log_scale + step),
                                method="bounded", options={"xatol": 1e-10}).x
        values = evaluate(f, np.exp(log_a) * x[:, None])
        fit, slope, intercept = _line(values, target, weight)
    inside = [t for name in f for t in (("mul", "C", name) if name == "x1" else (name,))]
    constants = (float(slope), *[float(np.exp(log_a))] * f.count("x1"), float(intercept))
    return float(fit), Expression(("add", "mul", "C", *inside, "C"), constants), values


def _replay(levels: list[_Level], names: list[str], leaf: np.ndarray) -> list[np.ndarray]:
    """The values of every formula of ``levels``, as they were built, with ``leaf`` (one row
    for each leaf) in place of the first level's values."""
    out = [leaf]
    for level in levels[1:]:
        code, left, i, right, j = level.built.T
        values = np.empty((len(code), leaf.shape[1]))
        for key in np.unique(level.built[:, [0, 1, 3]], axis=0):
            rows = (code == key[0]) & (left == key[1]) & (right == key[2])
            operands = [out[key[1]][i[rows]]] + ([out[key[2]][j[rows]]] if key[2] >= 0 else [])
            values[rows] = _apply(names[key[0]], *operands)
        out.append(values)
    return out


def _shape(values: np.ndarray) -> int:
    """One hash for ``values`` and every ``a * values + b``."""
    shape = (values - values.mean()) / values.std()
    return int(_hashes(np.sign(shape[np.flatnonzero(shape)[0]]) * shape[None])[0])


def _combine(levels: list[_Level], size: int, unary: list[int], binary: list[int],
             names: list[str], blocks: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The values of every formula of ``size`` nodes built from the smaller levels, with how
    each was built (`_Level`): those finite and not constant on one of the ``blocks`` equal
    blocks of points at least, NaN on the blocks where they are not."""
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
    split = values.reshape(len(values), blocks, width // blocks)
    with np.errstate(all="ignore"):
        top = np.abs(split).max(axis=2)
        good = np.isfinite(split).all(axis=2) & (top < _LARGE) & (np.ptp(split, axis=2)
                                                                   > 1e-12 * top)
    keep = good.any(axis=1)
    split = np.where(good[:, :, None], split, np.nan)[keep]
    return split.reshape(len(split), width), built[keep]


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
    r2, a, b = _line(values, target, weight)
    return np.column_stack([r2, np.full(len(values), size), np.arange(len(values)), a, b])


def _line(values: np.ndarray, target: np.ndarray, weight: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along the last axis of ``values``: the weighted R² of the best ``a * f + b`` against
    ``target`` (-inf where ``f`` is flat), ``a`` and ``b``."""
    scale = np.abs(values).max(axis=-1)
    with np.errstate(all="ignore"):
        f = values / scale[..., None]  # R² does not change with the scale; overflow does
        mean_f, mean_t = f @ weight, target @ weight
        var_f = (f * f) @ weight - mean_f**2
        cov = f @ (weight * target) - mean_f * mean_t
        var_t = weight @ target**2 - mean_t**2
        r2 = np.where(var_f > 1e-12, cov**2 / (var_f * var_t), -np.inf)
        a = cov / var_f
        b = mean_t - a * mean_f
        return r2, a / scale, b


def _names(levels: list[_Level], names: list[str], level: int, index: int
           ) -> tuple[str, ...]:
    """The preorder of the formula at ``index`` of ``levels[level]``."""
    code, *operands = levels[level].built[index]
    out = [names[code]]
    for k in range(0, 4, 2):
        if operands[k] >= 0:
            out += _names(levels, names, operands[k], operands[k + 1])
    return tuple(out)
