"""The explorer itself: the controls, what they do to each other, and Discover."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from chatsr.data.datasets import DATASETS, Dataset
from chatsr.symbolic.operators import OPERATORS
from chatsr.widgets.render import debug_html, figure_output, formula_html, pareto_html
from chatsr.widgets.sources import Source, numeric_columns, read_csv

if TYPE_CHECKING:
    from chatsr.estimator import ChatSRRegressor
    from chatsr.training.debugger import DebugReport

__all__ = ["STAGES", "Explorer"]

logger = logging.getLogger(__name__)

PROMPT_HELP = ("Context for the model, e.g. \"It contains sin.\", \"There is no exp in the "
               "formula.\", \"All values of x1 are positive.\" (x1, x2, … are the features in "
               "order)")
STAGES = ("loading the model", "searching", "drawing the results", "reading the first token")
ERROR_STYLE = "color: #b00020"


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
    max_rounds
        None: fits run for the budget slider's seconds; a number: for that many rounds of the
        search, without a clock (results depend on ``random_state`` only).

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
                 top_k: int = 10, max_rounds: int | None = None):
        self.model = model
        self.random_state = random_state
        self.max_rounds = max_rounds
        self.top_k = top_k
        self.estimator: ChatSRRegressor | None = None
        self.report: DebugReport | None = None
        self._loaded = model if isinstance(model, tuple) else None
        self._sources = {name: Source(dataset.describe(), dataset.target, dataset.prompt,
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
            numeric = numeric_columns(source.frame())
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
        self._sources[key] = Source(f"{name}: uploaded, {len(frame)} rows, columns "
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
        budget = dict(time_budget=self.time_budget.value)
        if self.max_rounds is not None:
            budget = dict(time_budget=None, max_rounds=self.max_rounds)
        self._stage(1, "the model proposes")
        estimator = ChatSRRegressor(model, num_candidates=self.num_candidates.value,
                                    operators=operators, random_state=self.random_state,
                                    callback=self._on_progress, **budget)
        self.estimator = estimator.fit(X, y, prompt=prompt)
        self._stage(2)
        self.formula.value = formula_html(estimator, str(y.name))
        self.pareto.value = pareto_html(estimator)
        self.plot.outputs = (figure_output(estimator, X, y),)
        self._stage(3)
        self.report = self._first_token(model, estimator, prompt)
        self.debug.value = debug_html(self.report)

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

    def _on_progress(self, info: dict[str, Any]) -> None:
        """The fit's callback: its rounds and best loss so far, as they come."""
        if info["stage"] == "search":
            self.status.value = (f"searching: round {info['round']}, best NMSE "
                                 f"{info['nmse']:.3g}…")
        elif info["stage"] == "tidy":
            self.status.value = "tidying the formulas…"

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
