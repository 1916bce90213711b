"""The benchmark runner (``chatsr bench``): ChatSR and gplearn on Nguyen 1–12 and AI-Feynman.

:mod:`chatsr.bench.runner` picks the problems and fits each with every method at every noise
level, each fit in a process of its own; :mod:`chatsr.bench.methods` builds the methods (ChatSR,
its ablations, gplearn); :mod:`chatsr.bench.report` summarises the runs as a table, markdown
and a plot. The names below are all a caller needs.

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

from chatsr.bench.methods import DEFAULT_METHODS, GPLEARN_SETTINGS, METHODS, gplearn_to_sympy
from chatsr.bench.report import plot_results, summarize, summary_markdown, write_report
from chatsr.bench.runner import (
    DEFAULT_MAX_VARS,
    DEFAULT_TIMEOUT,
    NOISE_LEVELS,
    RESULT_COLUMNS,
    SUITES,
    run_benchmark,
    select_problems,
)

__all__ = ["DEFAULT_MAX_VARS", "DEFAULT_METHODS", "DEFAULT_TIMEOUT", "GPLEARN_SETTINGS",
           "METHODS", "NOISE_LEVELS", "RESULT_COLUMNS", "SUITES", "gplearn_to_sympy",
           "plot_results", "run_benchmark", "select_problems", "summarize", "summary_markdown",
           "write_report"]
