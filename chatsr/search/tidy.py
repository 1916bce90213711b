"""Tidying a found formula: refit its constants, then take the simplest rewrite as good as it.

The search ranks candidates on the data the model read; what the user sees should be the
simplest formula the data support. `polish` refits a formula's constants starting from its
own, and `tidy` tries the rewrites of `chatsr.symbolic.simplify` (``Abs`` of a one-signed
argument, negligible constants, simple numbers, Taylor approximants, dropped constants,
constants rounded to nearby simple numbers),
keeping one only when the penalised loss (`chatsr.search.selection.penalized_loss`, the
small-sample corrected Akaike criterion the results table compares by) is as good.

>>> import numpy as np
>>> from chatsr.symbolic.expressions import Expression
>>> X = np.linspace(1.0, 4.0, 30).reshape(-1, 1)
>>> fit = polish(Expression.parse("+ * C x1 C"), X, 2.0 * X[:, 0], random_state=0)
>>> tidy(fit, X, 2.0 * X[:, 0], random_state=0).expression.infix()
'2*x1'
"""

from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
import sympy

from chatsr.search.selection import penalized_loss
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import FitResult, fit_constants, loss_spread
from chatsr.symbolic.operators import ExpressionError
from chatsr.symbolic.simplify import linearizations, prunings, rewrites, roundings

__all__ = ["CV_FOLDS", "CV_MIN_POINTS", "MAX_DEGREE", "MAX_REFITS", "TIDY_TOLERANCE",
           "cross_validated_loss", "polish", "polynomials", "tidy"]

TIDY_TOLERANCE = 1e-4  # a simpler rewrite may lose this much relative MSE (refit noise)
MAX_DEGREE = 6  # of the least-squares polynomials offered beside the search's formulas
MAX_TERMS = 10  # terms of those polynomials: more is a fit, not a law
MAX_SUBSETS = 3_000  # sets of k monomials tried one by one; more: matching pursuit
MAX_REFITS = 25  # rewrites `tidy` refits per formula: bounds its effort without a clock
CV_FOLDS = 5
CV_MIN_POINTS = 20  # fewer: held-out fifths of 1–3 points judge extrapolation, not the law


def polish(expression: Expression, X: np.ndarray, y: np.ndarray, *,
           random_state: int | np.random.Generator | None = None,
           sample_weight: np.ndarray | None = None, loss: str = "mse",
           time_limit: float | None = None) -> FitResult:
    """Refit the constants of ``expression`` on ``X``, ``y``, starting from those it has.

    ``sample_weight`` and ``loss`` are those of `chatsr.symbolic.fitting.fit_constants`;
    ``time_limit`` (seconds, None: none) bounds the fit. Constants that are not finite (one
    that overflowed in a change of units) are ignored as a starting point.

    >>> import numpy as np
    >>> X = np.linspace(1.0, 2.0, 20).reshape(-1, 1)
    >>> start = Expression.parse("* C x1").with_constants([float("inf")])
    >>> round(float(polish(start, X, 3.0 * X[:, 0], random_state=0).constants[0]), 6)
    3.0
    """
    initial = None if expression.constants is None else np.asarray(expression.constants)
    if initial is not None and not np.isfinite(initial).all():
        initial = None
    with np.errstate(all="ignore"):
        return fit_constants(expression, X, y, restarts=2, random_state=random_state,
                             initial=initial, time_limit=time_limit,
                             sample_weight=sample_weight, loss=loss)


