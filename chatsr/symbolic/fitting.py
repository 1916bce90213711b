"""Fit the constants of a skeleton to data: BFGS on the mean squared error, with restarts.

This is the reference ChatSR fitter (scipy BFGS, 8 restarts from 0, +1, −1 and N(0, 2²) draws,
``maxiter=1000``) made exact and robust: the gradient is analytic (the skeleton's compiled
forward-mode Jacobian), points where the expression is not finite are walled off instead of
poisoning the search with NaN, the search stops once the data are reproduced exactly, and a
wall-clock budget bounds the whole fit.

Examples
--------
>>> import numpy as np
>>> from chatsr.symbolic.expressions import Expression
>>> X = np.linspace(-2.0, 2.0, 50).reshape(-1, 1)
>>> y = 2.5 * np.exp(0.5 * X[:, 0])
>>> result = fit_constants(Expression.parse("* C exp * C x1"), X, y, random_state=0)
>>> result.expression.infix(), result.success, bool(result.r2 > 0.999999)
('2.5*exp(0.5*x1)', True, True)
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from chatsr.symbolic.evaluation import compile_skeleton
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.metrics import mse as mean_squared_error
from chatsr.symbolic.metrics import r2 as r2_score
from chatsr.symbolic.validation import check_array

__all__ = ["FitResult", "fit_constants", "loss_spread"]

logger = logging.getLogger(__name__)

# The reference's deterministic starting points; later restarts draw from N(0, INIT_SCALE²).
FIXED_STARTS = (0.0, 1.0, -1.0)
INIT_SCALE = 2.0
# A restart whose MSE is below EXACT_NMSE · var(y) reproduces the data to about 1e-7 of their
# spread: the fit is exact up to float noise and further restarts cannot improve it.
EXACT_NMSE = 1e-14
# A restart stops when the gradient of the *normalised* MSE is below GTOL, or when an iteration
# lowers it by less than FTOL relatively. scipy's default alone (gtol=1e-5) leaves constants
# wrong in the sixth digit on noise-free data; GTOL alone would crawl for all of maxiter along
# the flat valleys of degenerate fits (A·sin(ωx) with A → ∞, ω → 0). Together: full precision
# on exact data, where the MSE keeps falling by orders of magnitude, and a prompt stop on a
# plateau (FTOL is L-BFGS-B's default factr·eps), after STALLED_ITERATIONS iterations in a row.
GTOL = 1e-10
FTOL = 2.2e-9
STALLED_ITERATIONS = 2


class _TimeUp(Exception):
    """Raised inside the objective to abandon BFGS when the time budget is spent."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarray fields with == is ambiguous
class FitResult:
    """The outcome of :func:`fit_constants`.

    Attributes
    ----------
    expression
        The skeleton with the best constants found (``Expression.with_constants``).
    constants
        The best constants, shape (n_constants,), read-only. When ``success`` is False they are
        the first starting point (all zeros) and mean nothing.
    mse
        Mean squared error of ``expression`` on the data; ``inf`` when no restart found
        constants at which the expression is finite on every point.
    loss
        What the fit minimised: the mean squared error (``mse``), or of the logarithms with
        ``loss="log"``, weighted by ``sample_weight`` if given: ``sum(w * r**2) / sum(w)``.
    r2
        Coefficient of determination, as :func:`chatsr.symbolic.metrics.r2`; ``-inf`` on failure.
    success
        Whether some constants made the expression finite on every data point (and of the
        sign of ``y``, for ``loss="log"``): whether ``loss`` is finite.
    n_restarts_run
        Restarts started (0 for a skeleton without constants, which is only evaluated).
    timed_out
        Whether ``time_limit`` cut the search short (the result is the best point seen).
    time
        Wall-clock seconds spent.
    """

    expression: Expression
    constants: np.ndarray
    mse: float
    loss: float
    r2: float
    success: bool
    n_restarts_run: int
    timed_out: bool
    time: float


