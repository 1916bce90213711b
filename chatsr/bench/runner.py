"""Running the benchmark: the problems, their data, and each fit in a process of its own.

Every problem is fitted by every method at every noise level (Gaussian noise of standard
deviation ``level × RMS(y)`` on the training targets only). A run records its fit time, R² on
held-out points drawn from the same ranges, whether R² exceeds 0.99 and 0.999, and SRBench's
symbolic recovery of the true formula (:func:`chatsr.symbolic.metrics.symbolic_recovery`, the
variables positive where their range is: ``sqrt(x1)*sqrt(x2)`` is ``sqrt(x1*x2)``). Each fit
runs in a process of its own that is killed after ``timeout`` seconds: a fit that hangs or
crashes is recorded as ``timeout`` or ``crashed`` (R² NaN, not recovered) and the run goes on.

The Feynman suite keeps the equations of at most ``max_vars`` variables (default 10: all 100),
in the order of the AI Feynman table; with 3 that is 52 equations. Data are fixed by ``seed``
and the problem's name, so every method sees the same points, and the two noise levels share
their points and noise direction.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chatsr.bench.methods import (
    BUILDERS,
    DEFAULT_METHODS,
    METHOD_MODULES,
    available_methods,
    fit_options,
    fit_parameters,
)
from chatsr.bench.report import write_report
from chatsr.data.benchmarks import BENCHMARKS, FEYNMAN, NGUYEN, Benchmark

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_MAX_VARS", "DEFAULT_TIMEOUT", "NOISE_LEVELS", "RESULT_COLUMNS", "SUITES",
           "run_benchmark", "select_problems"]

SUITES = ("nguyen", "feynman", "all")
NOISE_LEVELS = (0.0, 0.01)
DEFAULT_MAX_VARS = 10  # every AI-Feynman equation
DEFAULT_TIMEOUT = 300.0
TEST_POINTS = 1000
# Importing torch and loading a model, before the fit's own timeout starts: slow on a busy
# machine, but a process that takes longer is stuck.
STARTUP_TIMEOUT = 300.0

RESULT_COLUMNS = ["problem", "suite", "n_variables", "formula", "noise", "method", "seed",
                  "status", "fit_time", "r2", "r2_gt_099", "r2_gt_0999", "recovered",
                  "consistent", "found", "error"]


# problems ----------------------------------------------------------------------------------------
def select_problems(suite: str = "all", *, names: Sequence[str] | None = None,
                    limit: int | None = None, max_vars: int = DEFAULT_MAX_VARS
                    ) -> list[Benchmark]:
    """The benchmark problems to run, in a fixed order.

    ``names`` (``"Nguyen-1"``, ``"Feynman-I.12.1"`` or ``"I.12.1"``) picks problems by name and
    overrides ``suite`` and ``max_vars``; otherwise ``suite`` is ``"nguyen"``, ``"feynman"``
    (equations of at most ``max_vars`` variables) or ``"all"``, and ``limit`` keeps the first
    ``limit`` problems of each suite.

    >>> [b.name for b in select_problems("all", limit=2)]
    ['Nguyen-1', 'Nguyen-2', 'Feynman-I.6.2a', 'Feynman-I.6.2']
    >>> len(select_problems("feynman")), len(select_problems("feynman", max_vars=2))
    (100, 16)
    """
    if names is not None:
        unknown = [n for n in names if n not in BENCHMARKS and n not in FEYNMAN]
        if unknown:
            raise ValueError(f"unknown problem(s) {unknown}; names look like Nguyen-1, "
                             f"Feynman-I.12.1 or I.12.1")
        return [BENCHMARKS.get(n) or FEYNMAN[n] for n in names]
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {SUITES}, got {suite!r}")
    suites = []
    if suite in ("nguyen", "all"):
        suites.append(list(NGUYEN.values()))
    if suite in ("feynman", "all"):
        suites.append([b for b in FEYNMAN.values() if b.n_variables <= max_vars])
    return [b for problems in suites for b in problems[:limit]]


def _suite(problem: Benchmark) -> str:
    return "nguyen" if problem.name in NGUYEN else "feynman"


def _data(problem: Benchmark, seed: int, n_test: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training points, test points and a unit noise vector, fixed by seed and problem name."""
    streams = np.random.SeedSequence([seed, zlib.crc32(problem.name.encode())]).spawn(3)
    train, test, noise = (np.random.default_rng(s) for s in streams)
    X, y = problem.sample(train)
    X_test, y_test = problem.sample(test, n_test)
    return X, y, X_test, y_test, noise.standard_normal(len(y))


