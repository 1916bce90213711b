"""The benchmark runner: ChatSR and gplearn on Nguyen 1–12 and AI-Feynman equations.

Every problem is fitted by every method at every noise level (Gaussian noise of standard
deviation ``level × RMS(y)`` on the training targets only). A run records its fit time, R² on
held-out points drawn from the same ranges, whether R² exceeds 0.99 and 0.999, and SRBench's
symbolic recovery of the true formula (:func:`chatsr.symbolic.metrics.symbolic_recovery`). Each fit
runs in a process of its own that is killed after ``timeout`` seconds: a fit that hangs or
crashes is recorded as ``timeout`` or ``crashed`` (R² NaN, not recovered) and the run goes on.

The Feynman suite keeps the equations of at most ``max_vars`` variables (default 3: the shipped
model is trained on formulas of at most 3 variables), in the order of the AI Feynman table; with
3 that is 52 equations. Data are fixed by ``seed`` and the problem's name, so every method sees
the same points, and the two noise levels share their points and noise direction.

``gplearn`` runs with the budget of :data:`GPLEARN_SETTINGS` (population 1000, 20 generations),
its protected operators read as the plain ones for the recovery check, as SRBench does. It is an
optional dependency (``pip install -e ".[bench]"``), skipped with a note when missing.

From the shell (``--help`` lists every option)::

    chatsr bench --suite nguyen --noise 0 --time-budget 5 --out bench_out
    python -m chatsr.cli bench --problems Nguyen-1,I.12.1 --methods chatsr --model runs/mine --out b

or from Python, here with gplearn only so that no model is needed:

>>> import tempfile
>>> problems = select_problems(names=["Nguyen-1"])
>>> results = run_benchmark(problems, ["gplearn"], [0.0], out_dir=tempfile.mkdtemp(),
...                         progress=False)  # doctest: +SKIP
>>> summarize(results)[["suite", "method", "runs"]].values.tolist()  # doctest: +SKIP
[['nguyen', 'gplearn', 1]]
"""

from __future__ import annotations

import functools
import importlib.util
import math
import multiprocessing
import signal
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chatsr.data.benchmarks import BENCHMARKS, FEYNMAN, NGUYEN, Benchmark

if TYPE_CHECKING:
    import pandas as pd
    import sympy

__all__ = ["GPLEARN_SETTINGS", "METHODS", "RESULT_COLUMNS", "SUITES",
           "gplearn_to_sympy", "plot_results", "run_benchmark", "select_problems",
           "summarize", "summary_markdown", "write_report"]

# chatsr-oneshot: the model's first proposals only (no search rounds), to measure the search;
# chatsr-prefix / chatsr-mutation: search rounds with only the model's prefix completions / only
# the edits that need no model (mutations and wrappers), to measure each
METHODS = ("chatsr", "gplearn", "chatsr-oneshot", "chatsr-prefix", "chatsr-mutation")
DEFAULT_METHODS = ("chatsr", "gplearn")
SUITES = ("nguyen", "feynman", "all")
NOISE_LEVELS = (0.0, 0.01)
DEFAULT_MAX_VARS = 3  # the shipped model is trained on formulas of at most 3 variables
DEFAULT_TIMEOUT = 300.0
TEST_POINTS = 1000
# Importing torch and loading a model, before the fit's own timeout starts: slow on a busy
# machine, but a process that takes longer is stuck.
STARTUP_TIMEOUT = 300.0

GPLEARN_SETTINGS: dict[str, Any] = dict(
    population_size=1000, generations=20,
    function_set=("add", "sub", "mul", "div", "sin", "cos", "exp", "log", "sqrt"))

RESULT_COLUMNS = ["problem", "suite", "n_variables", "formula", "noise", "method", "seed",
                  "status", "fit_time", "r2", "r2_gt_099", "r2_gt_0999", "recovered", "found",
                  "error"]


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
    (52, 16)
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


# methods (these run in the fit's own process) ----------------------------------------------------
def _protected_exp(x1: np.ndarray) -> np.ndarray:
    # gplearn requires closed functions: finite on every input
    return np.exp(np.minimum(x1, 100.0))


