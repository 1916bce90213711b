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

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sympy
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from chatsr.export import to_numpy, to_torch
from chatsr.model.pretrained import load_pretrained
from chatsr.pipeline import (
    column_names,
    make_proposer,
    model_prior,
    prepare,
    result_row,
    select,
    shortlist,
    to_user_units,
)
from chatsr.search.engine import ENGINE_OPERATORS, EngineSettings
from chatsr.search.refine import search
from chatsr.search.tidy import polish, polynomials, tidy
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import DEFAULT_MAX_VARS

__all__ = ["ChatSRRegressor"]

# seconds per constant refit in the user's units when the search runs on a clock; without
# one (time_budget=None) nothing may depend on the machine's speed
POLISH_TIME_LIMIT = 0.2
# of the time left after the model's first round, the search's share; the rest is for
# refitting and tidying its front in the user's units
SEARCH_SHARE = 0.8


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
        ``"best"`` (highest score within 1.5x the lowest loss, as PySR), ``"accuracy"`` or
        ``"score"``.
    loss
        What the constants are fitted to and the candidates compared by: ``"mse"``, the mean
        squared error; ``"log"``, the mean squared error of ``log(f)`` against ``log(y)`` for
        positive ``y`` (relative errors: a planet at 0.4 AU counts as much as one at 30 AU);
        ``"auto"`` takes ``"log"`` when ``y`` is positive and spans at least two decades
        (``max(y) / min(y) >= 100``), else ``"mse"``.
    random_state
        Seed for decoding, point subsets and constant fitting.

    Attributes
    ----------
    equations_ : pandas.DataFrame
        The Pareto front: complexity, loss (as ``loss_`` says, with the sample weights, times
        the small-sample penalty of AICc for the formula's constants,
        `chatsr.search.selection.penalized_loss`: ×1.021 for 2 constants on 200 points, but
        ×e¹² for 6 on 8 points, which could pass through all of them), mse, r2, score,
        equation (sympy, the variable names), expression (`Expression`), source (model,
        prefix, engine).
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
    """

    def __init__(self, model: str | Path | tuple | Literal[False] | None = None, *,
                 num_candidates: int = 64,
                 strategy: Literal["sample", "beam", "greedy"] = "sample",
                 operators: Sequence[str] | None = None, exclude: Sequence[str] = (),
                 time_budget: float | None = 10.0, max_rounds: int | None = None,
                 population_size: int = 500, n_jobs: int | None = None,
                 max_length: int = 20, max_points: int = 200,
                 model_selection: Literal["best", "accuracy", "score"] = "best",
                 loss: Literal["auto", "mse", "log"] = "auto",
                 random_state: int | None = None):
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

    # fitting -----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, sample_weight: Any = None,
            variable_names: Sequence[str] | None = None,
            prompt: str | None = None) -> ChatSRRegressor:
        """Find formulas for ``y`` as a function of the columns of ``X``; returns ``self``.

        ``X`` is an array (n, d) or a DataFrame (its column names become the variable names);
        ``sample_weight`` weighs the points in the loss; ``prompt`` is context for the
        model's text channel. The shipped model was trained on
        sentences about the formula (`chatsr.data.prompts`): "It contains sin.", "There is no exp
        in the formula.", "The formula depends on x1 and x2.", "It has 2 constants to fit.",
        "All values of x1 are positive." Other text is read but carries no trained meaning.
        """
        start = time.perf_counter()
        names = column_names(X, variable_names)  # before validate_data: names bad columns
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        model, tokenizer = self._model()
        rng = np.random.default_rng(self.random_state)
        problem = prepare(X, y, sample_weight=sample_weight, variable_names=names,
                          loss=self.loss, operators=self.operators, exclude=self.exclude,
                          max_points=self.max_points, rng=rng,
                          max_dims=DEFAULT_MAX_VARS if model is None else model.config.max_dims)
        self.loss_, self.variable_names_ = problem.loss, problem.variable_names
        self.model_points_ = problem.points
        proposer, prior = None, None
        if model is not None:
            proposer = make_proposer(model, tokenizer, problem.points, num_variables=X.shape[1],
                                     strategy=self.strategy, max_length=self.max_length,
                                     prompt=prompt, operators=self.operators,
                                     exclude=self.exclude)
            prior = model_prior(model, tokenizer, problem.points,
                                problem.operators & ENGINE_OPERATORS.keys())
        budget = None if self.time_budget is None else max(
            0.05, (self.time_budget - (time.perf_counter() - start)) * SEARCH_SHARE)
        found = search(proposer, problem.X_scaled, problem.y_scaled, time_budget=budget,
                       max_rounds=self.max_rounds, num_candidates=self.num_candidates,
                       operators=problem.operators, prior=prior, random_state=rng,
                       core=None if self.operators is None else problem.operators,
                       sample_weight=problem.weight, loss=problem.loss,
                       settings=EngineSettings(population_size=self.population_size,
                                               n_threads=self.n_jobs or 1))
        self.equations_, self.best_ = select(self._tidy(found, problem, rng, start),
                                             self.model_selection)
        self.expression_ = self.best_["expression"]
        self.fit_time_ = time.perf_counter() - start
        return self

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
        rows = []
        for k, (expression, source) in enumerate(candidates):
            if expression is None:
                continue
            if self.time_budget is not None:  # share what is left; past it, a quick refit
                left = (deadline - time.perf_counter()) / (len(candidates) - k)
                refit["time_limit"] = float(np.clip(left, 0.01, POLISH_TIME_LIMIT))
            fit = polish(expression, problem.X, problem.y, **refit)
            if fit.success:
                fit = tidy(fit, problem.X, problem.y, deadline=deadline, **refit)
                row = result_row(fit, source, problem, rng)
                rows += [] if row is None else [row]
        return rows

    def _model(self) -> tuple[Any, Any]:
        if self.model is False:
            return None, None
        if isinstance(self.model, tuple):
            return self.model
        return load_pretrained(self.model)

    # using the result ------------------------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """The best formula evaluated on ``X`` (same columns as in ``fit``)."""
        check_is_fitted(self, "expression_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with np.errstate(all="ignore"):
            values = np.broadcast_to(self.expression_(X), (X.shape[0],)).astype(np.float64)
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            warnings.warn(f"the formula {self.sympy()} is not finite on {bad} of {len(values)} "
                          f"rows of X (outside the ranges it was fitted on?)", RuntimeWarning,
                          stacklevel=2)
        return values

    def _expression(self, index: int | None) -> Expression:
        check_is_fitted(self, "expression_")
        if index is None:
            return self.expression_
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = (self.random_state is None or self.time_budget is not None
                                  or (self.n_jobs or 1) > 1)
        return tags
