"""`ChatSRRegressor`: hand chatsr a table, get a formula (the scikit-learn contract).

A thin shell over the stages of `chatsr.pipeline`: ``fit`` checks and rescales the data
(`chatsr.pipeline.prepare`), lets the model propose formulas for the rescaled data
(`chatsr.pipeline.make_proposer`) and `chatsr.search.refine.search` evolve them with Operon's
genetic programming, seeded and steered by the model (`chatsr.pipeline.model_prior`),
converts the front of what it found back to the user's units
(`chatsr.pipeline.to_user_units`), polishes and tidies each formula there
(`chatsr.search.tidy`: ``Abs`` of a one-signed argument, negligible constants, simple numbers,
Taylor approximants, and constants the data do not need by the small-sample corrected Akaike
criterion), drops those not finite on the data's box (`chatsr.pipeline.defined_on_box`) and
selects (`chatsr.pipeline.select`): ``equations_`` is the Pareto front of accuracy against
complexity, and ``best_`` is chosen as PySR's ``model_selection="best"``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(1, 5, size=(100, 2))
>>> y = X[:, 0] * X[:, 1]
>>> est = ChatSRRegressor(time_budget=5, random_state=0).fit(X, y)  # doctest: +SKIP
>>> est.sympy()  # doctest: +SKIP
x1*x2
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sympy
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from chatsr.export import to_numpy, to_torch
from chatsr.pipeline import (
    column_names,
    consistent,
    make_proposer,
    model_prior,
    numeric_target,
    prepare,
    proposals_table,
    read_units,
    reduce_by_units,
    result_row,
    select,
    shortlist,
    stated_operators,
    to_user_units,
    unit_monomials,
    units_prompt,
)
from chatsr.results import front_table, html_table, read_fit, text_table, write_fit
from chatsr.search.engine import ENGINE_OPERATORS, EngineSettings
from chatsr.search.refine import search
from chatsr.search.tidy import polish, polynomials, tidy
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import DEFAULT_MAX_VARS, OPERATORS, ExpressionError, canonical_name

__all__ = ["ChatSRRegressor"]

# seconds per constant refit in the user's units when the search runs on a clock; without
# one (time_budget=None) nothing may depend on the machine's speed
POLISH_TIME_LIMIT = 0.2
# of the time left after the model's first round, the search's share; the rest is for
# refitting and tidying its front in the user's units
SEARCH_SHARE = 0.8
# with units, of the search's time, the share of a first search on the dimensionless groups
# (fewer columns; what it finds seeds the search on the columns)
GROUPS_SHARE = 0.5
ROW_TIME = 0.05  # first guess of the seconds one row's checks take (the held-out refits)
# A dimensionally consistent formula fits when its R² on the data reaches EXACT_FIT_R2 or it
# leaves at most CONSISTENT_FIT times the best formula's unexplained variance; when none
# fits, units do not cost accuracy: the best is reported, flagged inconsistent
EXACT_FIT_R2 = 0.999
CONSISTENT_FIT = 10.0


class ChatSRRegressor(RegressorMixin, BaseEstimator):
    """Symbolic regression with the chatsr model and a search around it.

    Parameters
    ----------
    model
        A model directory, a loaded ``(model, tokenizer)`` pair, None for the shipped
        checkpoint (loaded offline), or False for no model: the engine alone, from random
        formulas (the ablation that measures what the model adds).
    num_candidates
        Formulas the model proposes in the first round.
    strategy
        How the first round is decoded: ``"sample"``, ``"beam"`` or ``"greedy"``.
    operators, exclude
        Operators allowed (None: all the model knows) and forbidden; enforced by the grammar.
    time_budget
        Seconds for the whole fit (the model's first round is always fitted); None: no clock
        (set ``max_rounds``).
    max_rounds
        Most rounds of the engine after the model's first (each 10 generations of Operon's
        genetic programming, then the model's resampling of prefixes of the best formulas); 0:
        the model's proposals only. With ``time_budget=None`` (and ``n_jobs=1``) the result
        depends only on the data and ``random_state``, not on the machine's speed.
    population_size
        Formulas in the engine's population.
    n_jobs
        Threads the engine evaluates with (None: 1).
    max_length
        Most tokens in a formula (preorder).
    max_points
        Points the model reads (a random subset of larger data); the fit uses all of them.
    model_selection
        ``"best"``: the simplest formula whose cross-validated loss is within 1.5x the lowest
        (PySR's rule with a held-out loss; its score, a drop in training loss, rewards fitting
        the noise), ``"accuracy"``: the lowest cross-validated loss, or ``"score"``. With
        fewer than 20 points, PySR's own rule on the penalised loss.
    loss
        What the constants are fitted to and the candidates compared by: ``"mse"``, the mean
        squared error; ``"log"``, the mean squared error of ``log(f)`` against ``log(y)`` for
        positive ``y`` (relative errors: a planet at 0.4 AU counts as much as one at 30 AU);
        ``"auto"`` takes ``"log"`` when ``y`` is positive and spans at least two decades
        (``max(y) / min(y) >= 100``), else ``"mse"``.
    random_state
        Seed for decoding, point subsets and constant fitting.
    verbosity
        0: quiet; 1: a progress bar during ``fit`` (rounds, best loss so far).
    callback
        Called during ``fit`` with a dict: ``stage`` (``"propose"``, ``"search"``,
        ``"tidy"``, ``"done"``), and in the search ``round`` and ``nmse`` (the best
        formula's loss relative to the variance of y); the widget explorer's progress.

    Attributes
    ----------
    equations_ : pandas.DataFrame
        The Pareto front: complexity, loss (as ``loss_`` says, with the sample weights, times
        the small-sample penalty of AICc for the formula's constants,
        `chatsr.search.selection.penalized_loss`: ×1.021 for 2 constants on 200 points, but
        ×e¹² for 6 on 8 points, which could pass through all of them), cv_loss (the loss
        on held-out fifths of the points, constants refitted on the rest: what
        ``model_selection`` compares, so that a formula fitting the noise is not chosen), mse,
        r2, score,
        equation (a string, in the variable names), sympy (the same as a sympy expression),
        expression (`Expression`), source (model, prefix, engine, polynomial).
    loss_ : str
        ``"mse"`` or ``"log"``: the loss used (what ``loss="auto"`` chose).
    best_ : pandas.Series
        The row of ``equations_`` chosen by ``model_selection``.
    model_points_ : numpy.ndarray
        The rows the model read, ``[x1..x_max_dims, y]``: columns whose root mean square is
        outside `chatsr.pipeline.ORDER_ONE` divided by it (unless ``mul`` is not allowed), at most
        ``max_points`` rows.
    variable_names_, fit_time_
        The names of the columns of ``X``; seconds ``fit`` took.
    proposals_ : pandas.DataFrame
        The model's first-round proposals: ``equation`` (a string in the variable names,
        constants ``c0, c1, …``), ``log_prob`` (under the grammar-restricted model),
        ``tokens``; most probable first (empty without a model).

    A fitted estimator prints its front (the chosen row marked); ``save`` writes it as JSON and
    `load` reads it back without the model (predicting imports no torch).
    """

    _parameter_constraints: dict = {
        "model": [None, str, os.PathLike, tuple, Options(bool, {False})],
        "num_candidates": [Interval(Integral, 1, None, closed="left")],
        "strategy": [StrOptions({"sample", "beam", "greedy"})],
        "operators": [None, str, list, tuple, set, frozenset],
        "exclude": [str, list, tuple, set, frozenset],
        "time_budget": [None, Interval(Real, 0, None, closed="neither")],
        "max_rounds": [None, Interval(Integral, 0, None, closed="left")],
        "population_size": [Interval(Integral, 10, None, closed="left")],
        "n_jobs": [None, Interval(Integral, 1, None, closed="left")],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "max_points": [Interval(Integral, 1, None, closed="left")],
        "model_selection": [StrOptions({"best", "accuracy", "score"})],
        "loss": [StrOptions({"auto", "mse", "log"})],
        "random_state": [None, Interval(Integral, 0, None, closed="left")],
        "verbosity": [Interval(Integral, 0, None, closed="left")],
        "callback": [None, callable],
    }

    def __init__(self, model: str | Path | tuple | Literal[False] | None = None, *,
                 num_candidates: int = 64,
                 strategy: Literal["sample", "beam", "greedy"] = "sample",
                 operators: Sequence[str] | None = None, exclude: Sequence[str] = (),
                 time_budget: float | None = 10.0, max_rounds: int | None = None,
                 population_size: int = 500, n_jobs: int | None = None,
                 max_length: int = 20, max_points: int = 200,
                 model_selection: Literal["best", "accuracy", "score"] = "best",
                 loss: Literal["auto", "mse", "log"] = "auto",
                 random_state: int | None = None, verbosity: int = 0,
                 callback: Callable[[dict[str, Any]], None] | None = None):
        self.model = model
        self.num_candidates = num_candidates
        self.strategy = strategy
        self.operators = operators
        self.exclude = exclude
        self.time_budget = time_budget
        self.max_rounds = max_rounds
        self.population_size = population_size
        self.n_jobs = n_jobs
        self.max_length = max_length
        self.max_points = max_points
        self.model_selection = model_selection
        self.loss = loss
        self.random_state = random_state
        self.verbosity = verbosity
        self.callback = callback

    # fitting -----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, sample_weight: Any = None,
            variable_names: Sequence[str] | None = None, prompt: str | None = None,
            X_units: Sequence[str] | None = None, y_units: str | None = None
            ) -> ChatSRRegressor:
        """Find formulas for ``y`` as a function of the columns of ``X``; returns ``self``.

        ``X`` is an array (n, d) or a DataFrame (its column names become the variable names);
        ``sample_weight`` weighs the points in the loss; ``prompt`` is context for the
        model's text channel. The shipped model was trained on
        sentences about the formula (`chatsr.data.prompts`): "It contains sin.", "There is no exp
        in the formula.", "The formula depends on x1 and x2.", "It has 2 constants to fit.",
        "All values of x1 are positive." Other text is read but carries no trained meaning.
        Operators a sentence in those wordings says the formula holds ("It contains sin.") or
        lacks ("There is no exp in the formula.") are also rules: every proposal of the model
        holds the first (and the engine draws them more often), no formula found holds the
        second (as with ``exclude``). The data still choose the formula: one without an
        operator said to be there is reported when it fits better.

        ``X_units`` (a unit string per column: ``"kg"``, ``"m/s^2"``, ``"J*s"``, ``"1"`` for
        dimensionless) and ``y_units`` (PySR's names) are read with pint, stated to the model
        ("x1 is a length in m."), seed the search with the products of powers of the columns
        that have ``y``'s dimension and fit best (`chatsr.pipeline.unit_monomials`) and keep
        the front to formulas whose dimensions agree (numeric constants dimensionless); when
        none of those fits the data (R² 0.999, or within ten times the best formula's
        unexplained variance), the best formula is reported with a warning and
        ``consistent`` False. Where the dimensionless groups are fewer than the columns
        (Buckingham π, `chatsr.pipeline.reduce_by_units`), part of the search's time goes to
        a search on the groups first, and what it finds seeds the search on the columns.
        """
        start = time.perf_counter()
        self._validate_params()
        operators, exclude = _names(self.operators, "operators"), _names(self.exclude, "exclude")
        require, exclude = stated_operators(prompt, operators, exclude)
        names = column_names(X, variable_names)  # before validate_data: names bad columns
        X, y = validate_data(self, X, numeric_target(y), y_numeric=True, dtype=np.float64)
        units = read_units(X_units, y_units, X.shape[1])
        model, tokenizer = self._model()
        rng = np.random.default_rng(self.random_state)
        max_dims = DEFAULT_MAX_VARS if model is None else model.config.max_dims
        problem = prepare(X, y, sample_weight=sample_weight, variable_names=names,
                          loss=self.loss, operators=operators, exclude=exclude,
                          max_points=self.max_points, rng=rng, max_dims=max_dims)
        self.loss_, self.variable_names_ = problem.loss, problem.variable_names
        self.model_points_ = problem.points
        record: list[tuple[tuple[str, ...], float]] = []
        report = self._reporter(start)
        rules = dict(model=model, tokenizer=tokenizer, rng=rng, operators=operators,
                     exclude=exclude, require=require)
        seeds = [] if units is None else unit_monomials(problem.X_scaled, problem.y_scaled, units)
        reduction = None if units is None or "mul" not in problem.operators else reduce_by_units(
            problem.X_scaled, problem.y_scaled, units, rng=rng, max_dims=max_dims,
            sample_weight=problem.weight, operators=problem.operators,
            max_points=self.max_points)
        until = None if self.time_budget is None else time.perf_counter() + max(
            0.05, (self.time_budget - (time.perf_counter() - start)) * SEARCH_SHARE)
        try:
            if model is not None:
                report({"stage": "propose"})
            if reduction is not None:  # its formulas, consistent by construction, seed
                n_groups = reduction.problem.X.shape[1]
                dimensionless = read_units(["1"] * n_groups, "1", n_groups)
                grouped = self._search(
                    reduction.problem, None if until is None else
                    time.perf_counter() + (until - time.perf_counter()) * GROUPS_SHARE,
                    prompt=units_prompt(None, dimensionless), **rules)
                seeds += [s for e in shortlist(grouped) if (s := reduction.in_columns(e))]
            found = self._search(problem, until, prompt=units_prompt(prompt, units),
                                 record=record, seeds=seeds, on_round=lambda k, nmse: report(
                                     {"stage": "search", "round": k, "nmse": nmse}), **rules)
            report({"stage": "tidy"})
            rows = self._tidy(found, problem, rng, start)
            front, best = select(rows if units is None else _consistent_rows(rows, units),
                                 self.model_selection)
        finally:
            report({"stage": "done"})
        self.proposals_ = proposals_table(record, problem.variable_names)
        self.equations_ = front_table(front, problem.variable_names)
        self.best_ = self.equations_.loc[best.name]
        self.expression_ = self.best_["expression"]
        self.fit_time_ = time.perf_counter() - start
        return self

    def _search(self, problem: Any, until: float | None, *, model: Any, tokenizer: Any,
                rng: np.random.Generator, operators: list[str] | None, exclude: list[str],
                require: list[str], prompt: str | None,
                record: list[tuple[tuple[str, ...], float]] | None = None,
                on_round: Callable[[int, float], None] | None = None,
                seeds: Sequence[tuple[str, ...] | Expression] = ()) -> list[Any]:
        """The engine on ``problem``'s rescaled data until the clock reads ``until`` (None:
        ``max_rounds``), seeded by ``seeds`` and, with a model, steered by its proposals for
        ``problem``'s points and ``prompt`` (fresh ones appended to ``record``)."""
        proposer, prior = None, None
        if model is not None:
            proposer = make_proposer(model, tokenizer, problem.points,
                                     num_variables=problem.X.shape[1], strategy=self.strategy,
                                     max_length=self.max_length, prompt=prompt,
                                     operators=operators, exclude=exclude, require=require,
                                     record=record)
            prior = model_prior(model, tokenizer, problem.points,
                                problem.operators & ENGINE_OPERATORS.keys())
        return search(proposer, problem.X_scaled, problem.y_scaled,
                      time_budget=None if until is None else max(0.05, until - time.perf_counter()),
                      max_rounds=self.max_rounds, num_candidates=self.num_candidates,
                      operators=problem.operators, prior=prior, random_state=rng,
                      core=None if operators is None else problem.operators,
                      sample_weight=problem.weight, loss=problem.loss,
                      settings=EngineSettings(population_size=self.population_size,
                                              n_threads=self.n_jobs or 1),
                      on_round=on_round, seeds=seeds)

    def _reporter(self, start: float) -> Callable[[dict[str, Any]], None]:
        """What ``fit`` calls at each stage and round: the ``callback`` and, with
        ``verbosity``, a tqdm bar over the budget's seconds (or the rounds)."""
        bar = None
        if self.verbosity:
            total = self.time_budget if self.time_budget is not None else self.max_rounds
            bar = tqdm(total=total, desc="chatsr fit",
                       unit="s" if self.time_budget is not None else "round")

        def report(info: dict[str, Any]) -> None:
            if self.callback is not None:
                self.callback(dict(info))
            if bar is None:
                return
            done = info.get("round", bar.n)
            if self.time_budget is not None:
                done = min(time.perf_counter() - start, self.time_budget)
            bar.update(done - bar.n)
            bar.set_postfix_str(f"{info['stage']}" + (
                f", best NMSE {info['nmse']:.3g}" if "nmse" in info else ""))
            if info["stage"] == "done":
                bar.close()

        return report

    def _tidy(self, found: Sequence[Any], problem: Any, rng: np.random.Generator,
              start: float) -> list[dict[str, Any]]:
        """The rows of the search's front in the user's units and of the least-squares
        polynomials, polished and tidied (within the budget), finite on the data's box."""
        deadline = np.inf if self.time_budget is None else start + self.time_budget
        refit = dict(random_state=rng, sample_weight=problem.weight, loss=problem.loss,
                     time_limit=None if self.time_budget is None else POLISH_TIME_LIMIT)
        # the most accurate first: they are what the budget must not cut
        candidates = [(to_user_units(e, problem), e.source)
                      for e in sorted(shortlist(found), key=lambda e: e.fit.loss)]
        candidates += [(p, "polynomial") for p in polynomials(problem.X, problem.y,
                                                               sample_weight=problem.weight)]
        rows, scoring = [], ROW_TIME  # seconds a row's checks take (cross-validation)
        for k, (expression, source) in enumerate(candidates):
            if expression is None:
                continue
            until = deadline
            if self.time_budget is not None:  # share what is left; past it, a quick refit
                share = (deadline - time.perf_counter()) / (len(candidates) - k) - scoring
                refit["time_limit"] = float(np.clip(share, 0.01, POLISH_TIME_LIMIT))
                until = min(deadline, time.perf_counter() + 2 * max(share, 0.0))
            fit = polish(expression, problem.X, problem.y, **refit)
            if fit.success:
                fit = tidy(fit, problem.X, problem.y, deadline=until, **refit)
                begin = time.perf_counter()
                row = result_row(fit, source, problem, rng, time_limit=refit["time_limit"])
                scoring = max(scoring, time.perf_counter() - begin)
                rows += [] if row is None else [row]
        return rows

    def _model(self) -> tuple[Any, Any]:
        if self.model is False:
            return None, None
        from chatsr.model.pretrained import resolve_model  # torch: only to propose

        return resolve_model(self.model)

    # using the result ------------------------------------------------------------------------
    def predict(self, X: Any, index: int | None = None) -> np.ndarray:
        """The best formula (or row ``index`` of ``equations_``) evaluated on ``X`` (the
        columns of ``fit``); warns where it is not finite."""
        expression = self._expression(index)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with np.errstate(all="ignore"):
            values = np.broadcast_to(expression(X), (X.shape[0],)).astype(np.float64)
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            formula = expression.to_sympy(variable_names=self.variable_names_)
            warnings.warn(f"the formula {formula} is not finite on {bad} of {len(values)} "
                          f"rows of X (outside the ranges it was fitted on?)", RuntimeWarning,
                          stacklevel=2)
        return values

    def _expression(self, index: int | None) -> Expression:
        check_is_fitted(self, "expression_")
        if index is None:
            return self.expression_
        rows = self.equations_.index
        if isinstance(index, bool) or not isinstance(index, Integral) or index not in rows:
            raise IndexError(f"index must be a row of equations_ ({rows.min()} to "
                             f"{rows.max()}) or None for the chosen one, got {index!r}")
        return self.equations_.loc[index, "expression"]

    def sympy(self, index: int | None = None) -> sympy.Expr:
        """The best formula (or row ``index`` of ``equations_``) with the variable names."""
        return self._expression(index).to_sympy(variable_names=self.variable_names_)

    def latex(self, index: int | None = None, precision: int | None = None) -> str:
        """LaTeX of the best formula (or row ``index`` of ``equations_``); ``precision``
        rounds its constants to that many significant digits (None: all of them)."""
        if precision is None:
            return sympy.latex(self.sympy(index))
        return self._expression(index).latex(variable_names=self.variable_names_,
                                             precision=precision)

    def numpy(self, index: int | None = None):
        """A function ``f(X) -> y`` for arrays (n, d), fast (compiled once)."""
        return to_numpy(self._expression(index), self.variable_names_)

    def pytorch(self, index: int | None = None):
        """A ``torch.nn.Module`` computing the formula, its constants as parameters."""
        return to_torch(self._expression(index), self.variable_names_)

    # the front, shown and saved ----------------------------------------------------------------
    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        settings = super().__repr__(N_CHAR_MAX)
        if not hasattr(self, "equations_"):
            return settings
        return f"{settings}\n{text_table(self.equations_, self.best_.name)}"

    def _repr_html_(self) -> str:
        if not hasattr(self, "equations_"):
            return super()._repr_html_()
        return (f"<p>{type(self).__name__}: the Pareto front, the chosen formula marked</p>"
                f"{html_table(self.equations_, self.best_.name)}")

    def save(self, path: str | Path) -> Path:
        """Write the fit as JSON (formulas as tokens with their constants, the front, the
        chosen row, the settings, versions) to ``path``; `load` reads it without the model.

        >>> import numpy as np, tempfile, pathlib
        >>> X = np.linspace(1.0, 2.0, 20).reshape(-1, 1)
        >>> est = ChatSRRegressor(model=False, time_budget=None, max_rounds=1,
        ...                       random_state=0).fit(X, 3.0 * X[:, 0])
        >>> path = est.save(pathlib.Path(tempfile.mkdtemp()) / "fit.json")
        >>> ChatSRRegressor.load(path).sympy()
        3*x1
        """
        check_is_fitted(self, "expression_")
        params = {k: v for k, v in self.get_params().items() if k != "callback"}
        model = params["model"]
        params["model"] = model if model is None or model is False else (
            os.fspath(model) if isinstance(model, str | os.PathLike) else None)
        fitted = {"variable_names": self.variable_names_, "loss": self.loss_,
                  "fit_time": self.fit_time_, "n_features_in": self.n_features_in_,
                  "feature_names_in": list(getattr(self, "feature_names_in_", [])) or None,
                  "model_points": self.model_points_.tolist()}
        for key in ("operators", "exclude"):
            if params[key] is not None and not isinstance(params[key], str):
                params[key] = list(params[key])
        return write_fit(path, front=self.equations_, best=self.best_.name, params=params,
                         fitted=fitted)

    @classmethod
    def load(cls, path: str | Path) -> ChatSRRegressor:
        """A fit written by `save`, ready to predict and export (no model is loaded).
        Raises ``ValueError`` naming the file when it is not a saved fit."""
        saved = read_fit(path)
        fitted = saved["fitted"]
        try:
            estimator = cls(**saved["params"])
            estimator.variable_names_ = list(fitted["variable_names"])
            estimator.loss_ = fitted["loss"]
            estimator.fit_time_ = fitted["fit_time"]
            estimator.n_features_in_ = int(fitted["n_features_in"])
            if fitted["feature_names_in"]:
                estimator.feature_names_in_ = np.asarray(fitted["feature_names_in"],
                                                         dtype=object)
            estimator.model_points_ = np.asarray(fitted["model_points"], dtype=np.float64)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path} is a damaged chatsr fit: {error}") from None
        estimator.equations_ = front_table(saved["front"], estimator.variable_names_)
        estimator.best_ = estimator.equations_.loc[saved["best"]]
        estimator.expression_ = estimator.best_["expression"]
        return estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = (self.random_state is None or self.time_budget is not None
                                  or (self.n_jobs or 1) > 1)
        return tags


