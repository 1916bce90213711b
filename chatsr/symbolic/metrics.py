"""Metrics: errors and R² of predictions, E2E's accuracy to tolerance, and SRBench's symbolic
recovery of a formula.

Every numeric metric has an answer for every input: non-finite predictions give ``inf`` MSE and
``-inf`` R² (never NaN), and a constant target, for which R² is 0/0, is scored 1.0 when the
predictions match it and ``-inf`` otherwise.

Examples
--------
>>> import numpy as np
>>> y, yhat = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
>>> mse(y, yhat), nmse(y, yhat), r2(y, yhat)
(0.3333333333333333, 0.5, 0.5)
>>> accuracy_to_tolerance(y, yhat, tol=0.05, fraction=0.6)
True
>>> symbolic_recovery("2*x1 + sin(x2)", "2.0001*x1 + sin(x2) + 0.4")
True
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import numbers
import os
import signal
import sys
import threading
from collections.abc import Collection
from multiprocessing.connection import Connection

import mpmath
import numpy as np
import sympy

from chatsr.symbolic.expressions import Expression, ExpressionError, sympify_real
from chatsr.symbolic.validation import check_array

__all__ = ["accuracy_to_tolerance", "mse", "nmse", "r2", "symbolic_recovery"]

logger = logging.getLogger(__name__)

# A constant target matches predictions within |yhat - y| <= ATOL + RTOL * |y| at every point:
# loose enough for constants fitted in float64, tight enough that nothing else passes.
CONSTANT_TARGET_RTOL = 1e-8
CONSTANT_TARGET_ATOL = 1e-12

ExpressionLike = str | sympy.Basic | Expression


# numeric metrics ---------------------------------------------------------------------------------
def mse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean squared error; ``inf`` if any prediction is NaN or infinite.

    >>> mse([1.0, 2.0], [1.0, 4.0])
    2.0
    """
    y, yhat = _check_pair(y, yhat)
    if not np.isfinite(yhat).all():
        return math.inf
    with np.errstate(over="ignore"):  # huge but finite predictions overflow to inf: that is right
        residual = yhat - y
        return float(residual @ residual) / y.size


def nmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Normalised MSE, ``mse / var(y)``.

    For a constant ``y`` the ratio is 0/0; it is defined as 0.0 when the predictions match
    ``y`` (``|yhat - y| <= 1e-12 + 1e-8 * |y|`` at every point) and ``inf`` otherwise.

    >>> nmse([1.0, 3.0], [1.0, 4.0]), nmse([2.0, 2.0], [2.0, 2.0]), nmse([2.0, 2.0], [2.0, 2.1])
    (0.5, 0.0, inf)
    """
    y, yhat = _check_pair(y, yhat)
    if np.ptp(y) == 0:  # exact test: a variance of float noise around a constant is not 0
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.abs(yhat - y) <= CONSTANT_TARGET_ATOL + CONSTANT_TARGET_RTOL * np.abs(y)
        return 0.0 if close.all() else math.inf
    return mse(y, yhat) / float(np.var(y))


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination, ``1 - SS_res / SS_tot`` (that is, ``1 - nmse``).

    Non-finite predictions give ``-inf``. For a constant ``y`` (SS_tot = 0) the answer is 1.0
    when the predictions match ``y`` (as in :func:`nmse`) and ``-inf`` otherwise, not
    scikit-learn's 0.0: predicting anything but the constant is infinitely worse than
    predicting the mean, and ``-inf`` keeps ``r2 == 1 - nmse`` and SRBench's ``r2 > 0.999``
    test meaningful.

    >>> r2([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), r2([5.0, 5.0], [5.0, 5.0]), r2([5.0, 5.0], [5.0, 6.0])
    (0.5, 1.0, -inf)
    """
    return 1.0 - nmse(y, yhat)


