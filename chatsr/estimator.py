"""`ChatSRRegressor`: hand chatsr a table, get a formula (the scikit-learn contract).

``fit`` rescales each column and the target whose root mean square is far from 1 (outside
``ORDER_ONE``) by it (no shift, so a formula's shape, its zero crossings and its domain stay
the same; columns of order one stay as they are, so that ``sin(x3)`` needs no constant), lets
the model propose formulas for the rescaled data and `chatsr.search.refine` refine them, converts
each candidate back to the user's units with sympy and polishes its constants there, and
tidies it (`chatsr.symbolic.simplify`: ``Abs`` of a one-signed argument, negligible constants, simple
numbers, Taylor approximants, and constants the data do not need by the small-sample
corrected Akaike criterion). ``equations_`` is the Pareto front of accuracy against
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

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import sympy
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from chatsr.data.datasets import label_columns
from chatsr.export import to_numpy, to_torch
from chatsr.model.decoding import propose
from chatsr.model.pretrained import load_pretrained
from chatsr.model.processing import ChatSRProcessor, pack_points, user_prompt
from chatsr.search.refine import MOVES, search
from chatsr.search.selection import pareto_front, penalized_loss, select_best
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import FitResult, fit_constants, loss_spread
from chatsr.symbolic.operators import OPERATORS, ExpressionError, canonical_name
from chatsr.symbolic.simplify import linearizations, prunings, rewrites

__all__ = ["ChatSRRegressor"]

logger = logging.getLogger(__name__)

MIN_POINTS = 5
ORDER_ONE = (0.1, 10.0)  # a column whose root mean square lies here is left in its units
TIDY_TOLERANCE = 1e-4  # a simpler rewrite may lose this much relative MSE (refit noise)


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
        What the search rounds do (`chatsr.search.refine.search`): ``"prefix"`` (the model completes
        the start of good formulas), ``"mutation"``, ``"wrapper"``; all by default, fewer for
        ablations.
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
        `chatsr.search.selection.penalized_loss`: ×1.021 for 2 constants on 200 points, but ×e¹² for 6
        on 8 points, which could pass through all of them), mse, r2, score, equation (sympy,
        the variable names), expression (`Expression`), source (model, prefix, wrapper,
        mutation).
    loss_ : str
        ``"mse"`` or ``"log"``: the loss used (what ``loss="auto"`` chose).
    best_ : pandas.Series
        The row of ``equations_`` chosen by ``model_selection``.
    model_points_ : numpy.ndarray
        The rows the model read, ``[x1..x_max_dims, y]``: columns whose root mean square is
        outside ``ORDER_ONE`` divided by it (unless ``mul`` is not allowed), at most
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
        sentences about the formula (`chatsr.data.records`): "It contains sin.", "There is no exp
        in the formula.", "The formula depends on x1 and x2.", "It has 2 constants to fit.",
        "All values of x1 are positive." Other text is read but carries no trained meaning.
        """
        start = time.perf_counter()
        names = _column_names(X, variable_names)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        weight = self._weights(y, sample_weight)
        model, tokenizer = self._model()
        _check_problem(X, y, max_dims=model.config.max_dims)
        self.variable_names_ = names or [f"x{i}" for i in range(1, X.shape[1] + 1)]
        if len(self.variable_names_) != X.shape[1]:
            raise ValueError(f"variable_names has {len(self.variable_names_)} names for "
                             f"{X.shape[1]} columns")
        rng = np.random.default_rng(self.random_state)
        allowed = self._allowed_operators()
        if "mul" in allowed:
            x_scale = _scale(np.sqrt(np.mean(X * X, axis=0)))  # (d,) > 0: no zero columns
            y_scale = float(_scale(np.sqrt(np.mean(y * y))))
        else:  # rescaling back to the user's units would multiply by constants
            x_scale, y_scale = np.ones(X.shape[1]), 1.0
        Xs, ys = X / x_scale, y / y_scale
        keep = np.arange(len(ys))
        if len(keep) > self.max_points:
            keep = np.sort(rng.choice(len(ys), self.max_points, replace=False))
        self.model_points_ = pack_points(Xs[keep], ys[keep], model.config.max_dims)
        proposer = self._proposer(model, tokenizer, self.model_points_, X.shape[1], prompt)
        found = search(proposer, Xs, ys, time_budget=self.time_budget,
                       max_rounds=self.max_rounds, num_candidates=self.num_candidates,
                       operators=allowed, random_state=rng, moves=self.moves,
                       sample_weight=weight, loss=self.loss_)
        # the front in rescaled units is the front in the user's (the loss scales by y_scale²)
        front = pareto_front(pd.DataFrame({"complexity": [e.complexity for e in found],
                                           "loss": [e.fit.loss for e in found],
                                           "candidate": found}))
        rows = [self._in_user_units(eq, X, y, weight, x_scale, y_scale, rng, allowed)
                for eq in front["candidate"]]
        rows = [row for row in rows if row is not None]
        if not rows:
            raise RuntimeError("no candidate formula could be evaluated on these data")
        self._set_results(pd.DataFrame(rows))
        self.fit_time_ = time.perf_counter() - start
        return self

    def _weights(self, y: np.ndarray, sample_weight: Any) -> np.ndarray | None:
        """The points' weights in the loss (None: all equal); sets ``loss_``."""
        if self.loss not in ("auto", "mse", "log"):
            raise ValueError(f"loss must be 'auto', 'mse' or 'log', got {self.loss!r}")
        positive = bool((y > 0).all())
        if self.loss == "log" and not positive:
            raise ValueError("loss='log' compares log(f) with log(y): y must be positive; use "
                             "loss='mse'")
        spans_decades = positive and y.max() >= 100 * y.min()
        self.loss_ = "log" if self.loss == "log" or (
            self.loss == "auto" and spans_decades) else "mse"
        return None if sample_weight is None else _check_sample_weight(
            sample_weight, y, ensure_non_negative=True)  # also rejects all zeros

    def _allowed_operators(self) -> set[str]:
        allowed = OPERATORS if self.operators is None else self.operators
        return {canonical_name(n) for n in allowed} - {canonical_name(n) for n in self.exclude}

    def _model(self) -> tuple[Any, Any]:
        if isinstance(self.model, tuple):
            return self.model
        return load_pretrained(self.model)

    def _proposer(self, model, tokenizer, points: np.ndarray, num_variables: int,
                  prompt: str | None):
        processor = ChatSRProcessor.for_model(tokenizer, model)
        options = dict(prompt=user_prompt(prompt), max_length=self.max_length,
                       num_variables=num_variables, operators=self.operators,
                       exclude=self.exclude)

        def proposer(prefix: tuple[str, ...], n: int, seed: int) -> list[tuple[str, ...]]:
            strategy = self.strategy if not prefix else "sample"
            try:
                candidates = propose(model, processor, points, strategy=strategy,
                                     num_candidates=n, prefix=prefix, seed=seed, **options)
            except ValueError:  # a prefix of a mutated parent that the grammar cannot finish
                if not prefix:
                    raise
                return []
            return [c.tokens for c in candidates]

        return proposer

    def _in_user_units(self, equation, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None,
                       x_scale: np.ndarray, y_scale: float, rng: np.random.Generator,
                       allowed: set[str]) -> dict[str, Any] | None:
        """A candidate for rescaled data, rewritten for the original units and re-polished;
        None if it cannot be evaluated or needs an operator that is not ``allowed``."""
        user = equation.expression
        if y_scale != 1 or (x_scale != 1).any():  # sympy would write 1.0*f as mul C f
            symbols = sympy.symbols(f"x1:{X.shape[1] + 1}", real=True)
            formula = user.to_sympy() * y_scale
            formula = formula.subs({s: s / k for s, k in zip(symbols, x_scale, strict=True)},
                                   simultaneous=True)
            try:
                user = Expression.from_sympy(formula)
            except (ExpressionError, ValueError):
                return None
        fit = self._polish(user, X, y, weight, rng)
        if not fit.success:
            return None
        fit = self._tidied(fit, X, y, weight, rng)
        if set(fit.expression.names) & set(OPERATORS) - allowed:
            return None
        loss = penalized_loss(fit.loss, fit.expression.n_constants, len(y))
        return {"complexity": fit.expression.complexity, "loss": loss, "mse": fit.mse,
                "r2": fit.r2,
                "equation": fit.expression.to_sympy(variable_names=self.variable_names_),
                "expression": fit.expression, "source": equation.source}

    def _polish(self, expression: Expression, X: np.ndarray, y: np.ndarray,
                weight: np.ndarray | None, rng: np.random.Generator) -> FitResult:
        """Refit the constants on the user's data, starting from those ``expression`` has."""
        initial = None if expression.constants is None else np.asarray(expression.constants)
        if initial is not None and not np.isfinite(initial).all():
            initial = None  # a constant overflowed in the conversion to the user's units
        with np.errstate(all="ignore"):
            return fit_constants(expression, X, y, restarts=2, random_state=rng, initial=initial,
                                 time_limit=None if self.time_budget is None else 0.2,
                                 sample_weight=weight, loss=self.loss_)

    def _tidied(self, fit: FitResult, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None,
                rng: np.random.Generator) -> FitResult:
        """The simplest rewrite of a fit (`chatsr.symbolic.simplify`) that is as good, or the fit.

        As good means a penalised loss (`chatsr.search.selection.penalized_loss`, the criterion
        ``equations_`` compares by) at most ``TIDY_TOLERANCE`` (refit noise) above the fit's:
        a rewrite with the same values (``rewrites``) or nearly (``linearizations``) must be
        as accurate, one with fewer constants (``prunings``) may lose what the criterion grants
        per constant.
        """
        n = len(y)
        spread = loss_spread(y, weight, self.loss_)

        def criterion(f: FitResult) -> float:
            return penalized_loss(f.loss + 1e-14 * spread, f.expression.n_constants, n)

        best, improved = fit, True
        limit = criterion(fit) * (1 + TIDY_TOLERANCE)
        while improved:
            improved = False
            formula = best.expression.to_sympy()
            for option in [*rewrites(formula, X), *linearizations(formula, X),
                           *prunings(formula)]:
                try:
                    candidate = Expression.from_sympy(option)
                except (ExpressionError, ValueError):
                    continue
                if (candidate.complexity, candidate.n_constants) >= (
                        best.expression.complexity, best.expression.n_constants):
                    continue  # neither shorter nor, as short, with fewer constants
                refit = self._polish(candidate, X, y, weight, rng)
                if criterion(refit) <= limit:
                    best, improved = refit, True
        return best

    def _set_results(self, table: pd.DataFrame) -> None:
        self.equations_ = pareto_front(table).reset_index(drop=True)
        self.best_ = select_best(self.equations_, self.model_selection)
        self.expression_ = self.best_["expression"]

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


