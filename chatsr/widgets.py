"""An explorer for notebooks: choose or upload data, press Discover, read the formula.

``Explorer()`` in a notebook cell shows the whole interface: a shipped data set or an uploaded
CSV file, the target column and the features, a prompt for the model, the operators allowed,
the number of candidates and the time budget. Discover fits a `ChatSRRegressor` and fills four
tabs: the best formula (LaTeX, R², MSE), the Pareto front, the formula plotted against the data,
and the model's first-token probabilities for these data and this prompt.

Every control is an attribute, so the logic runs without a browser: set widget values, call
``explorer.discover_button.click()`` and read the result widgets. Errors (a bad file, data the
regressor rejects, a missing model) are shown as a message in the interface, never as a
traceback. The model is loaded on the first Discover, so the interface appears at once.

>>> from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
>>> from chatsr.model.tokenizer import load_tokenizer
>>> tok = load_tokenizer()
>>> explorer = Explorer(model=(ChatSRForCausalLM(ChatSRConfig.tiny(tok)).eval(), tok))
>>> explorer.dataset.value, explorer.target.value, explorer.features.value
('kepler', 'period', ('a',))
>>> explorer.discover_button.description, explorer.allowed_operators is None
('Discover', True)
"""

from __future__ import annotations

import base64
import html
import io
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
import sympy
from matplotlib.figure import Figure

from chatsr.data.datasets import DATASETS, Dataset
from chatsr.plots import plot_fit
from chatsr.symbolic.operators import OPERATORS

if TYPE_CHECKING:
    from chatsr.estimator import ChatSRRegressor
    from chatsr.training.debugger import DebugReport

__all__ = ["Explorer", "read_csv"]

logger = logging.getLogger(__name__)

DIGITS = 4  # significant digits of the constants and losses shown
PROMPT_HELP = ("Context for the model, e.g. \"It contains sin.\", \"There is no exp in the "
               "formula.\", \"All values of x1 are positive.\" (x1, x2, … are the features in "
               "order)")
STAGES = ("loading the model", "searching", "drawing the results", "reading the first token")
ERROR_STYLE = "color: #b00020"


def read_csv(content: bytes) -> pd.DataFrame:
    """A table from the bytes of a CSV file (``#`` lines are comments, as in the shipped data).

    Raises ``ValueError`` with a readable message when the bytes are not a CSV table with at
    least one row and two numeric columns (a target and a feature).

    >>> read_csv(b"# a comment\\nx,y\\n1,2\\n3,4\\n").columns.tolist()
    ['x', 'y']
    >>> read_csv(b"name\\nMars\\n")
    Traceback (most recent call last):
    ...
    ValueError: the file has 0 numeric column(s); it needs a target and at least one feature
    """
    try:
        frame = pd.read_csv(io.BytesIO(content), comment="#")
    except UnicodeDecodeError as error:
        raise ValueError(f"the file is not UTF-8 text ({error.reason} at byte "
                         f"{error.start})") from None
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty") from None
    except pd.errors.ParserError as error:
        raise ValueError(f"the file is not a valid CSV table: {error}") from None
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise ValueError("the file has a header but no rows")
    numeric = _numeric_columns(frame)
    if len(numeric) < 2:
        raise ValueError(f"the file has {len(numeric)} numeric column(s); it needs a target "
                         f"and at least one feature")
    return frame


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]


@dataclass
class _Source:
    """A table to explore: a shipped data set (read on first use) or an uploaded file."""

    description: str
    target: str | None = None
    prompt: str | None = None
    dataset: Dataset | None = None
    table: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        if self.table is None:
            self.table = self.dataset.frame()
        return self.table