# running -----------------------------------------------------------------------------------------
def run_benchmark(problems: Sequence[Benchmark | str], methods: Sequence[str] = DEFAULT_METHODS,
                  noise_levels: Sequence[float] = NOISE_LEVELS, *, seed: int = 0,
                  time_budget: float | None = None, timeout: float = DEFAULT_TIMEOUT,
                  out_dir: str | Path | None = None, model: str | Path | None = None,
                  max_rounds: int | None = None, n_test: int = TEST_POINTS,
                  recovery_timeout: float = 5.0,
                  progress: bool = True) -> pd.DataFrame:
    """Fit every problem with every method at every noise level; one row per run.

    Parameters
    ----------
    problems
        :class:`~chatsr.data.benchmarks.Benchmark` objects or their names (see
        :func:`select_problems`).
    methods
        Any of :data:`METHODS`; gplearn is skipped with a note when it is not installed.
    noise_levels
        Relative noise levels: ``y + level · RMS(y) · N(0, 1)`` on the training points.
    seed
        Fixes the data and each method's ``random_state``.
    time_budget
        ChatSR's search budget in seconds (None: the regressor's default).
    timeout
        Seconds a fit may take (after imports and model loading) before it is killed.
    out_dir
        If given: ``results.csv`` (rewritten after every run, so an interrupted benchmark keeps
        what it did), then ``summary.md`` and ``bench.png`` (:func:`write_report`).
    model
        ChatSR model directory (None: the shipped checkpoint).
    max_rounds
        If given, ChatSR's fits run without a clock (``time_budget=None, max_rounds=N``): their
        results depend on the seed only.
    n_test
        Held-out points for the test R².
    recovery_timeout
        Seconds the symbolic-recovery check may take per run.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULT_COLUMNS`; ``status`` is ``ok``, ``error``, ``timeout`` or
        ``crashed``. ``fit_time`` is the seconds in ``fit`` alone (imports and model loading
        excluded), or for a failed run the time until it failed; ``found`` is the formula in
        ``x1, x2, …`` and ``formula`` the true one.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    problems = [p if isinstance(p, Benchmark) else select_problems(names=[p])[0]
                for p in problems]
    methods = available_methods(methods)
    _check_settings(timeout, n_test, noise_levels)
    options = fit_options(methods, seed=seed, time_budget=time_budget, model=model,
                          max_rounds=max_rounds)
    context = _context(methods)
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(problems) * len(noise_levels) * len(methods), desc="bench",
               disable=not progress)
    for problem, level, (X, y_train, X_test, y_test) in _training_sets(problems, noise_levels,
                                                                       seed, n_test):
        for method in methods:
            bar.set_postfix_str(f"{problem.name} noise={level:g} {method}")
            run = _fit_in_process(context, method, options, X, y_train, X_test, timeout,
                                  fit_parameters(method, problem))
            rows.append(_result_row(problem, level, method, seed, run, y_test,
                                    recovery_timeout))
            if out is not None:  # after every run, so that an interrupted benchmark keeps it
                pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(out / "results.csv",
                                                                  index=False)
            bar.update()
    bar.close()
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if out is not None:
        write_report(results, out)
    return results


def _check_settings(timeout: float, n_test: int, noise_levels: Sequence[float]) -> None:
    if not (timeout > 0 and n_test > 0):
        raise ValueError(f"timeout and n_test must be positive, got {timeout}, {n_test}")
    if any(not level >= 0 for level in noise_levels):
        raise ValueError(f"noise levels must be >= 0, got {list(noise_levels)}")


def _training_sets(problems: Sequence[Benchmark], noise_levels: Sequence[float], seed: int,
                   n_test: int) -> Iterator[tuple[Benchmark, float, tuple[np.ndarray, ...]]]:
    """Per problem and noise level: ``(X, y + noise, X_test, y_test)``; the levels of a problem
    share their points and noise direction."""
    for problem in problems:
        X, y, X_test, y_test, unit_noise = _data(problem, seed, n_test)
        rms = float(np.sqrt(np.mean(y * y)))
        for level in noise_levels:
            yield problem, level, (X, y + level * rms * unit_noise, X_test, y_test)


def _result_row(problem: Benchmark, level: float, method: str, seed: int, run: dict[str, Any],
                y_test: np.ndarray, recovery_timeout: float) -> dict[str, Any]:
    """One row of :data:`RESULT_COLUMNS`: the run, scored on the test points and the truth."""
    from chatsr.symbolic.metrics import r2, symbolic_recovery

    row = {"problem": problem.name, "suite": _suite(problem),
           "n_variables": problem.n_variables, "formula": problem.formula,
           "noise": float(level), "method": method, "seed": seed,
           "status": run["status"], "fit_time": run["fit_time"], "r2": math.nan,
           "recovered": False, "consistent": None, "found": run.get("found", ""),
           "error": run.get("error", "")}
    if run["status"] == "ok":
        row["r2"] = r2(y_test, run["yhat"])
        row["consistent"] = _consistent(problem, run["found"])
        try:
            row["recovered"] = symbolic_recovery(
                problem.formula, run["found"], timeout=recovery_timeout,
                positive=problem.positive_variables)
        except ValueError as error:  # a formula sympy cannot read back
            row["error"] = f"recovery check: {error}"
    row["r2_gt_099"] = bool(row["r2"] > 0.99)
    row["r2_gt_0999"] = bool(row["r2"] > 0.999)
    return row


def _consistent(problem: Benchmark, found: str) -> bool | None:
    """Whether ``found`` is dimensionally consistent with the problem's units (None: it has
    none, or sympy's text of the formula cannot be read back)."""
    from chatsr.pipeline import consistent, read_units
    from chatsr.symbolic.expressions import Expression

    if problem.y_units is None:
        return None
    try:
        expression = Expression.from_sympy(found)
    except ValueError:  # ExpressionError included
        return None
    return consistent(expression, read_units(problem.x_units, problem.y_units,
                                             problem.n_variables))