def _make_chatsr(n_variables: int, options: dict[str, Any], max_rounds: int | None = None,
                 moves: tuple[str, ...] | None = None) -> tuple[Any, Any]:
    from chatsr.estimator import ChatSRRegressor
    from chatsr.model.pretrained import load_pretrained  # it keeps HF's "Loading weights" bar quiet

    extra = {} if options["time_budget"] is None else {"time_budget": options["time_budget"]}
    if moves is not None:
        extra["moves"] = moves
    estimator = ChatSRRegressor(model=load_pretrained(options["model"]), max_rounds=max_rounds,
                                random_state=options["seed"], **extra)
    return estimator, lambda: estimator.sympy()


def _make_gplearn(n_variables: int, options: dict[str, Any]) -> tuple[Any, Any]:
    from gplearn.functions import make_function
    from gplearn.genetic import SymbolicRegressor

    exp = make_function(function=_protected_exp, name="exp", arity=1, wrap=False)
    settings = GPLEARN_SETTINGS | {"function_set": [
        exp if f == "exp" else f for f in GPLEARN_SETTINGS["function_set"]]}
    estimator = SymbolicRegressor(**settings, n_jobs=1, random_state=options["seed"])
    return estimator, lambda: gplearn_to_sympy(estimator._program.program, n_variables)


_BUILDERS = {"chatsr": _make_chatsr, "gplearn": _make_gplearn,
             "chatsr-oneshot": functools.partial(_make_chatsr, max_rounds=0),
             "chatsr-prefix": functools.partial(_make_chatsr, moves=("prefix",)),
             "chatsr-mutation": functools.partial(_make_chatsr, moves=("mutation", "wrapper"))}
_MODULES = {"gplearn": "gplearn.genetic"} | {m: "chatsr.estimator" for m in METHODS
                                             if m.startswith("chatsr")}


def gplearn_to_sympy(program: Sequence[Any], n_variables: int) -> sympy.Expr:
    """A gplearn program (preorder list of functions, feature indices and floats) as sympy.

    Feature ``i`` becomes ``x{i+1}``; the protected ``div``, ``log`` and ``sqrt`` are read as
    plain division, log and square root (SRBench's reading), so formulas compare on their
    mathematical meaning.

    >>> from gplearn.functions import add2, mul2, sqrt1  # doctest: +SKIP
    >>> gplearn_to_sympy([add2, mul2, 0, 1, sqrt1, 0.5], 2)  # doctest: +SKIP
    x1*x2 + 0.707106781186548
    """
    import sympy

    symbols = sympy.symbols(f"x1:{n_variables + 1}", real=True)
    functions = {"add": sympy.Add, "sub": lambda a, b: a - b, "mul": sympy.Mul,
                 "div": lambda a, b: a / b, "sqrt": sympy.sqrt, "log": sympy.log,
                 "exp": sympy.exp, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
                 "neg": lambda a: -a, "inv": lambda a: 1 / a, "abs": sympy.Abs,
                 "max": sympy.Max, "min": sympy.Min}
    nodes = iter(program)

    def build() -> sympy.Expr:
        node = next(nodes)
        if hasattr(node, "arity"):
            return functions[node.name](*(build() for _ in range(node.arity)))
        if isinstance(node, (int, np.integer)):
            return symbols[int(node)]
        return sympy.Float(float(node))

    return build()