class Explorer:
    """Interactive symbolic regression: data, options, a Discover button and result tabs.

    Parameters
    ----------
    model
        A model directory, a loaded ``(model, tokenizer)`` pair, or None for the shipped
        checkpoint; a directory is loaded on the first Discover.
    datasets
        The data sets offered (default: `chatsr.data.datasets.DATASETS`); uploads are added to them.
    random_state
        Seed of the regressor (decoding, point subsets, constant fitting).
    top_k
        How many first tokens the Debug tab lists.

    Attributes
    ----------
    widget
        The whole interface (a ``VBox``); a notebook shows it for ``Explorer()`` itself.
    dataset, upload, description
        The data set ``Dropdown``, the CSV ``FileUpload`` and the data's description (``HTML``).
    target, features, variables
        The target ``Dropdown``, the features ``SelectMultiple`` and which ``x`` each is.
    prompt, operator_boxes, operators_panel, num_candidates, time_budget
        The options: ``Text``, one ``Checkbox`` per operator name, the ``Accordion`` holding
        them (its title counts the ticked ones), ``IntSlider``, ``FloatSlider`` (seconds).
    discover_button, progress, status, message
        The ``Button``, the stage ``IntProgress``, its ``Label`` and the error ``HTML``.
    tabs, formula, pareto, plot, debug
        The result ``Tab`` and its pages: ``HTMLMath``, ``HTMLMath``, ``Output``, ``HTML``.
    estimator, report
        The last fitted `ChatSRRegressor` and `chatsr.training.debugger.DebugReport` (None before).
    """

    def __init__(self, model: str | Path | tuple | None = None, *,
                 datasets: Mapping[str, Dataset] = DATASETS, random_state: int | None = None,
                 top_k: int = 10):
        self.model = model
        self.random_state = random_state
        self.top_k = top_k
        self.estimator: ChatSRRegressor | None = None
        self.report: DebugReport | None = None
        self._loaded = model if isinstance(model, tuple) else None
        self._sources = {name: _Source(dataset.describe(), dataset.target, dataset.prompt,
                                       dataset=dataset)
                         for name, dataset in datasets.items()}
        wide = widgets.Layout(width="100%")

        self.dataset = widgets.Dropdown(options=list(self._sources), description="data")
        self.upload = widgets.FileUpload(accept=".csv,text/csv", multiple=False,
                                         description="Upload CSV")
        self.description = widgets.HTML()
        self.target = widgets.Dropdown(description="target")
        self.features = widgets.SelectMultiple(description="features", rows=4)
        self.variables = widgets.HTML()
        self.prompt = widgets.Text(description="prompt", placeholder=PROMPT_HELP, layout=wide)
        self.operator_boxes = {name: widgets.Checkbox(
            value=True, indent=False, layout=widgets.Layout(width="auto"),
            description=name if op.symbol == name else f"{name} ({op.symbol})")
            for name, op in OPERATORS.items()}
        self.operators_panel = widgets.Accordion(children=[widgets.GridBox(
            list(self.operator_boxes.values()),
            layout=widgets.Layout(grid_template_columns="repeat(6, auto)"))])
        self.num_candidates = widgets.IntSlider(value=64, min=1, max=256,
                                                description="candidates")
        self.time_budget = widgets.FloatSlider(value=10.0, min=0.5, max=120.0, step=0.5,
                                               description="seconds")
        self.discover_button = widgets.Button(description="Discover", button_style="primary",
                                              icon="search")
        self.progress = widgets.IntProgress(value=0, min=0, max=len(STAGES))
        self.status = widgets.Label()
        self.message = widgets.HTML()
        self.formula = widgets.HTMLMath()
        self.pareto = widgets.HTMLMath()
        self.plot = widgets.Output()
        self.debug = widgets.HTML()
        self.tabs = widgets.Tab(children=[self.formula, self.pareto, self.plot, self.debug],
                                titles=("Formula", "Pareto", "Plot", "Debug"))
        self.widget = widgets.VBox([
            widgets.HBox([self.dataset, self.upload]), self.description,
            widgets.HBox([self.target, self.features]), self.variables, self.prompt,
            self.operators_panel, widgets.HBox([self.num_candidates, self.time_budget]),
            widgets.HBox([self.discover_button, self.progress, self.status]), self.message,
            self.tabs])

        self.dataset.observe(self._on_dataset, "value")
        self.upload.observe(self._on_upload, "value")
        self.target.observe(self._on_target, "value")
        self.features.observe(self._on_features, "value")
        for box in self.operator_boxes.values():
            box.observe(self._on_operators, "value")
        self.discover_button.on_click(lambda _: self.discover())
        self._on_dataset()
        self._on_operators()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)

    # the data -----------------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """The chosen table, all columns."""
        return self._sources[self.dataset.value].frame()

    def _on_dataset(self, _change: Any = None) -> None:
        if self.dataset.value is None:  # no data set offered and nothing uploaded yet
            return
        source = self._sources[self.dataset.value]
        self.message.value = ""
        try:
            numeric = _numeric_columns(source.frame())
        except (OSError, ValueError) as error:  # a data set whose file is missing or broken
            self._show_error(error)
            return
        description = html.escape(source.description).replace("\n", "<br>")
        self.description.value = f"<p style='line-height: 1.3'>{description}</p>"
        self.prompt.value = source.prompt or ""
        self.target.options = numeric
        self.target.value = source.target if source.target in numeric else numeric[-1]
        self._on_target()  # the observer does not fire when the new target is the old one

    def _on_upload(self, change: Any) -> None:
        if not change["new"]:  # the reset below, which lets the same file be uploaded again
            return
        upload = change["new"][-1]
        name = upload["name"]
        self.upload.value = ()
        try:
            frame = read_csv(bytes(upload["content"]))
        except Exception as error:  # an arbitrary file; a handler's traceback is never seen
            logger.debug("cannot read %s", name, exc_info=True)
            self._show_error(f"cannot read {name}: {error}")
            return
        key = f"{name} (uploaded)"
        self._sources[key] = _Source(f"{name}: uploaded, {len(frame)} rows, columns "
                                     f"{', '.join(frame.columns)}", table=frame)
        self.dataset.options = list(self._sources)
        self.dataset.value = key
        self._on_dataset()  # the observer does not fire when the file replaces one of its name

    def _on_target(self, _change: Any = None) -> None:
        features = [c for c in self.target.options if c != self.target.value]
        self.features.options = features
        self.features.value = tuple(features)
        self._on_features()

    def _on_features(self, _change: Any = None) -> None:
        names = ", ".join(f"x{i} = {html.escape(c)}"
                          for i, c in enumerate(self.features.value, start=1))
        self.variables.value = f"<small>The model reads {names or 'no feature'}.</small>"

    def _on_operators(self, _change: Any = None) -> None:
        allowed = self.allowed_operators
        count = "all" if allowed is None else f"{len(allowed)} of {len(OPERATORS)}"
        self.operators_panel.set_title(0, f"operators: {count} allowed")

    @property
    def allowed_operators(self) -> list[str] | None:
        """The ticked operators, or None when all are ticked (the regressor's default)."""
        ticked = [name for name, box in self.operator_boxes.items() if box.value]
        return None if len(ticked) == len(OPERATORS) else ticked

    # discovering --------------------------------------------------------------------------------
    def discover(self) -> None:
        """Fit the regressor on the chosen data and fill the tabs (what Discover does)."""
        self.discover_button.disabled = True
        self.message.value = ""
        self.progress.bar_style = "info"
        self._clear_results()
        start = time.perf_counter()
        try:
            self._discover()
        except Exception as error:  # a handler's traceback goes to a log the user never sees
            logger.debug("discover failed", exc_info=True)
            self._show_error(error)
            self.progress.bar_style = "danger"
            self.status.value = "failed"
        else:
            self.progress.value = len(STAGES)
            self.progress.bar_style = "success"
            self.status.value = f"done in {time.perf_counter() - start:.1f} s"
        finally:
            self.discover_button.disabled = False

    def _discover(self) -> None:
        X, y = self._problem()
        operators = self.allowed_operators
        if operators == []:
            raise ValueError("tick at least one operator")
        prompt = self.prompt.value.strip() or None
        self._stage(0)
        # imported here: torch and transformers take seconds, and the interface must not wait
        from chatsr.estimator import ChatSRRegressor

        model = self._model()
        self._stage(1, f"searching (up to {self.time_budget.value:g} s)")
        estimator = ChatSRRegressor(model, num_candidates=self.num_candidates.value,
                                    operators=operators, time_budget=self.time_budget.value,
                                    random_state=self.random_state)
        self.estimator = estimator.fit(X, y, prompt=prompt)
        self._stage(2)
        self.formula.value = _formula_html(estimator, str(y.name))
        self.pareto.value = _pareto_html(estimator)
        self.plot.outputs = (_figure_output(estimator, X, y),)
        self._stage(3)
        self.report = self._first_token(model, estimator, prompt)
        self.debug.value = _debug_html(self.report)

    def _problem(self) -> tuple[pd.DataFrame, pd.Series]:
        features = list(self.features.value)
        if not features:
            raise ValueError("choose at least one feature")
        frame = self.frame
        return frame[features], frame[self.target.value]

    def _model(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from chatsr.model.pretrained import load_pretrained

            self._loaded = load_pretrained(self.model)
        return self._loaded

    def _first_token(self, model: tuple[Any, Any], estimator: ChatSRRegressor,
                     prompt: str | None) -> DebugReport:
        """The model's first-token distribution on the points and prompt ``fit`` gave it."""
        from chatsr.model.processing import ChatSRProcessor, user_prompt
        from chatsr.training.debugger import debug_sample

        network, tokenizer = model
        points = estimator.model_points_
        return debug_sample(network, ChatSRProcessor.for_model(tokenizer, network), points,
                            prompt=user_prompt(prompt), top_k=self.top_k, max_new_tokens=1)

    def _stage(self, index: int, text: str | None = None) -> None:
        self.progress.value = index
        self.status.value = f"{text or STAGES[index]}…"

    def _clear_results(self) -> None:
        self.estimator = self.report = None
        self.formula.value = self.pareto.value = self.debug.value = ""
        self.plot.outputs = ()

    def _show_error(self, error: Exception | str) -> None:
        text = str(error) if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.message.value = f"<p style='{ERROR_STYLE}'>{html.escape(text)}</p>"


# rendering ----------------------------------------------------------------------------------------
def _latex(expression: sympy.Expr) -> str:
    return html.escape(sympy.latex(expression.evalf(DIGITS)))


def _formula_html(estimator: ChatSRRegressor, target: str) -> str:
    best = estimator.best_
    lhs = sympy.latex(sympy.Symbol(target))
    return (f"<p style='font-size: 1.3em'>${html.escape(lhs)} = "
            f"{_latex(estimator.sympy())}$</p>"
            f"<p>R² = {best['r2']:.6f}, MSE = {best['mse']:.{DIGITS}g}, complexity "
            f"{int(best['complexity'])}; chosen among {len(estimator.equations_)} formulas "
            f"on the Pareto front (fit: {estimator.fit_time_:.1f} s)</p>")


def _pareto_html(estimator: ChatSRRegressor) -> str:
    """``equations_`` as a table, simplest first, the chosen formula in bold."""
    header = "".join(f"<th>{h}</th>" for h in ("complexity", "formula", "MSE", "R²",
                                               "score", "found by"))
    rows = []
    for label, row in estimator.equations_.iterrows():
        bold = " style='font-weight: bold'" if label == estimator.best_.name else ""
        cells = (int(row["complexity"]), f"${_latex(row['equation'])}$",
                 f"{row['mse']:.{DIGITS}g}", f"{row['r2']:.6f}", f"{row['score']:.{DIGITS}g}",
                 html.escape(str(row["source"])))
        rows.append(f"<tr{bold}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p><small>The chosen formula is in bold.</small></p>")


def _figure_output(estimator: ChatSRRegressor, X: pd.DataFrame, y: pd.Series) -> dict:
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


def _debug_html(report: DebugReport) -> str:
    """The first-token probabilities as a table with bars, most likely first."""
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
