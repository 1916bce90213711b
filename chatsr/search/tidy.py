"""Tidying a found formula: refit its constants, then take the simplest rewrite as good as it.

The search ranks candidates on the data the model read; what the user sees should be the
simplest formula the data support. `polish` refits a formula's constants starting from its
own, and `tidy` tries the rewrites of `chatsr.symbolic.simplify` (``Abs`` of a one-signed
argument, negligible constants, simple numbers, Taylor approximants, dropped constants),
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
import time

import numpy as np
import sympy

from chatsr.search.selection import penalized_loss
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import FitResult, fit_constants, loss_spread
from chatsr.symbolic.operators import ExpressionError
from chatsr.symbolic.simplify import linearizations, prunings, rewrites

__all__ = ["CV_FOLDS", "CV_MIN_POINTS", "MAX_DEGREE", "MAX_REFITS", "TIDY_TOLERANCE",
           "cross_validated_loss", "polish", "polynomials", "tidy"]

TIDY_TOLERANCE = 1e-4  # a simpler rewrite may lose this much relative MSE (refit noise)
MAX_DEGREE = 6  # of the least-squares polynomials offered beside the search's formulas
MAX_TERMS = 10  # coefficients of those polynomials: more is a fit, not a law
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
    accurate, one with fewer constants (``prunings``) may lose what the criterion grants per
    constant. Each rewrite is refitted by `polish` with the other arguments.

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
    while improved:
        improved = False
        formula = best.expression.to_sympy()
        for option in [*rewrites(formula, X), *linearizations(formula, X), *prunings(formula)]:
            if time.perf_counter() > deadline or refits >= MAX_REFITS:
                return best
            try:
                candidate = Expression.from_sympy(option)
            except (ExpressionError, ValueError):
                continue
            if (candidate.complexity, candidate.n_constants) >= (
                    best.expression.complexity, best.expression.n_constants):
                continue  # neither shorter nor, as short, with fewer constants
            refits += 1
            refit = polish(candidate, X, y, random_state=rng, sample_weight=sample_weight,
                           loss=loss, time_limit=time_limit)
            if criterion(refit) <= limit:
                best, improved = refit, True
    return best


def polynomials(X: np.ndarray, y: np.ndarray, *, max_degree: int = MAX_DEGREE,
                sample_weight: np.ndarray | None = None) -> list[Expression]:
    """The least-squares polynomial of ``y`` in the columns of ``X`` (at most 3) whose degree,
    of 1 to ``max_degree`` with at most ``MAX_TERMS`` coefficients and fewer than a third of
    the points, has the lowest penalised loss (`chatsr.search.selection.penalized_loss`); an
    empty list when none can be fitted.

    A genetic-programming engine writes a polynomial as whatever its operators approximate it
    with; the polynomial itself is then a candidate that `tidy` can reduce to its real terms.

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
    symbols = sympy.symbols(f"x1:{d + 1}", real=True)
    best, best_loss = None, np.inf
    monomials: list[tuple[int, ...]] = [()]
    for degree in range(1, max_degree + 1):
        monomials += list(itertools.combinations_with_replacement(range(d), degree))
        if len(monomials) > MAX_TERMS or 3 * len(monomials) > n:
            break
        basis = np.column_stack([np.prod(X[:, list(m)], axis=1) for m in monomials])
        with np.errstate(all="ignore"):
            coefficients = np.linalg.lstsq(basis * root[:, None], y * root, rcond=None)[0]
            mse = float(np.sum(weight * (basis @ coefficients - y) ** 2) / np.sum(weight))
        loss = penalized_loss(mse + 1e-14 * float(np.var(y)), len(monomials), n)
        if np.isfinite(coefficients).all() and loss < best_loss:
            best_loss = loss
            best = sum(sympy.Float(float(c)) * sympy.Mul(*(symbols[i] for i in m))
                       for c, m in zip(coefficients, monomials, strict=True))
    if best is None:
        return []
    try:
        return [Expression.from_sympy(best)]
    except (ExpressionError, ValueError):
        return []


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
        if expression.n_constants:
            refit = polish(expression, X[rest], y[rest], random_state=random_state,
                           sample_weight=None if sample_weight is None else weight[rest],
                           loss=loss, time_limit=time_limit)
            expression = refit.expression if refit.success else expression
        with np.errstate(all="ignore"):
            f = np.broadcast_to(expression(X[held]), held.shape)
            residual = np.log(f / y[held]) if loss == "log" else f - y[held]
        errors += float(np.sum(weight[held] * residual**2))
        total += float(np.sum(weight[held]))
        expression = fit.expression
    value = errors / total if total > 0 else np.inf
    return value if np.isfinite(value) else np.inf