def fit_constants(expr: Expression, X: np.ndarray, y: np.ndarray, *, restarts: int = 8,
                  maxiter: int = 1000, time_limit: float | None = 1.0,
                  random_state: int | np.random.Generator | None = None,
                  initial: np.ndarray | None = None,
                  sample_weight: np.ndarray | None = None,
                  loss: Literal["mse", "log"] = "mse") -> FitResult:
    """Fit the constant placeholders ``C`` of ``expr`` to minimise the MSE on ``(X, y)``.

    BFGS with an analytic gradient runs from up to ``restarts`` starting points: all constants
    0, then all +1, then all −1, then draws from N(0, 2²). The search stops early once a
    restart reproduces ``y`` exactly (MSE ≤ 1e-14 · var(y)) or ``time_limit`` seconds are
    spent; the best constants seen so far are returned either way.

    Parameters
    ----------
    expr
        The skeleton; fitted values it may carry are ignored.
    X
        Inputs, shape (n_points, n_columns); column ``i-1`` is ``x_i``.
    y
        Targets, shape (n_points,).
    restarts
        Number of starting points (at least 1).
    maxiter
        BFGS iterations per restart.
    time_limit
        Wall-clock budget in seconds, checked at every evaluation of the objective; ``None``
        for no limit. At least one evaluation always runs.
    random_state
        Seed or generator for the random starting points.
    initial
        Constants to start from before the others (e.g. a fit made in other units); it
        counts as one of the ``restarts``.
    sample_weight
        Non-negative weights, shape (n_points,), not all zero: the fit minimises the weighted
        loss. None: all equal.
    loss
        ``"mse"``: the mean squared error; ``"log"``: the mean squared error of ``log|f|``
        against ``log|y|``, for ``y`` of one sign spanning decades, where it weighs every
        point by its relative error (``f`` must keep the sign of ``y``; where it does not, the
        loss is infinite). On the log scale ``A*exp(B/x)`` is linear in ``log A`` and ``B``:
        BFGS finds them from any start.

    Returns
    -------
    FitResult
        ``success`` is False (with ``mse=inf``, ``r2=-inf``) when no starting point led to
        constants at which the expression is finite on all points; nothing is raised then.

    Raises
    ------
    ValueError
        If ``X`` or ``y`` have the wrong shape, are empty or contain NaN/inf, if ``X`` has fewer
        columns than the variables ``expr`` uses, or if an option is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from chatsr.symbolic.expressions import Expression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-3.0, 3.0, size=(200, 1))
    >>> y = 2.5 * np.sin(1.3 * X[:, 0]) + 0.7
    >>> result = fit_constants(Expression.parse("+ * C sin * C x1 C"), X, y, random_state=0)
    >>> np.round(np.abs(result.constants), 6).tolist(), bool(result.mse < 1e-20)
    ([2.5, 1.3, 0.7], True)
    """
    start = time.perf_counter()
    if not isinstance(expr, Expression):
        raise TypeError(f"expr must be an Expression (see Expression.parse), got "
                        f"{type(expr).__name__}")
    X, y = _check_data(expr, X, y)
    weight = _check_weight(sample_weight, y)
    sign = _log_sign(y, loss)
    _check_options(restarts, maxiter, time_limit)
    k = expr.n_constants
    if k == 0:
        return _result(expr, np.zeros(0), X, y, weight, sign, n_restarts_run=0,
                       timed_out=False, start=start)
    starts = _starting_points(k, restarts, random_state, initial)
    deadline = math.inf if time_limit is None else start + time_limit
    search = _Search(expr, X, y, weight, sign, deadline)
    n_run, timed_out = search.run(starts, maxiter)
    if timed_out:
        logger.debug("fit_constants: time limit of %s s reached after %d restart(s)",
                     time_limit, n_run)
    return _result(expr, search.best_constants, X, y, weight, sign, n_restarts_run=n_run,
                   timed_out=timed_out, start=start)


def _check_options(restarts: int, maxiter: int, time_limit: float | None) -> None:
    if restarts < 1:
        raise ValueError(f"restarts must be at least 1, got {restarts}")
    if maxiter < 1:
        raise ValueError(f"maxiter must be at least 1, got {maxiter}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds or None, got "
                         f"{time_limit}")