def _names(value: str | Sequence[str] | None, argument: str) -> list[str] | None:
    """Operator names as given to ``operators`` or ``exclude``: one name or several, each
    known (a clear error naming ``argument`` otherwise)."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    for name in names:
        try:
            known = canonical_name(str(name)) in OPERATORS
        except ExpressionError:
            known = False
        if not known:
            raise ValueError(f"{argument} holds {name!r}, which is not an operator; known: "
                             f"{', '.join(OPERATORS)}") from None
    return [str(n) for n in names]


def _consistent_rows(rows: list[dict[str, Any]], units: Any) -> list[dict[str, Any]]:
    """The rows whose formula is dimensionally consistent with ``units``, marked so, when one
    of them fits (`CONSISTENT_FIT`); all of them, with a warning, when none does."""
    for row in rows:
        row["consistent"] = consistent(row["expression"], units)
    kept = [row for row in rows if row["consistent"]]
    unexplained = min((1 - row["r2"] for row in rows), default=0.0)
    fits = [row for row in kept
            if 1 - row["r2"] <= max(CONSISTENT_FIT * unexplained, 1 - EXACT_FIT_R2)]
    if rows and not fits:
        warnings.warn(f"no formula found that is dimensionally consistent with X_units="
                      f"{units.x} and y_units={units.y!r} fits the data (R² {EXACT_FIT_R2} or "
                      f"within {CONSISTENT_FIT}x the best's unexplained variance); the best "
                      f"is reported with consistent=False", UserWarning, stacklevel=3)
        return rows
    return kept

