"""`ChatSRRegressor`: hand chatsr a table, get a formula (the scikit-learn contract).

A thin shell over the stages of `chatsr.pipeline`: ``fit`` checks and rescales the data
(`chatsr.pipeline.prepare`), lets the model propose formulas for the rescaled data
(`chatsr.pipeline.make_proposer`) and `chatsr.search.refine.search` refine them, converts the
front of what it found back to the user's units (`chatsr.pipeline.to_user_units`), polishes
and tidies each formula there (`chatsr.search.tidy`: ``Abs`` of a one-signed argument,
negligible constants, simple numbers, Taylor approximants, and constants the data do not need
by the small-sample corrected Akaike criterion) and selects (`chatsr.pipeline.select`):
``equations_`` is the Pareto front of accuracy against complexity, and ``best_`` is chosen as
PySR's ``model_selection="best"``.

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
    prepare,
    result_row,
    select,
    shortlist,
    to_user_units,
)
from chatsr.search.refine import MOVES, search
from chatsr.search.tidy import polish, tidy
from chatsr.symbolic.expressions import Expression

__all__ = ["ChatSRRegressor"]

# seconds per constant refit in the user's units when the search runs on a clock; without
# one (time_budget=None) nothing may depend on the machine's speed
POLISH_TIME_LIMIT = 0.2


class ChatSRRegressor(RegressorMixin, BaseEstimator):
    """Symbolic regression with the chatsr model and a search around it.

    Parameters
    ----------
    model
        A model directory, a loaded ``(model, tokenizer)`` pair, or None for the shipped
        checkpoint (loaded offline).
    num_candidates
        Formulas the model proposes in the first round.
    strategy
        How the first round is decoded: ``"sample"``, ``"beam"`` or ``"greedy"``.
    operators, exclude
        Operators allowed (None: all the model knows) and forbidden; enforced by the grammar.
    time_budget
        Seconds for the search after the first round; None: no clock (set ``max_rounds``).
    moves
        What the search rounds do (`chatsr.search.refine.search`): ``"prefix"`` (the model
        completes the start of good formulas), ``"mutation"``, ``"wrapper"``; all by default,
        fewer for ablations.
    max_rounds
        Most rounds of search after the first. With ``time_budget=None`` the result depends
        only on the data and ``random_state``, not on the machine's speed.
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
        prefix, wrapper, mutation).
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

    def __init__(self, model: str | Path | tuple | None = None, *, num_candidates: int = 64,
                 strategy: Literal["sample", "beam", "greedy"] = "sample",
                 operators: Sequence[str] | None = None, exclude: Sequence[str] = (),
                 time_budget: float | None = 10.0, max_rounds: int | None = None,
                 moves: Sequence[str] = MOVES,
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
        self.moves = moves
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
                          max_points=self.max_points, max_dims=model.config.max_dims, rng=rng)
        self.loss_, self.variable_names_ = problem.loss, problem.variable_names
        self.model_points_ = problem.points
        proposer = make_proposer(model, tokenizer, problem.points, num_variables=X.shape[1],
                                 strategy=self.strategy, max_length=self.max_length,
                                 prompt=prompt, operators=self.operators, exclude=self.exclude)
        found = search(proposer, problem.X_scaled, problem.y_scaled,
                       time_budget=self.time_budget, max_rounds=self.max_rounds,
                       num_candidates=self.num_candidates, operators=problem.operators,
                       random_state=rng, moves=self.moves, sample_weight=problem.weight,
                       loss=problem.loss)
        refit = dict(random_state=rng, sample_weight=problem.weight, loss=problem.loss,
                     time_limit=None if self.time_budget is None else POLISH_TIME_LIMIT)
        rows = []
        for equation in shortlist(found):
            expression = to_user_units(equation, problem)
            if expression is None:
                continue
            fit = polish(expression, problem.X, problem.y, **refit)
            if not fit.success:
                continue
            row = result_row(tidy(fit, problem.X, problem.y, **refit), equation.source, problem)
            if row is not None:
                rows.append(row)
        self.equations_, self.best_ = select(rows, self.model_selection)
        self.expression_ = self.best_["expression"]
        self.fit_time_ = time.perf_counter() - start
        return self

    def _model(self) -> tuple[Any, Any]:
        if isinstance(self.model, tuple):
            return self.model
        return load_pretrained(self.model)

    # using the result ------------------------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """The best formula evaluated on ``X`` (same columns as in ``fit``)."""
        check_is_fitted(self, "expression_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with np.errstate(all="ignore"):
            return np.broadcast_to(self.expression_(X), (X.shape[0],)).astype(np.float64)

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
        tags.non_deterministic = self.random_state is None or self.time_budget is not None
        return tags