def tidy(fit: FitResult, X: np.ndarray, y: np.ndarray, *,
         random_state: int | np.random.Generator | None = None,
         sample_weight: np.ndarray | None = None, loss: str = "mse",
         time_limit: float | None = None, deadline: float = np.inf) -> FitResult:
    """The simplest rewrite of ``fit`` (`chatsr.symbolic.simplify`) that is as good, or ``fit``.

    As good means a penalised loss at most ``TIDY_TOLERANCE`` (refit noise) above the fit's:
    a rewrite with the same values (``rewrites``) or nearly (``linearizations``) must be as
    accurate, one with fewer constants (``prunings``, ``roundings``) may lose what the
    criterion grants per constant. Each rewrite is refitted by `polish` with the other arguments.

    >>> import numpy as np
    >>> X = np.linspace(1.0, 4.0, 30).reshape(-1, 1)
    >>> fit = polish(Expression.parse("abs * C x1"), X, 2.0 * X[:, 0], random_state=0)
    >>> tidy(fit, X, 2.0 * X[:, 0], random_state=0).expression.infix()
    '2*x1'
    """
    n = len(y)
    spread = loss_spread(y, sample_weight, loss)
    rng = np.random.default_rng(random_state)

    def criterion(f: FitResult) -> float:
        # a floor relative to the data: exact fits compare by their constants, not by noise
        return penalized_loss(f.loss + 1e-14 * spread, f.expression.n_constants, n)

    best, improved, refits = fit, True, 0
    limit = criterion(fit) * (1 + TIDY_TOLERANCE)
    while improved and time.perf_counter() < deadline:
        improved = False
        formula = best.expression.to_sympy()
        for option in [*rewrites(formula, X, deadline), *linearizations(formula, X),
                       *prunings(formula), *roundings(formula)]:
            if time.perf_counter() > deadline or refits >= MAX_REFITS:
                return best
            try:
                candidate = Expression.from_sympy(option)
            except (ExpressionError, ValueError):
                continue
            if (candidate.complexity >= best.expression.complexity
                    and candidate.n_constants >= best.expression.n_constants):
                continue  # neither shorter nor with fewer constants
            refits += 1
            refit = polish(candidate, X, y, random_state=rng, sample_weight=sample_weight,
                           loss=loss, time_limit=time_limit)
            if criterion(refit) <= limit:
                best, improved = refit, True
    return best