def _starting_points(k: int, restarts: int, random_state: int | np.random.Generator | None,
                     initial: np.ndarray | None) -> list[np.ndarray]:
    """The reference's fixed starts, then random draws; ``initial`` replaces the last one."""
    rng = np.random.default_rng(random_state)
    starts = [np.full(k, v) for v in FIXED_STARTS[:restarts]]
    starts += list(rng.normal(0.0, INIT_SCALE, size=(restarts - len(starts), k)))
    if initial is not None:
        initial = check_array("initial", initial, shape=(k,), hint="one value per constant")
        starts = [initial, *starts[:-1]]
    return starts


class _Search:
    """The BFGS restarts' shared state: the objective, its stopping rules and the best point
    seen, which is kept across restarts and survives a timeout."""

    def __init__(self, expr: Expression, X: np.ndarray, y: np.ndarray,
                 weight: np.ndarray | None, sign: int, deadline: float):
        self.X, self.weight, self.sign, self.deadline = X, weight, sign, deadline
        self.target = y if not sign else np.log(sign * y)
        self.norm = 2.0 / (y.size * _loss_scale(self.target, weight))
        # Called directly rather than through expr.value_and_jacobian, whose per-call
        # validation costs 20-30 % of an evaluation on small data; _check_data did it once.
        self.value_and_jacobian = compile_skeleton(expr.names, True)
        self.best_nmse, self.best_constants = math.inf, np.zeros(expr.n_constants)
        self.previous, self.stalled = math.inf, 0

    def run(self, starts: list[np.ndarray], maxiter: int) -> tuple[int, bool]:
        """BFGS from each start until the data are reproduced or the time is up: returns the
        number of restarts started and whether the deadline cut the search short."""
        n_run = 0
        # numpy warnings off for the whole search: overflow and invalid values are expected
        # while exploring, and the objective handles them.
        with np.errstate(all="ignore"):
            for x0 in starts:
                if time.perf_counter() > self.deadline:
                    return n_run, True
                n_run += 1
                self.previous, self.stalled = math.inf, 0
                try:
                    # The result is not needed: the objective keeps the best point it has seen.
                    minimize(self.objective, x0, jac=True, method="BFGS", callback=self.callback,
                             options={"maxiter": maxiter, "gtol": GTOL})
                except _TimeUp:
                    return n_run, True
                if self.best_nmse <= EXACT_NMSE:
                    break
        return n_run, False

    def objective(self, c: np.ndarray) -> tuple[float, np.ndarray]:
        """The normalised (weighted) loss at constants ``c`` and its gradient."""
        values, jac = self.value_and_jacobian(self.X, c)  # (n,), (n, k)
        if self.sign:  # d log(s f) / dc = f' / f; f of the wrong sign is a wall, as inf is
            sign = self.sign
            values = np.log(np.where(sign * values > 0, sign * values, np.nan))
            jac = jac / np.exp(values)[:, None] * sign
        residual = values - self.target  # (n,)
        weighted = residual if self.weight is None else self.weight * residual  # (n,)
        nmse = float(weighted @ residual) * (0.5 * self.norm)
        grad = self.norm * (jac.T @ weighted)  # (k,)
        if math.isfinite(nmse) and not np.isfinite(grad).all():
            # NaN in the Jacobian where the values are finite is an indeterminate 0·inf: the
            # derivative of x**C at x = 0, of sqrt(C*x) at x = 0. The term does not change
            # with the constant at that point, so its true derivative is 0.
            grad = self.norm * (np.where(np.isnan(jac), 0.0, jac).T @ weighted)
        if not (math.isfinite(nmse) and np.isfinite(grad).all()):
            # A point where the expression (or its derivative) is not finite somewhere is a
            # wall: +inf makes the Wolfe line search reject the step and backtrack into the
            # finite region. NaN stops BFGS on the spot ("NaN result encountered"); a large
            # finite sentinel such as 1e300 also works but took more evaluations to back off.
            nmse, grad = math.inf, np.zeros_like(c)
        elif nmse < self.best_nmse:
            self.best_nmse, self.best_constants = nmse, c.copy()
        # Checked here rather than in a per-iteration callback: a single line search can take
        # many evaluations, and this bounds the overrun to one evaluation.
        if time.perf_counter() > self.deadline:
            raise _TimeUp
        return nmse, grad

    def callback(self, intermediate_result: OptimizeResult) -> None:
        """Once per BFGS iteration: end the restart on a plateau."""
        current = intermediate_result.fun
        self.stalled = self.stalled + 1 if self.previous - current <= FTOL * current else 0
        self.previous = current
        # Two stalled iterations in a row, not one: BFGS sometimes takes one tiny step while
        # its Hessian estimate catches up and then makes large progress again.
        if self.stalled == STALLED_ITERATIONS:
            raise StopIteration  # scipy's way to end a minimisation early


