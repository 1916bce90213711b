"""The explorer's result pages as HTML and display messages: formula, Pareto front, plot, Debug."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

import sympy
from matplotlib.figure import Figure

from chatsr.plots import plot_fit

if TYPE_CHECKING:
    import pandas as pd

    from chatsr.estimator import ChatSRRegressor
    from chatsr.training.debugger import DebugReport

__all__ = ["debug_html", "figure_output", "formula_html", "pareto_html"]

DIGITS = 4  # significant digits of the constants and losses shown


def _latex(expression: sympy.Expr) -> str:
    return html.escape(sympy.latex(expression.evalf(DIGITS)))


def formula_html(estimator: ChatSRRegressor, target: str) -> str:
    """The chosen formula as ``target = …`` in LaTeX, with its R², MSE and complexity."""
    best = estimator.best_
    lhs = sympy.latex(sympy.Symbol(target))
    return (f"<p style='font-size: 1.3em'>${html.escape(lhs)} = "
            f"{_latex(estimator.sympy())}$</p>"
            f"<p>R² = {best['r2']:.6f}, MSE = {best['mse']:.{DIGITS}g}, complexity "
            f"{int(best['complexity'])}; chosen among {len(estimator.equations_)} formulas "
            f"on the Pareto front (fit: {estimator.fit_time_:.1f} s)</p>")


def pareto_html(estimator: ChatSRRegressor) -> str:
    """``equations_`` as a table, simplest first, the chosen formula in bold."""
    header = "".join(f"<th>{h}</th>" for h in ("complexity", "formula", "MSE", "R²",
                                               "score", "found by"))
    rows = []
    for label, row in estimator.equations_.iterrows():
        bold = " style='font-weight: bold'" if label == estimator.best_.name else ""
        cells = (int(row["complexity"]), f"${_latex(row['sympy'])}$",
                 f"{row['mse']:.{DIGITS}g}", f"{row['r2']:.6f}", f"{row['score']:.{DIGITS}g}",
                 html.escape(str(row["source"])))
        rows.append(f"<tr{bold}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p><small>The chosen formula is in bold.</small></p>")


def figure_output(estimator: ChatSRRegressor, X: pd.DataFrame, y: pd.Series) -> dict:
    """`plot_fit` as a PNG display message for an ``Output`` widget.

    A bare ``Figure`` (not pyplot's) leaves nothing open for the inline backend to show twice,
    and the message is built by hand because an Output's capture needs a running kernel.
    """
    figure = Figure(figsize=(5, 4), layout="tight")
    plot_fit(estimator, X, y, ax=figure.add_subplot())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                     "text/plain": f"<the best formula against {y.name}>"}}


def debug_html(report: DebugReport) -> str:
    """The first-token probabilities as a table with bars, most likely first.

    >>> from chatsr.training.debugger import DebugReport
    >>> page = debug_html(DebugReport(loss=None, first_token=[("<|math_x1|>", 0.75)]))
    >>> "<code>&lt;|math_x1|&gt;</code>" in page, "hold 75.0% of the probability" in page
    (True, True)
    """
    rows = "".join(
        f"<tr><td><code>{html.escape(token)}</code></td><td>{p:.4f}</td><td>"
        f"<div style='background: #4c78a8; height: 0.8em; width: {200 * p:.0f}px'></div>"
        f"</td></tr>" for token, p in report.first_token)
    total = sum(p for _, p in report.first_token)
    return ("<p>The model's probabilities for the first token of the formula, for these data "
            "and this prompt (before the grammar restricts them).</p>"
            f"<table><thead><tr><th>token</th><th>p</th><th></th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            f"<p><small>These {len(report.first_token)} tokens hold {total:.1%} of the "
            f"probability.</small></p>")