def _fit_worker(conn: Any, method: str, options: dict[str, Any], X: np.ndarray, y: np.ndarray,
                X_test: np.ndarray) -> None:
    """Build the estimator, report ``started``, fit and send ``(status, payload)`` back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        estimator, formula = _BUILDERS[method](X.shape[1], options)
        conn.send(("started", None))
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            estimator.fit(X, y)
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
    context.set_forkserver_preload([_MODULES[m] for m in methods])
    return context


def _fit_in_process(context: multiprocessing.context.BaseContext, method: str,
                    options: dict[str, Any], X: np.ndarray, y: np.ndarray, X_test: np.ndarray,
                    timeout: float) -> dict[str, Any]:
    """One fit in its own process: status (ok, error, timeout, crashed), time, formula, ŷ."""
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_fit_worker, args=(sender, method, options, X, y, X_test),
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


# running -----------------------------------------------------------------------------------------
def _available(methods: Sequence[str]) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    if "gplearn" in methods and importlib.util.find_spec("gplearn") is None:
        print("note: gplearn is not installed, so it is skipped "
              "(pip install gplearn, or the chatsr[bench] extra)", file=sys.stderr)
        methods = [m for m in methods if m != "gplearn"]
    if not methods:
        raise ValueError("no method left to run")
    return list(dict.fromkeys(methods))


def _check_model(model: str | Path | None) -> str:
    from chatsr.model.pretrained import DEFAULT_CHECKPOINT

    path = Path(DEFAULT_CHECKPOINT if model is None else model).resolve()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no chatsr model in {path} (config.json missing); pass "
                                f"model= (--model) a directory written by `chatsr train`")
    return str(path)


def run_benchmark(problems: Sequence[Benchmark | str], methods: Sequence[str] = DEFAULT_METHODS,
                  noise_levels: Sequence[float] = NOISE_LEVELS, *, seed: int = 0,
                  time_budget: float | None = None, timeout: float = DEFAULT_TIMEOUT,
                  out_dir: str | Path | None = None, model: str | Path | None = None,
                  n_test: int = TEST_POINTS, recovery_timeout: float = 5.0,
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

    from chatsr.symbolic.metrics import r2, symbolic_recovery

    problems = [p if isinstance(p, Benchmark) else select_problems(names=[p])[0]
                for p in problems]
    methods = _available(methods)
    if not (timeout > 0 and n_test > 0):
        raise ValueError(f"timeout and n_test must be positive, got {timeout}, {n_test}")
    if any(not level >= 0 for level in noise_levels):
        raise ValueError(f"noise levels must be >= 0, got {list(noise_levels)}")
    options = {"seed": seed, "time_budget": time_budget,
               "model": _check_model(model) if "chatsr" in methods else None}
    context = _context(methods)
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(problems) * len(noise_levels) * len(methods), desc="bench",
               disable=not progress)
    for problem in problems:
        X, y, X_test, y_test, unit_noise = _data(problem, seed, n_test)
        rms = float(np.sqrt(np.mean(y * y)))
        for level in noise_levels:
            y_train = y + level * rms * unit_noise
            for method in methods:
                bar.set_postfix_str(f"{problem.name} noise={level:g} {method}")
                run = _fit_in_process(context, method, options, X, y_train, X_test, timeout)
                row = {"problem": problem.name, "suite": _suite(problem),
                       "n_variables": problem.n_variables, "formula": problem.formula,
                       "noise": float(level), "method": method, "seed": seed,
                       "status": run["status"], "fit_time": run["fit_time"], "r2": math.nan,
                       "recovered": False, "found": run.get("found", ""),
                       "error": run.get("error", "")}
                if run["status"] == "ok":
                    row["r2"] = r2(y_test, run["yhat"])
                    try:
                        row["recovered"] = symbolic_recovery(problem.formula, run["found"],
                                                             timeout=recovery_timeout)
                    except ValueError as error:  # a formula sympy cannot read back
                        row["error"] = f"recovery check: {error}"
                row["r2_gt_099"] = bool(row["r2"] > 0.99)
                row["r2_gt_0999"] = bool(row["r2"] > 0.999)
                rows.append(row)
                if out is not None:
                    pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(out / "results.csv",
                                                                      index=False)
                bar.update()
    bar.close()
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if out is not None:
        write_report(results, out)
    return results


# reporting ---------------------------------------------------------------------------------------
SUMMARY_HEADERS = {"suite": "suite", "noise": "noise", "method": "method", "runs": "runs",
                   "recovery": "recovery %", "r2_gt_099": "R² > 0.99 %",
                   "r2_gt_0999": "R² > 0.999 %", "median_fit_time": "median fit time (s)",
                   "failed": "failed"}


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Per suite, noise level and method: runs, recovery %, R² > 0.99 %, R² > 0.999 %,
    median fit time (failed runs count with the time until they failed) and failed runs.

    Percentages are of all runs: a timed-out or crashed run counts as not solved.

    >>> import pandas as pd
    >>> results = pd.DataFrame({"suite": ["nguyen"] * 2, "noise": [0.0] * 2,
    ...     "method": ["chatsr"] * 2, "recovered": [True, False], "r2_gt_099": [True, False],
    ...     "r2_gt_0999": [False, False], "fit_time": [1.0, 3.0], "status": ["ok", "timeout"]})
    >>> print(summarize(results).to_string(index=False))
     suite  noise method  runs  recovery  r2_gt_099  r2_gt_0999  median_fit_time  failed
    nguyen    0.0 chatsr     2      50.0       50.0         0.0              2.0       1
    """
    groups = results.groupby(["suite", "noise", "method"], sort=False)
    summary = groups.agg(runs=("status", "size"), recovery=("recovered", "mean"),
                         r2_gt_099=("r2_gt_099", "mean"), r2_gt_0999=("r2_gt_0999", "mean"),
                         median_fit_time=("fit_time", "median"),
                         failed=("status", lambda s: int((s != "ok").sum())))
    for column in ("recovery", "r2_gt_099", "r2_gt_0999"):
        summary[column] = 100.0 * summary[column].astype(float)
    return summary.reset_index()


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (no tabulate needed).

    >>> import pandas as pd
    >>> print(summary_markdown(pd.DataFrame({"suite": ["nguyen"], "noise": [0.0],
    ...     "method": ["chatsr"], "runs": [4], "recovery": [25.0], "r2_gt_099": [50.0],
    ...     "r2_gt_0999": [50.0], "median_fit_time": [6.04], "failed": [0]})))
    | suite | noise | method | runs | recovery % | R² > 0.99 % | R² > 0.999 % | median fit time (s) | failed |
    |---|---|---|---|---|---|---|---|---|
    | nguyen | 0 | chatsr | 4 | 25.0 | 50.0 | 50.0 | 6.04 | 0 |
    """  # noqa: E501
    def cell(column: str, value: Any) -> str:
        if column in ("recovery", "r2_gt_099", "r2_gt_0999"):
            return f"{value:.1f}"
        if column in ("noise", "median_fit_time"):
            return f"{value:.3g}"
        return str(value)

    columns = list(summary.columns)
    lines = ["| " + " | ".join(SUMMARY_HEADERS.get(c, c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |"
              for _, row in summary.iterrows()]
    return "\n".join(lines)


def plot_results(results: pd.DataFrame, path: str | Path) -> Path:
    """Bars of recovery % and R² > 0.99 % per suite and noise for each method, and the
    distribution of fit times per method; saved to ``path``."""
    from matplotlib.figure import Figure  # not pyplot: a notebook's backend stays as it is

    summary = summarize(results)
    methods = list(dict.fromkeys(summary["method"]))
    groups = list(dict.fromkeys(zip(summary["suite"], summary["noise"], strict=True)))
    width = 0.8 / max(len(methods), 1)
    figure = Figure(figsize=(15, 4.5))
    axes = figure.subplots(1, 3)
    for ax, column, title in ((axes[0], "recovery", "exact symbolic recovery"),
                              (axes[1], "r2_gt_099", "test R² > 0.99")):
        for i, method in enumerate(methods):
            rows = summary[summary["method"] == method].set_index(["suite", "noise"])
            values = [rows[column].get(g, 0.0) for g in groups]
            bars = ax.bar(np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * width,
                          values, width, label=method)
            ax.bar_label(bars, fmt="%.0f")  # a 0 % bar is otherwise invisible
        ax.set_xticks(np.arange(len(groups)),
                      [f"{suite}\nnoise {noise:g}" for suite, noise in groups])
        ax.set_ylim(0, 118)  # room above a 100 % bar for its label and the legend
        ax.set_ylabel("% of problems")
        ax.set_title(title)
        ax.legend(loc="upper left", ncols=len(methods), fontsize="small")
    times = [results.loc[results["method"] == m, "fit_time"].dropna().to_numpy()
             for m in methods]
    axes[2].boxplot(times)
    axes[2].set_xticks(np.arange(1, len(methods) + 1), methods)
    spread = [t for t in times if len(t)]
    if spread and max(map(np.max, spread)) > 100 * min(map(np.min, spread)):
        axes[2].set_yscale("log")  # only when times span decades: log ticks need them
    axes[2].set_ylabel("fit time (s)")
    axes[2].set_title("fit time per run")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def write_report(results: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.csv``, ``summary.md`` and ``bench.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.csv", "summary": out / "summary.md",
             "plot": out / "bench.png"}
    results.to_csv(paths["results"], index=False)
    paths["summary"].write_text(summary_markdown(summarize(results)) + "\n")
    plot_results(results, paths["plot"])
    return paths