def _loss_scale(target: np.ndarray, weight: np.ndarray | None) -> float:
    """What the objective divides the loss by, so that BFGS's gradient tolerance means the
    same on any data: var(y), or mean(y²) when y is constant, weighted as the loss is."""
    scale = (_weighted_variance(target, weight) if np.ptp(target) > 0
             else _weighted_mean(target * target, weight))
    if not 0 < scale < math.inf:  # y all zero, or so extreme that its variance over/underflows
        return 1.0
    return scale


def loss_spread(y: np.ndarray, sample_weight: np.ndarray | None = None,
                loss: Literal["mse", "log"] = "mse") -> float:
    """The (weighted) variance of what ``loss`` compares, ``y`` or ``log|y|``: the loss of
    predicting their mean, which turns a `FitResult.loss` into a normalised one.

    >>> loss_spread(np.array([1.0, 3.0]))
    1.0
    >>> round(loss_spread(np.array([1.0, np.e**2]), loss="log"), 6)
    1.0
    """
    y = np.asarray(y, dtype=np.float64)
    sign = _log_sign(y, loss)
    return _weighted_variance(y if not sign else np.log(sign * y), _check_weight(sample_weight, y))


def _log_sign(y: np.ndarray, loss: str) -> int:
    if loss == "mse":
        return 0
    if loss != "log":
        raise ValueError(f"loss must be 'mse' or 'log', got {loss!r}")
    if (y > 0).all():
        return 1
    if (y < 0).all():
        return -1
    raise ValueError("loss='log' compares log|f| with log|y|: y must keep one sign and never "
                     "be 0")


def _result(expr: Expression, constants: np.ndarray, X: np.ndarray, y: np.ndarray,
            weight: np.ndarray | None, sign: int, *, n_restarts_run: int, timed_out: bool,
            start: float) -> FitResult:
    fitted = expr.with_constants(constants.tolist())
    yhat = np.broadcast_to(fitted(X), y.shape)
    mse = mean_squared_error(y, yhat)
    loss = mse
    if math.isfinite(mse) and (weight is not None or sign):
        with np.errstate(all="ignore"):
            residual = (yhat - y if not sign else
                        np.log(np.where(sign * yhat > 0, sign * yhat, np.nan)) - np.log(sign * y))
            loss = _weighted_mean(np.square(residual), weight)
        loss = loss if math.isfinite(loss) else math.inf
    constants.setflags(write=False)
    return FitResult(expression=fitted, constants=constants, mse=mse, loss=loss,
                     r2=r2_score(y, yhat), success=math.isfinite(loss),
                     n_restarts_run=n_restarts_run, timed_out=timed_out,
                     time=time.perf_counter() - start)


def _weighted_mean(values: np.ndarray, weight: np.ndarray | None) -> float:
    return float(np.mean(values)) if weight is None else float(weight @ values) / weight.size


def _weighted_variance(y: np.ndarray, weight: np.ndarray | None) -> float:
    return _weighted_mean(np.square(y - _weighted_mean(y, weight)), weight)


def _check_weight(sample_weight: np.ndarray | None, y: np.ndarray) -> np.ndarray | None:
    """The weights scaled to mean 1 (so the weighted MSE is a plain mean), or None."""
    if sample_weight is None:
        return None
    weight = check_array("sample_weight", sample_weight, shape=y.shape, hint="one per point of y")
    if (weight < 0).any() or not weight.any():
        raise ValueError("sample_weight must be non-negative, and not all zero")
    return weight / weight.mean()


def _check_data(expr: Expression, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = check_array("X", X, shape=("n_points", "n_columns"))
    y = check_array("y", y, shape=("n_points",))
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of points, got {X.shape[0]} rows "
                         f"in X and {y.shape[0]} values in y")
    used = expr.variables
    if used and used[-1] > X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} column(s) but the expression uses x{used[-1]}")
    return X, y
