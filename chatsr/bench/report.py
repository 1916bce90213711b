"""The benchmark's report: summary table, markdown, plot and the files of a run's directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SUMMARY_HEADERS", "plot_results", "summarize", "summary_markdown", "write_report"]

SUMMARY_HEADERS = {"suite": "suite", "noise": "noise", "method": "method", "runs": "runs",
                   "recovery": "recovery %", "r2_gt_099": "R² > 0.99 %",
                   "r2_gt_0999": "R² > 0.999 %", "consistent": "consistent units %",
                   "median_fit_time": "median fit time (s)", "failed": "failed"}


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Per suite, noise level and method: runs, recovery %, R² > 0.99 %, R² > 0.999 %,
    median fit time (failed runs count with the time until they failed) and failed runs; with
    a ``consistent`` column, also the share of formulas dimensionally consistent with the
    problem's units (of the runs that have units; empty for a suite without them).

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
    percentages = ["recovery", "r2_gt_099", "r2_gt_0999"]
    if "consistent" in results:
        # of the runs whose problem has units: None (no units) is left out of the mean
        summary.insert(4, "consistent", groups["consistent"].agg(
            lambda s: s.dropna().astype(float).mean()))  # NaN when none has units
        percentages.append("consistent")
    for column in percentages:
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
        if column in ("recovery", "r2_gt_099", "r2_gt_0999", "consistent"):
            return "" if np.isnan(value) else f"{value:.1f}"
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
    """Write ``results.csv``, ``summary.md`` and ``bench.png`` into ``out_dir``.

    >>> import tempfile
    >>> import pandas as pd
    >>> results = pd.DataFrame({"suite": ["nguyen"], "noise": [0.0], "method": ["chatsr"],
    ...     "status": ["ok"], "recovered": [True], "r2_gt_099": [True], "r2_gt_0999": [True],
    ...     "fit_time": [1.5]})
    >>> with tempfile.TemporaryDirectory() as out:
    ...     sorted(path.name for path in write_report(results, out).values())
    ['bench.png', 'results.csv', 'summary.md']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.csv", "summary": out / "summary.md",
             "plot": out / "bench.png"}
    results.to_csv(paths["results"], index=False)
    paths["summary"].write_text(summary_markdown(summarize(results)) + "\n")
    plot_results(results, paths["plot"])
    return paths