def _scale(rms: np.ndarray | float) -> np.ndarray:
    """``rms`` where it is outside `ORDER_ONE`, else 1."""
    rms = np.asarray(rms, dtype=np.float64)
    return np.where((rms < ORDER_ONE[0]) | (rms > ORDER_ONE[1]), rms, 1.0)


def _column_names(X: Any, names: Sequence[str] | None) -> list[str] | None:
    if names is not None:
        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            raise ValueError(f"variable_names must be distinct, got {names}")
        return names
    if isinstance(X, pd.DataFrame):
        bad = label_columns(X)
        if bad:
            raise ValueError(f"column(s) {bad} of X are not numeric; convert or drop them")
        return [str(c) for c in X.columns]
    return None


def _check_problem(X: np.ndarray, y: np.ndarray, *, max_dims: int) -> None:
    """Errors that name the problem, for what validate_data lets through."""
    if X.shape[0] < MIN_POINTS:
        raise ValueError(f"got {X.shape[0]} sample(s); symbolic regression needs at least "
                         f"{MIN_POINTS}")
    if X.shape[1] > max_dims:
        raise ValueError(f"X has {X.shape[1]} columns but the model reads at most {max_dims}; "
                         f"select the relevant variables first")
    if np.ptp(y) == 0:
        raise ValueError(f"y is constant ({y[0]!r}): there is no formula to find")
    zero = [i + 1 for i in range(X.shape[1]) if not X[:, i].any()]
    if zero:
        raise ValueError(f"column(s) x{zero} of X are all zero; drop them")