# fits, each in a process of its own --------------------------------------------------------------
def _fit_worker(conn: Any, method: str, options: dict[str, Any], X: np.ndarray, y: np.ndarray,
                X_test: np.ndarray, parameters: dict[str, Any]) -> None:
    """Build the estimator, report ``started``, fit and send ``(status, payload)`` back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        estimator, formula = BUILDERS[method](X.shape[1], options)
        conn.send(("started", None))
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            estimator.fit(X, y, **parameters)
            fit_time = time.perf_counter() - start
            yhat = np.asarray(estimator.predict(X_test), dtype=np.float64)
        conn.send(("ok", (fit_time, str(formula()), yhat)))
    except Exception as error:
        conn.send(("error", f"{type(error).__name__}: {error}"))


def _context(methods: Sequence[str]) -> multiprocessing.context.BaseContext:
    # A forkserver imports torch and the methods once, then forks a fresh process for each fit
    # in milliseconds; spawn (Windows) pays the imports again for every fit.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([METHOD_MODULES[m] for m in methods])
    return context


def _fit_in_process(context: multiprocessing.context.BaseContext, method: str,
                    options: dict[str, Any], X: np.ndarray, y: np.ndarray, X_test: np.ndarray,
                    timeout: float, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """One fit in its own process: status (ok, error, timeout, crashed), time, formula, ŷ."""
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_fit_worker, args=(sender, method, options, X, y, X_test,
                                                       parameters or {}),
                              daemon=True, name=f"chatsr-bench-{method}")
    process.start()
    sender.close()  # so that the child's death reads as EOF here
    start = time.perf_counter()
    try:
        status, payload = _receive(receiver, STARTUP_TIMEOUT, process, "start")
        if status == "started":
            start = time.perf_counter()
            status, payload = _receive(receiver, timeout, process, "fit")
        elapsed = time.perf_counter() - start
    finally:
        process.kill()
        process.join()
        receiver.close()
    if status == "ok":
        fit_time, found, yhat = payload
        return {"status": "ok", "fit_time": fit_time, "found": found, "yhat": yhat}
    return {"status": status, "fit_time": elapsed, "error": payload}


def _receive(conn: Any, timeout: float, process: Any, stage: str) -> tuple[str, Any]:
    if not conn.poll(timeout):
        return "timeout", f"the {stage} took more than {timeout:.3g} s"
    try:
        return conn.recv()
    except EOFError:  # the process died without a word: segfault, out of memory
        process.join()
        return "crashed", f"the fit process died (exit code {process.exitcode})"