def polynomials(X: np.ndarray, y: np.ndarray, *, max_degree: int = MAX_DEGREE,
                sample_weight: np.ndarray | None = None) -> list[Expression]:
    """The sparse least-squares polynomial of ``y`` in the columns of ``X`` (at most 3) with
    the lowest penalised loss (`chatsr.search.selection.penalized_loss`): for each degree of
    1 to ``max_degree`` and each number ``k`` of terms, up to ``MAX_TERMS`` and fewer than
    half the points, the best ``k`` of its monomials (all subsets where there are at most
    ``MAX_SUBSETS``, else scikit-learn's orthogonal matching pursuit); an empty list when
    none can be fitted.

    A genetic-programming engine writes a polynomial as whatever its operators approximate it
    with, and a dense fit of every monomial needs more points than a few terms of high degree
    (``x1**4 - x1**3 + x2**2/2 - x2`` is 4 of the 15 monomials of degree 4 in two variables);
    the sparse polynomial is a candidate that `tidy` can reduce to its real terms.

    >>> X = np.linspace(-1.0, 1.0, 20).reshape(-1, 1)
    >>> y = X[:, 0] ** 2 + X[:, 0]
    >>> [parabola] = polynomials(X, y, max_degree=4)
    >>> tidy(polish(parabola, X, y, random_state=0), X, y, random_state=0).expression.infix()
    'x1**2 + x1'
    """
    n, d = X.shape
    if d > 3:
        return []
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    root = np.sqrt(weight)
    floor = 1e-14 * float(np.var(y))  # exact fits compare by their number of terms
    best, best_loss = None, np.inf
    monomials: list[tuple[int, ...]] = [()]
    for degree in range(1, max_degree + 1):
        monomials += list(itertools.combinations_with_replacement(range(d), degree))
        basis = np.column_stack([np.prod(X[:, list(m)], axis=1) for m in monomials])
        weighted = basis * root[:, None]
        for support in _best_supports(weighted, y * root,
                                      min(MAX_TERMS, len(monomials), (n - 1) // 2)):
            with np.errstate(all="ignore"):
                coefficients = np.linalg.lstsq(weighted[:, support], y * root, rcond=None)[0]
                mse = float(np.sum(weight * (basis[:, support] @ coefficients - y) ** 2)
                            / np.sum(weight))
            loss = penalized_loss(mse + floor, len(support), n)
            if np.isfinite(coefficients).all() and loss < best_loss:
                best_loss, best = loss, [(c, monomials[i]) for c, i in
                                         zip(coefficients, support, strict=True)]
    if best is None:
        return []
    symbols = sympy.symbols(f"x1:{d + 1}", real=True)
    formula = sympy.Add(*(sympy.Float(float(c)) * sympy.Mul(*(symbols[i] for i in m))
                          for c, m in best))
    try:
        return [Expression.from_sympy(formula)]
    except (ExpressionError, ValueError):
        return []


def _best_supports(basis: np.ndarray, y: np.ndarray, most: int) -> list[list[int]]:
    """For each ``k`` of 1 to ``most``: the columns of ``basis`` whose least-squares fit of
    ``y`` leaves the least residual, by every subset (on the normal equations of the
    normalised columns) where there are at most ``MAX_SUBSETS``, else by orthogonal matching
    pursuit; none when a column is zero or not finite."""
    from sklearn.linear_model import orthogonal_mp

    scale = np.sqrt(np.sum(basis**2, axis=0))
    if most < 1 or not (np.isfinite(scale).all() and (scale > 0).all()):
        return []
    unit = basis / scale
    gram, correlation = unit.T @ unit, unit.T @ y
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "orthogonal matching pursuit ended prematurely"
        path = orthogonal_mp(unit, y, n_nonzero_coefs=most, return_path=True)
    path = path.reshape(basis.shape[1], -1)
    supports = []
    for k in range(1, most + 1):
        if math.comb(basis.shape[1], k) > MAX_SUBSETS:
            supports.append(sorted(np.flatnonzero(path[:, min(k, path.shape[1]) - 1])))
            continue
        subsets = np.array(list(itertools.combinations(range(basis.shape[1]), k)))
        g = gram[subsets[:, :, None], subsets[:, None, :]]  # (subsets, k, k)
        b = correlation[subsets]
        with np.errstate(all="ignore"):
            explained = np.einsum("sk,sk->s", b, np.linalg.solve(
                g + 1e-12 * np.eye(k), b[..., None])[..., 0])
        explained[~np.isfinite(explained)] = -np.inf
        supports.append(list(subsets[int(np.argmax(explained))]))
    return supports


def cross_validated_loss(fit: FitResult, X: np.ndarray, y: np.ndarray, *,
                         folds: int = CV_FOLDS,
                         random_state: int | np.random.Generator | None = None,
                         sample_weight: np.ndarray | None = None, loss: str = "mse",
                         time_limit: float | None = None) -> float:
    """The mean loss of ``fit``'s formula on each of ``folds`` parts of the points, its
    constants refitted (from ``fit``'s) on the other parts; NaN for fewer than
    ``CV_MIN_POINTS`` points.

    A formula that bends through the noise (``exp(-0.3*t + 0.01*sin(46*t))``) fits its
    training points better than the law, and the held-out points worse: this is what the
    choice of a formula compares, where the training loss would reward every wiggle.

    >>> rng = np.random.default_rng(0)
    >>> X = np.linspace(0.0, 3.0, 40).reshape(-1, 1)
    >>> y = np.exp(-X[:, 0]) + 0.01 * rng.standard_normal(40)
    >>> law = polish(Expression.parse("exp * C x1"), X, y, random_state=0)
    >>> round(cross_validated_loss(law, X, y, random_state=0) / law.loss, 1)
    1.1
    """
    n = len(y)
    if n < CV_MIN_POINTS:
        return float("nan")
    expression = fit.expression
    if not fit.success:
        return fit.loss
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    parts = np.array_split(np.random.default_rng(random_state).permutation(n), folds)
    errors, total = 0.0, 0.0
    for held in parts:
        rest = np.setdiff1d(np.arange(n), held)
        if expression.n_constants:  # one local refit: the fold moves the optimum a little
            with np.errstate(all="ignore"):
                refit = fit_constants(expression, X[rest], y[rest], restarts=1,
                                      initial=np.asarray(fit.constants), time_limit=time_limit,
                                      sample_weight=None if sample_weight is None
                                      else weight[rest], loss=loss)
            expression = refit.expression if refit.success else expression
        with np.errstate(all="ignore"):
            f = np.broadcast_to(expression(X[held]), held.shape)
            residual = np.log(f / y[held]) if loss == "log" else f - y[held]
        errors += float(np.sum(weight[held] * residual**2))
        total += float(np.sum(weight[held]))
        expression = fit.expression
    value = errors / total if total > 0 else np.inf
    return value if np.isfinite(value) else np.inf