def accuracy_to_tolerance(y: np.ndarray, yhat: np.ndarray, *, tol: float = 0.05,
                          fraction: float = 0.95) -> bool:
    """E2E's ``acc_tau``: at least ``fraction`` of the points have ``|yhat - y| <= tol * |y|``.

    A point with ``y == 0`` counts only when predicted exactly (its relative error is 0/0; this
    is what E2E's ``np.isclose(atol=0)`` does). Non-finite predictions never count.

    >>> accuracy_to_tolerance([1.0, 2.0, 0.0, 4.0], [1.01, 2.5, 0.0, 4.0], fraction=0.75)
    True
    """
    y, yhat = _check_pair(y, yhat)
    if not tol >= 0:
        raise ValueError(f"tol must be a non-negative relative error, got {tol}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    with np.errstate(invalid="ignore", over="ignore"):
        within = np.abs(yhat - y) <= tol * np.abs(y)  # NaN compares False
    return bool(np.mean(within) >= fraction)


def _check_pair(y: np.ndarray, yhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = check_array("y", y, shape=("n_points",))
    yhat = check_array("yhat", yhat, shape=("n_points",), finite=False)
    if yhat.shape != y.shape:
        raise ValueError(f"yhat must have the shape of y {y.shape}, got {yhat.shape}")
    return y, yhat


# symbolic recovery -------------------------------------------------------------------------------
def symbolic_recovery(truth: ExpressionLike, model: ExpressionLike, *, timeout: float = 5.0,
                      digits: int = 3, positive: Collection[str] = ()) -> bool:
    """SRBench's symbolic-solution test: is ``model`` the ``truth`` up to a constant?

    The model's floating-point constants are rounded to ``digits`` significant digits (SRBench
    rounds to decimal places; significant digits treat large and small constants alike), then
    the model is a symbolic solution if sympy reduces ``truth - model`` to a constant or
    ``truth / model`` to a nonzero constant. Floats in the truth are taken exactly.

    Most answers are quick: sympy's automatic canonicalisation settles many positives, and a
    numeric test at random points (30-digit mpmath, so cancellation cannot fool it) rejects a
    model whose difference and ratio both visibly vary, without any simplification. Only the
    rest goes to ``expand``, ``cancel`` and ``simplify``. All sympy work, parsing included
    (``"5**5**5**5"`` never finishes), runs in a reusable worker process that is killed after
    ``timeout`` seconds; a timed-out check logs a warning and counts as not recovered.
    Formulas nested deeper than :data:`~chatsr.symbolic.sympy_parsing.MAX_DEPTH` are refused.

    Parameters
    ----------
    truth, model
        Formulas as text (``"2.5*sin(x1)"``), sympy expressions or fitted
        :class:`~chatsr.symbolic.expressions.Expression`; all symbols are taken as real.
    timeout
        Seconds the sympy work may take.
    digits
        Significant digits kept in the model's constants.
    positive
        Names of the variables known to be positive (the data's range), for which
        ``sqrt(x1**2*x2)`` is ``x1*sqrt(x2)``; the others are any real number.

    Returns
    -------
    bool

    Raises
    ------
    ExpressionError
        (a ``ValueError``) If a formula cannot be read: text is read by
        :func:`~chatsr.symbolic.sympy_parsing.parse_formula`, never evaluated.
    ValueError
        If an ``Expression`` has unfitted constants or an option is out of range.
    TypeError
        If ``truth`` or ``model`` is none of the accepted types.

    Examples
    --------
    >>> symbolic_recovery("x1**2", "3.0*x1**2"), symbolic_recovery("exp(x1)", "x1")
    (True, False)
    >>> [symbolic_recovery("sqrt(x1**2 + x1**2*x2)", "x1*sqrt(1 + x2)", positive=p)
    ...  for p in ((), ["x1"])]
    [False, True]
    """
    if not (isinstance(timeout, numbers.Real) and 0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive, finite number of seconds, got "
                         f"{timeout!r}")
    if not (isinstance(digits, numbers.Integral) and digits >= 1):
        raise ValueError(f"digits must be a positive integer, got {digits!r}")
    for name, value in (("truth", truth), ("model", model)):
        if not isinstance(value, (str, sympy.Basic, Expression)):
            raise TypeError(f"{name} must be a str, a sympy expression or an Expression, got "
                            f"{type(value).__name__}")
        if isinstance(value, Expression) and value.n_constants and value.constants is None:
            raise ValueError(f"{name} has {value.n_constants} unfitted constant(s): fit them "
                             "first (chatsr.symbolic.fitting.fit_constants)")
    if isinstance(positive, str) or not all(isinstance(n, str) for n in positive):
        raise TypeError(f"positive must be a collection of variable names, got {positive!r}")
    task = (truth, model, int(digits), tuple(sorted(positive)))
    if multiprocessing.current_process().daemon:
        # Daemonic processes (multiprocessing.Pool workers) may not start children.
        logger.warning("symbolic_recovery: running inside a daemonic process, so sympy runs "
                       "in-process and the %.3g s timeout is not enforced", timeout)
        status, value = _recovery_outcome(*task)
    else:
        status, value = _WORKER.run(task, timeout)
    if status == "invalid":
        raise ExpressionError(value)
    if status == "ok":
        return value
    logger.warning("symbolic_recovery: %s; %s vs %s counted as not recovered",
                   value, _describe(truth), _describe(model))
    return False


def _describe(value: ExpressionLike) -> str:
    # Never print an Expression through sympy: printing can be what hangs.
    try:
        text = " ".join(value.names) if isinstance(value, Expression) else str(value)
    except Exception:  # sympy refuses to print integers of more than 4300 digits
        text = f"<{type(value).__name__}>"
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _recovery_outcome(truth: ExpressionLike, model: ExpressionLike, digits: int,
                      positive: tuple[str, ...] = ()) -> tuple[str, object]:
    """``("ok", bool)``, ``("invalid", message)`` for unreadable input, ``("failed", message)``."""
    try:
        t, m = _as_sympy("truth", truth), _as_sympy("model", model)
    except ValueError as exc:
        return "invalid", str(exc)
    known = {symbol: sympy.Symbol(symbol.name, positive=True)
             for symbol in t.free_symbols | m.free_symbols if symbol.name in positive}
    t, m = t.xreplace(known), m.xreplace(known)
    try:
        return "ok", _recovered(_rationalize(t, digits=None), _rationalize(m, digits=digits))
    except Exception as exc:  # a sympy failure means "could not show it", not a crash
        return "failed", f"sympy raised {type(exc).__name__}: {exc}"


def _as_sympy(name: str, value: ExpressionLike) -> sympy.Expr:
    try:
        expr = value.to_sympy() if isinstance(value, Expression) else sympify_real(value)
    except ExpressionError as exc:  # text our grammar refuses, a formula nested too deep
        raise ValueError(f"{name} {_describe(value)} is not a readable formula: {exc}") from None
    if not isinstance(expr, sympy.Expr):
        raise ValueError(f"{name} {_describe(value)} is a {type(expr).__name__}, not a formula")
    return expr


def _rationalize(expr: sympy.Expr, *, digits: int | None) -> sympy.Expr:
    """Floats to exact decimals, rounded to ``digits`` significant digits unless None.

    Exact rationals let ``2*x - 2.00*x`` cancel to 0 and keep sympy's algebra exact.
    """
    def decimal(f: sympy.Float) -> sympy.Expr:
        value = float(f)
        if not math.isfinite(value):  # a sympy Float beyond float64's range: leave it be
            return f
        return sympy.Rational(repr(value) if digits is None else f"{value:.{digits}g}")
    return expr.xreplace({f: decimal(f) for f in expr.atoms(sympy.Float)})


def _recovered(t: sympy.Expr, m: sympy.Expr) -> bool:
    difference, ratio = t - m, t / m
    if _is_constant(difference) or _is_nonzero_constant(ratio):
        return True
    difference_possible, ratio_possible = _numerically_possible(t, m)
    for transform in (sympy.expand, sympy.cancel, sympy.simplify):  # cheap to expensive
        if difference_possible and _is_constant(transform(difference)):
            return True
        if ratio_possible and _is_nonzero_constant(transform(ratio)):
            return True
    return False


def _is_constant(e: sympy.Expr) -> bool:
    return not e.free_symbols and e.is_finite is True


def _is_nonzero_constant(e: sympy.Expr) -> bool:
    return _is_constant(e) and e.is_zero is False


# Random points for the numeric test: half with all coordinates positive (where log and sqrt
# are defined), half with random signs (where abs, odd and even functions differ).
_N_POINTS = 24
_MIN_POINTS = 3
_RELATIVE_SPREAD = 1e-12  # far above 30-digit rounding, far below any real variation


def _numerically_possible(t: sympy.Expr, m: sympy.Expr) -> tuple[bool, bool]:
    """Whether ``t - m`` may be constant and ``t / m`` a nonzero constant, judged at random
    points; "no" only when the values visibly vary."""
    symbols = sorted(t.free_symbols | m.free_symbols, key=lambda s: s.name)
    try:
        f_t, f_m = (sympy.lambdify(symbols, e, modules="mpmath") for e in (t, m))
    except Exception:  # an unusual function lambdify cannot print: leave it to sympy
        return True, True
    rng = np.random.default_rng(0)
    shape = (_N_POINTS, len(symbols))
    points = np.exp(rng.uniform(np.log(0.2), np.log(5.0), size=shape))
    points[_N_POINTS // 2:] *= rng.choice([-1.0, 1.0], size=(_N_POINTS - _N_POINTS // 2,
                                                                 len(symbols)))
    known = [k for k, symbol in enumerate(symbols) if symbol.is_positive]
    points[:, known] = np.abs(points[:, known])
    with mpmath.workdps(30):
        pairs = [(a, b) for a, b in ((_real_value(f_t, p), _real_value(f_m, p)) for p in points)
                 if a is not None and b is not None]
        # Each point is compared with the first at the scale of both: rounding error in a
        # value is relative to the values it came from, wherever they are large or small.
        differences = [(a - b, abs(a) + abs(b)) for a, b in pairs]
        ratios = [(a / b, abs(a / b)) for a, b in pairs if b != 0]
        difference_possible = not _varies(differences)
        ratio_possible = not _varies(ratios) and any(q != 0 for q, _ in ratios)
    return difference_possible, ratio_possible or len(ratios) < _MIN_POINTS


def _real_value(f, point: np.ndarray) -> mpmath.mpf | None:
    """``f(point)`` if it is a finite real number, else None (outside the domain)."""
    try:
        value = mpmath.mpmathify(f(*(mpmath.mpf(float(v)) for v in point)))
    except Exception:  # division by zero, a function mpmath lacks…: no value here
        return None
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    return value if mpmath.isfinite(value) else None


def _varies(values: list[tuple[mpmath.mpf, mpmath.mpf]]) -> bool:
    """Whether some ``(value, scale)`` differs from the first beyond rounding of both scales."""
    if len(values) < _MIN_POINTS:
        return False  # too few points to tell: not evidence of anything
    v0, s0 = values[0]
    return any(abs(v - v0) > _RELATIVE_SPREAD * (s + s0) for v, s in values[1:])


# the worker process ------------------------------------------------------------------------------
# fork starts in milliseconds with sympy already imported; spawn (macOS, where fork is unsafe
# with system frameworks, and Windows, which has no fork) re-imports chatsr once per worker.
_START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
_STARTUP_TIMEOUT = 60.0


def _serve(conn: Connection) -> None:
    """The worker's loop: read a task, answer with its outcome, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        conn.send(_recovery_outcome(*task))


class _Worker:
    """One reusable child process for sympy work that may not finish; killed on timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def run(self, task: tuple, timeout: float) -> tuple[str, object]:
        with self._lock:
            try:
                if self._process is None or not self._process.is_alive():
                    self._start()
                self._conn.send(task)
                if not self._conn.poll(timeout):
                    self._stop()
                    return "failed", f"sympy did not finish within {timeout:.3g} s"
                return self._conn.recv()
            except (EOFError, OSError) as exc:  # the worker died: crash, out of memory
                self._stop()
                return "failed", f"the sympy worker process died ({exc!r})"
            except BaseException:  # e.g. Ctrl-C while waiting: never leave a stale answer
                self._stop()
                raise

    def _start(self) -> None:
        self._stop()
        context = multiprocessing.get_context(_START_METHOD)
        parent_conn, child_conn = context.Pipe()
        process = context.Process(target=_serve, args=(child_conn,), daemon=True,
                                  name="chatsr-symbolic-recovery")
        process.start()
        child_conn.close()
        self._process, self._conn = process, parent_conn
        if not (parent_conn.poll(_STARTUP_TIMEOUT) and parent_conn.recv() == "ready"):
            raise OSError("the sympy worker process did not start")

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._conn.close()
        self._process = self._conn = None

    def _forget(self) -> None:
        """In a forked child: the parent's worker and lock are not ours to use."""
        self._lock = threading.Lock()
        self._process = self._conn = None


_WORKER = _Worker()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WORKER._forget)
