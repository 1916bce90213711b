"""What `ChatSRRegressor.fit` does, as stages a notebook can call one by one.

1. `prepare`: check the data, choose the loss, rescale each column and the target whose root
   mean square is far from 1 (outside ``ORDER_ONE``) by it (no shift, so a formula's shape,
   its zero crossings and its domain stay the same; columns of order one stay as they are,
   so that ``sin(x3)`` needs no constant) and pick the points the model reads: a `Problem`.
2. `make_proposer`: the model as the search's proposer callable.
3. `chatsr.search.refine.search` on the rescaled data, then `shortlist`: the Pareto front of
   what it found (in rescaled units it is the front in the user's; the loss scales by
   ``y_scale²``).
4. For each formula of the shortlist: `to_user_units` (sympy), `chatsr.search.tidy.polish`
   (its constants refitted on the user's data), `chatsr.search.tidy.tidy` (the simplest
   rewrite as good) and `result_row` (its row of the results table, with the penalised loss).
5. `select`: the Pareto front of the rows and the row ``model_selection`` chooses.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(1, 5, size=(50, 2))
>>> problem = prepare(X, 100.0 * X[:, 0], max_dims=3, rng=rng)
>>> problem.loss, problem.y_scale > 1, problem.points.shape
('mse', True, (50, 4))
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sympy
from scipy.optimize import minimize
from sklearn.utils.validation import _check_sample_weight

from chatsr.data.datasets import label_columns
from chatsr.data.prompts import stated_facts
from chatsr.data.records import pack_points
from chatsr.search.refine import Equation, Proposer, subtree_spans
from chatsr.search.selection import ModelSelection, pareto_front, penalized_loss, select_best
from chatsr.search.tidy import cross_validated_loss
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import FitResult
from chatsr.symbolic.operators import CONSTANT, OPERATORS, ExpressionError, canonical_name
from chatsr.symbolic.units import (
    Dimension,
    dimensionless_groups,
    is_consistent,
    monomial_exponents,
    parse_unit,
    unit_sentence,
)

__all__ = ["BOX_POINTS", "MAX_MAGNITUDE", "MIN_POINTS", "ORDER_ONE", "Problem", "Reduction",
           "Units", "column_names", "consistent", "defined_on_box", "make_proposer",
           "model_prior", "numeric_target", "prepare", "proposals_table", "read_units",
           "reduce_by_units", "result_row", "select", "shortlist", "stated_operators",
           "to_user_units", "unit_monomials", "units_prompt"]

MIN_POINTS = 5
ORDER_ONE = (0.1, 10.0)  # a column whose root mean square lies here is left in its units
BOX_POINTS = 4096  # random points of the data's box on which a chosen formula must be finite
MAX_MAGNITUDE = 1e150  # larger values square past float64's range (1.8e308)


@dataclass(frozen=True)
class Problem:
    """The data as the search sees them and what brings its formulas back to the user's.

    ``X``, ``y``, ``weight`` (None: equal weights) are the user's; ``X_scaled`` is ``X`` divided
    by ``x_scale`` (one per column) and ``y_scaled`` is ``y / y_scale``; ``points`` are the rows
    the model reads (`chatsr.data.records.pack_points` of a subset of the rescaled data);
    ``loss`` is ``"mse"`` or ``"log"``; ``operators`` the canonical names allowed.
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    loss: str
    x_scale: np.ndarray
    y_scale: float
    X_scaled: np.ndarray
    y_scaled: np.ndarray
    points: np.ndarray
    variable_names: list[str]
    operators: frozenset[str]


def numeric_target(y: Any) -> Any:
    """``y`` unchanged, or a ``ValueError`` if it holds text (which scikit-learn's checks let
    through as strings).

    >>> numeric_target(["1.5", "x"])
    Traceback (most recent call last):
    ...
    ValueError: y must hold numbers, got text such as '1.5'
    """
    kind = np.asarray(y).dtype.kind
    if kind in "USO" and any(isinstance(v, str) for v in np.asarray(y, dtype=object).ravel()):
        first = next(v for v in np.asarray(y, dtype=object).ravel() if isinstance(v, str))
        raise ValueError(f"y must hold numbers, got text such as {first!r}")
    return y


def column_names(X: Any, variable_names: Sequence[str] | None = None) -> list[str] | None:
    """The variable names: ``variable_names``, else a DataFrame's columns, else None.

    Called on ``X`` as given, before it becomes an array, so that a column that is not numeric
    is named in the error.

    >>> column_names(pd.DataFrame({"a": [1.0], "b": [2.0]})), column_names([[1.0]], ["t"])
    (['a', 'b'], ['t'])
    """
    if isinstance(X, pd.DataFrame):  # dates would become numbers (microseconds) silently
        bad = label_columns(X)
        if bad:
            raise ValueError(f"column(s) {bad} of X are not numeric; convert or drop them")
    if variable_names is not None:
        names = [str(n) for n in variable_names]
        if len(set(names)) != len(names):
            raise ValueError(f"variable_names must be distinct, got {names}")
        return names
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"X has repeated column names {repeated}: each variable needs a "
                             f"name of its own")
        return names
    return None


def prepare(X: np.ndarray, y: np.ndarray, *, sample_weight: Any = None,
            variable_names: Sequence[str] | None = None, loss: str = "auto",
            operators: Collection[str] | None = None, exclude: Collection[str] = (),
            max_points: int = 200, max_dims: int, rng: np.random.Generator) -> Problem:
    """Check a problem (finite float arrays ``X`` (n, d), ``y`` (n,)) and rescale it.

    ``loss="auto"`` takes ``"log"`` when ``y`` is positive and spans at least two decades,
    else ``"mse"``; ``operators`` (None: all) less ``exclude`` are the operators allowed;
    without ``mul`` nothing is rescaled (the way back would multiply by constants). The model
    reads at most ``max_points`` rows (a subset drawn with ``rng``) of at most ``max_dims``
    columns. Raises ``ValueError`` naming what is wrong with the data.

    >>> X = np.arange(1.0, 11.0).reshape(-1, 1)
    >>> problem = prepare(X, X[:, 0] ** 3, max_points=4, max_dims=1,
    ...                   rng=np.random.default_rng(0))
    >>> problem.loss, problem.variable_names, problem.points.shape
    ('log', ['x1'], (4, 2))
    """
    loss, weight = _loss_and_weights(y, loss, sample_weight)
    _check_problem(X, y, max_dims=max_dims)
    names = list(variable_names or [f"x{i}" for i in range(1, X.shape[1] + 1)])
    if len(names) != X.shape[1]:
        raise ValueError(f"variable_names has {len(names)} names for {X.shape[1]} columns")
    allowed = OPERATORS if operators is None else operators
    allowed = frozenset({canonical_name(n) for n in allowed} - {canonical_name(n) for n in exclude})
    if "mul" in allowed:
        x_scale = _scale(_rms(X))  # (d,) > 0: no zero columns
        y_scale = float(_scale(_rms(y)))
    else:
        x_scale, y_scale = np.ones(X.shape[1]), 1.0
    X_scaled, y_scaled = X / x_scale, y / y_scale
    keep = np.arange(len(y_scaled))
    if len(keep) > max_points:
        keep = np.sort(rng.choice(len(y_scaled), max_points, replace=False))
    points = pack_points(X_scaled[keep], y_scaled[keep], max_dims)
    return Problem(X, y, weight, loss, x_scale, y_scale, X_scaled, y_scaled, points, names,
                   allowed)


def make_proposer(model: Any, tokenizer: Any, points: np.ndarray, *, num_variables: int,
                  strategy: str = "sample", max_length: int = 20, prompt: str | None = None,
                  operators: Collection[str] | None = None, exclude: Collection[str] = (),
                  require: Collection[str] = (),
                  record: list[tuple[tuple[str, ...], float]] | None = None) -> Proposer:
    """The model as `chatsr.search.refine.search`'s proposer for one point set.

    Fresh proposals are decoded with ``strategy``; completions of a prefix are sampled, and a
    prefix the grammar cannot finish (a parent's) gives none. ``prompt`` is the user's
    context (`chatsr.model.processing.user_prompt`); ``operators``, ``exclude``, ``require``
    and ``max_length`` constrain the grammar (`chatsr.model.decoding.propose`). Fresh proposals
    are appended to ``record`` with their log-probabilities.

    >>> from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
    >>> from chatsr.model.tokenizer import load_tokenizer
    >>> tokenizer = load_tokenizer()
    >>> model = ChatSRForCausalLM(ChatSRConfig.tiny(tokenizer)).eval()
    >>> from chatsr.model.processing import pack_points
    >>> points = pack_points(np.ones((5, 1)), np.arange(5.0), model.config.max_dims)
    >>> proposer = make_proposer(model, tokenizer, points, num_variables=1)
    >>> all(isinstance(tokens, tuple) for tokens in proposer((), 2, 0))
    True
    """
    from chatsr.model.decoding import propose
    from chatsr.model.processing import ChatSRProcessor, user_prompt

    processor = ChatSRProcessor.for_model(tokenizer, model)
    options = dict(prompt=user_prompt(prompt), max_length=max_length,
                   num_variables=num_variables, operators=operators, exclude=exclude,
                   require=require)

    def proposer(prefix: tuple[str, ...], n: int, seed: int) -> list[tuple[str, ...]]:
        try:
            candidates = propose(model, processor, points,
                                 strategy=strategy if not prefix else "sample",
                                 num_candidates=n, prefix=prefix, seed=seed, **options)
        except ValueError:
            if not prefix:
                raise
            return []
        if not prefix and record is not None:
            record.extend((c.tokens, c.log_prob) for c in candidates)
        return [c.tokens for c in candidates]

    return proposer


def model_prior(model: Any, tokenizer: Any, points: np.ndarray,
                operators: Collection[str]) -> dict[str, float] | None:
    """The model's probability that the formula holds each of ``operators``, from the data
    alone (`chatsr.model.decoding.operator_prior`), for the engine's operator frequencies;
    None for a model without a bag-of-tokens head.

    >>> from chatsr.model import modeling, tokenizer
    >>> words = tokenizer.load_tokenizer()
    >>> tiny = modeling.ChatSRForCausalLM(modeling.ChatSRConfig.tiny(words))  # no bag head
    >>> model_prior(tiny, words, np.ones((5, tiny.config.max_dims + 1)), ["sin"]) is None
    True
    """
    from chatsr.model.decoding import operator_prior
    from chatsr.model.processing import ChatSRProcessor

    processor = ChatSRProcessor.for_model(tokenizer, model)
    return operator_prior(model, processor, points, operators)


def defined_on_box(expression: Expression, X: np.ndarray, rng: np.random.Generator,
                   n: int = BOX_POINTS) -> bool:
    """Whether ``expression`` is finite on ``X`` and on ``n`` random points of the box that the
    columns of ``X`` span, with no denominator vanishing and no argument of ``sqrt``, ``log``,
    a fractional power, ``asin`` or ``acos`` leaving its domain there (`_leaves_domain`): a
    formula undefined inside the data's ranges (``log(x1 - 2)`` or ``1/(x1 - 2.05)`` on ``x1`` in
    [1, 3]) must not be chosen because the training points happen to miss the gap or the pole.

    >>> X = np.linspace(1.0, 3.0, 11).reshape(-1, 1)  # x1 = 2 is a point, 2.1 is not
    >>> rng = np.random.default_rng(0)
    >>> defined_on_box(Expression.parse("log x1"), X, rng)
    True
    >>> defined_on_box(Expression.parse("sqrt sin * const_3 x1"), X, rng)
    False
    >>> defined_on_box(Expression.parse("div x1 - x1 C").with_constants([2.05]), X, rng)
    False
    """
    lower, upper = X.min(axis=0), X.max(axis=0)
    box = rng.uniform(lower, upper, size=(n, X.shape[1]))
    with np.errstate(all="ignore"):
        return (all(np.isfinite(expression(points)).all() for points in (X, box))
                and not _leaves_domain(expression, np.vstack([X, box]), lower, upper))


def _itself(a: np.ndarray) -> np.ndarray:
    return a


def _within_one(a: np.ndarray) -> np.ndarray:
    return 1.0 - a * a


# The operand of an operator that must stay in a domain: (its position among the operands, its
# margin from its values, whether the margin may not reach zero from either side (a pole) rather
# than only not go below it)
_GUARDS = {"div": (1, _itself, True), "inv": (0, _itself, True), "tan": (0, np.cos, True),
           "sqrt": (0, _itself, False), "log": (0, _itself, False),
           "asin": (0, _within_one, False), "acos": (0, _within_one, False)}
DOMAIN_STARTS = 3  # local searches for a margin's zero, from the sampled points nearest it


def _leaves_domain(expression: Expression, points: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray) -> bool:
    """Whether a guarded operand (`_GUARDS`, and the base of a constant power: fractional, it
    may not go below zero; a negative integer, it may not reach zero) leaves its domain in the
    box ``[lower, upper]``: its margin changes sign on ``points`` (a pole between them, by
    continuity), or a bounded local search (scipy's L-BFGS-B) from the points of smallest margin
    finds it below zero, in a dip too narrow for random points to hit."""
    names, values = expression.names, list(expression.constants or [])
    spans = subtree_spans(names)

    def operand(i: int, k: int) -> Expression:
        start = spans[i + 1][1] if k else i + 1
        end = spans[start][1]
        first, count = names[:start].count(CONSTANT), names[start:end].count(CONSTANT)
        return Expression(names[start:end], values[first:first + count] if count else None)

    for i, name in enumerate(names):
        if name == "pow":
            exponent = operand(i, 1)
            if exponent.variables:  # a varying power: the finite check on the points only
                continue
            power = float(exponent(points[:1])[0])
            if power >= 0 and power.is_integer():
                continue
            guard = (0, _itself, power.is_integer())
        elif name in _GUARDS:
            guard = _GUARDS[name]
        else:
            continue
        k, margin_of, nonzero = guard
        guarded = operand(i, k)
        if not guarded.variables:  # a constant: the points tell all
            continue
        margins = margin_of(guarded(points))
        if nonzero and (margins < 0).any() and (margins > 0).any():
            return True
        sign = np.sign(np.median(margins)) if nonzero else 1.0
        if _dips_below_zero(guarded, margin_of, sign, points, margins, lower, upper):
            return True
    return False


def _dips_below_zero(guarded: Expression, margin_of: Callable[[np.ndarray], np.ndarray],
                     sign: float, points: np.ndarray, margins: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray) -> bool:
    """Whether ``sign * margin_of(guarded)`` (``margins`` on ``points``) goes below zero in the
    box, searched from the ``DOMAIN_STARTS`` points where it is smallest."""
    scale = float(np.max(np.abs(margins))) or 1.0

    def margin(z: np.ndarray) -> float:
        return sign * float(margin_of(guarded(z.reshape(1, -1)))[0]) / scale

    for start in points[np.argsort(sign * margins)[:DOMAIN_STARTS]]:
        found = minimize(margin, start, method="L-BFGS-B",
                         bounds=list(zip(lower, upper, strict=True)), options={"maxiter": 50})
        if np.isfinite(found.fun) and found.fun < -1e-9:
            return True
    return False


@dataclass(frozen=True)
class Units:
    """The units of the columns of ``X`` and of ``y`` as given (strings) and as dimensions."""

    x: list[str]
    y: str
    x_dims: list[Dimension]
    y_dim: Dimension


def read_units(X_units: Sequence[str] | None, y_units: str | None,
               n_columns: int) -> Units | None:
    """``fit``'s ``X_units`` (one unit string per column) and ``y_units``, read with pint
    (`chatsr.symbolic.units.parse_unit`); None when neither is given. Raises ``ValueError``
    naming the argument and the string it cannot read.

    >>> units = read_units(["m", "s"], "m/s^2", 2)
    >>> str(units.y_dim), [str(d) for d in units.x_dims]
    ('m/s^2', ['m', 's'])
    >>> read_units(["m"], None, 1)
    Traceback (most recent call last):
    ...
    ValueError: give both X_units and y_units (or neither), got only X_units
    """
    if X_units is None and y_units is None:
        return None
    if X_units is None or y_units is None:
        given = "X_units" if y_units is None else "y_units"
        raise ValueError(f"give both X_units and y_units (or neither), got only {given}")
    if isinstance(X_units, str) or len(X_units) != n_columns:
        count = "a string" if isinstance(X_units, str) else f"{len(X_units)} units"
        raise ValueError(f"X_units must list one unit per column of X ({n_columns}), got "
                         f"{count}: {X_units!r}")
    if not isinstance(y_units, str):
        raise TypeError(f"y_units must be a unit string such as 'm/s^2', got {y_units!r}")
    x_dims = []
    for i, unit in enumerate(X_units):
        try:
            x_dims.append(parse_unit(str(unit)))
        except ValueError as error:
            raise ValueError(f"X_units[{i}]: {error}") from None
    try:
        y_dim = parse_unit(y_units)
    except ValueError as error:
        raise ValueError(f"y_units: {error}") from None
    return Units([str(u) for u in X_units], y_units, x_dims, y_dim)


def units_prompt(prompt: str | None, units: Units | None) -> str | None:
    """``prompt`` followed by a sentence per unit, as the model was trained to read them
    (in its variable names ``x1, x2, …`` and ``y``).

    >>> units_prompt("It contains sin.", read_units(["m", "1"], "J", 2))
    'It contains sin. x1 is a length in m. x2 is dimensionless. y is an energy in J.'
    """
    if units is None:
        return prompt
    sentences = [unit_sentence(f"x{i}", u) for i, u in enumerate(units.x, 1)]
    sentences.append(unit_sentence("y", units.y))
    return " ".join([prompt, *sentences] if prompt else sentences)


def stated_operators(prompt: str | None, operators: Collection[str] | None,
                     exclude: Collection[str]) -> tuple[list[str], list[str]]:
    """The operators a user's ``prompt`` says the formula holds, and ``exclude`` with those it
    says the formula lacks (`chatsr.data.prompts.stated_facts`): what the model is told is also
    a rule for the search. Raises ``ValueError`` for an operator the prompt says the formula
    holds that ``operators``, ``exclude`` or the prompt itself rule out.

    >>> stated_operators("A pendulum. It contains sin. There is no exp in the formula.", None,
    ...                  ["tan"])
    (['sin'], ['tan', 'exp'])
    >>> stated_operators("It contains sin.", None, ["sin"])
    Traceback (most recent call last):
        ...
    ValueError: prompt says the formula contains sin, which operators or exclude rule out
    """
    facts = stated_facts(prompt) if prompt else []
    require = list(dict.fromkeys(n for f in facts if f.kind == "contains" for n in f.value))
    lacks = [n for f in facts if f.kind == "excludes" for n in f.value]
    excluded = list(dict.fromkeys([canonical_name(n) for n in exclude] + lacks))
    allowed = None if operators is None else {canonical_name(n) for n in operators}
    for name in require:
        if name in lacks:
            raise ValueError(f"prompt says the formula both contains and lacks {name}")
        if name in excluded or (allowed is not None and name not in allowed):
            raise ValueError(f"prompt says the formula contains {name}, which operators or "
                             f"exclude rule out")
    return require, excluded


def unit_monomials(X: np.ndarray, y: np.ndarray, units: Units, *, most: int = 8
                   ) -> list[tuple[str, ...]]:
    """Seeds from dimensional analysis: the ``most`` products of powers ``C*x1**a1*…`` that
    have ``y``'s dimension (`chatsr.symbolic.units.monomial_exponents`) and fit ``y`` best by
    least squares, as preorder tokens. A non-integer power of a column holding values <= 0 is
    left out.

    >>> X = np.random.default_rng(0).uniform(1, 2, size=(50, 3))
    >>> units = read_units(["C", "F/m", "m"], "N", 3)
    >>> unit_monomials(X, 0.08 * X[:, 0] ** 2 / (X[:, 1] * X[:, 2] ** 2), units)
    [('div', 'mul', 'C', 'pow2', 'x1', 'mul', 'x2', 'pow2', 'x3')]
    """
    exponents = np.array(monomial_exponents(units.x_dims, units.y_dim), dtype=float)
    if not len(exponents):
        return []
    exponents = exponents[_real_powers(X, exponents)]
    with np.errstate(all="ignore"):
        values = _powers(X, exponents)  # (N, M)
        scale = (values * y[:, None]).sum(axis=0) / (values * values).sum(axis=0)  # (M,)
        errors = ((y[:, None] - scale * values) ** 2).mean(axis=0)  # (M,)
    errors = np.where(np.isfinite(errors), errors, np.inf)
    c0 = sympy.Symbol("c0", real=True)
    symbols = sympy.symbols(f"x1:{X.shape[1] + 1}", real=True)
    return [Expression.from_sympy(c0 * _monomial(symbols, exponents[m])).names
            for m in np.argsort(errors, kind="stable")[:most] if np.isfinite(errors[m])]


@dataclass(frozen=True)
class Reduction:
    """A problem restated in its dimensionless groups (Buckingham π): ``problem``'s columns
    are the ``groups`` (products of powers of the original columns, in ``x1, x2, …``) and its
    target is ``y / scale``, so that a formula ``f`` for it is ``y = scale * f(groups)``."""

    problem: Problem
    scale: sympy.Expr
    groups: tuple[sympy.Expr, ...]

    def in_columns(self, equation: Equation) -> Expression | None:
        """A formula found for the groups, in the original columns, with the constants fitted
        for the groups as the starting point of its refit (rather than ``C = 1``); None if
        sympy's form cannot be parsed back."""
        expression = to_user_units(equation, self.problem)
        if expression is None:
            return None
        symbols = sympy.symbols(f"x1:{len(self.groups) + 1}", real=True)
        formula = expression.to_sympy().xreplace(dict(zip(symbols, self.groups, strict=True)))
        try:
            return Expression.from_sympy(self.scale * formula)
        except (ExpressionError, ValueError):
            return None


def reduce_by_units(X: np.ndarray, y: np.ndarray, units: Units, *, max_dims: int,
                    rng: np.random.Generator, **prepared: Any) -> Reduction | None:
    """The problem in its dimensionless groups (`chatsr.symbolic.units.dimensionless_groups`),
    prepared (`prepare`, with ``prepared``'s options) for a search of its own: fewer columns,
    and every formula found for them is consistent. None where the groups would not be fewer
    columns, a non-integer power would meet a column holding values <= 0, or the target in
    the groups is not finite or is constant.

    >>> X = np.random.default_rng(0).uniform(1, 2, size=(50, 4))
    >>> units = read_units(["C", "C", "F/m", "m"], "N", 4)
    >>> y = X[:, 0] * X[:, 1] / (X[:, 2] * X[:, 3] ** 2)
    >>> reduction = reduce_by_units(X, y, units, max_dims=4, rng=np.random.default_rng(0))
    >>> reduction.scale, reduction.groups
    (x1**2/(x3*x4**2), (x2/x1,))
    """
    solved = dimensionless_groups(units.x_dims, units.y_dim)
    if solved is None or not solved[1] or len(solved[1]) >= X.shape[1]:
        return None
    exponents = np.array([solved[0], *solved[1]], dtype=float)
    if not _real_powers(X, exponents).all():
        return None
    with np.errstate(all="ignore"):
        values = _powers(X, exponents)  # (N, 1 + groups)
        target = y / values[:, 0]
    if not (np.isfinite(values).all() and np.isfinite(target).all()):
        return None
    if np.ptp(target) <= 1e-9 * np.abs(target).max():  # y = C * scale: a unit monomial
        return None
    try:
        problem = prepare(values[:, 1:], target, max_dims=max_dims, rng=rng, **prepared)
    except ValueError:  # a group that is zero throughout
        return None
    symbols = sympy.symbols(f"x1:{X.shape[1] + 1}", real=True)
    return Reduction(problem, _monomial(symbols, exponents[0]),
                     tuple(_monomial(symbols, g) for g in exponents[1:]))


def _real_powers(X: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """(M,) whether each row of ``exponents`` (M, n) is real on ``X`` (N, n): a non-integer
    power needs a positive column."""
    whole = exponents == np.round(exponents)
    return (whole | (X > 0).all(axis=0)).all(axis=1)


def _powers(X: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """(N, M): the products of powers ``x**exponents[m]`` at each row of ``X`` (signs of odd
    integer powers kept; non-integer powers of positive columns only)."""
    whole = exponents == np.round(exponents)
    odd = whole & (exponents % 2 == 1)  # (M, n)
    signs = 1.0 - 2.0 * (((X < 0).astype(float) @ odd.T) % 2)  # (N, M)
    return signs * np.exp(np.log(np.abs(X)) @ exponents.T)


def _monomial(symbols: Sequence[sympy.Symbol], exponents: Sequence[float]) -> sympy.Expr:
    """``prod(symbols**exponents)`` with one root of the half-integer powers, sqrt(x1*x2/x3),
    not a product of roots (the same on the positive columns that non-integer powers need)."""
    powers = [(s, float(a)) for s, a in zip(symbols, exponents, strict=True)]
    whole = sympy.Mul(*(s ** int(a) for s, a in powers if a == round(a)))
    root = sympy.Mul(*(s ** round(2 * a) for s, a in powers if a != round(a)))
    return whole * (sympy.sqrt(root, evaluate=False) if root != 1 else 1)


def consistent(expression: Expression, units: Units) -> bool:
    """Whether ``expression`` (in ``x1, x2, …``) is dimensionally consistent with ``units``,
    its numeric constants dimensionless.

    >>> units = read_units(["m", "s"], "m/s", 2)
    >>> consistent(Expression.parse("div x1 x2"), units), consistent(Expression.parse(
    ...     "+ x1 x2"), units)
    (True, False)
    """
    return is_consistent(expression.names, units.x_dims, units.y_dim, expression.constants)


def proposals_table(record: Sequence[tuple[Sequence[str], float]],
                    variable_names: Sequence[str]) -> pd.DataFrame:
    """The model's first-round proposals (`make_proposer`'s ``record``): ``equation`` (a
    string in ``variable_names``, constants as ``c0, c1, …``), ``log_prob`` and ``tokens``,
    most probable first.

    >>> proposals_table([(("<|math_mul|>", "<|math_C|>", "<|math_x1|>"), -0.5)], ["t"])
      equation  log_prob        tokens
    0     c0*t      -0.5  [mul, C, x1]
    """
    rows = []
    for tokens, log_prob in record:
        expression = Expression.parse(list(tokens))
        rows.append({"equation": str(expression.to_sympy(variable_names=variable_names)),
                     "log_prob": float(log_prob), "tokens": list(expression.names)})
    table = pd.DataFrame(rows, columns=["equation", "log_prob", "tokens"])
    return table.sort_values("log_prob", ascending=False, ignore_index=True)


def shortlist(found: Sequence[Equation]) -> list[Equation]:
    """The search's candidates on the Pareto front of loss against complexity, simplest first.

    >>> from chatsr.search.refine import search
    >>> X = np.linspace(1.0, 2.0, 20).reshape(-1, 1)
    >>> proposals = [("<|math_exp|>", "<|math_x1|>"), ("<|math_add|>", "<|math_x1|>", "<|math_C|>"),
    ...              ("<|math_sin|>", "<|math_x1|>")]
    >>> found = search(lambda prefix, n, seed: proposals, X, 2.0 * X[:, 0] + 1,
    ...                time_budget=None, max_rounds=0, random_state=0)
    >>> [e.expression.infix() for e in shortlist(found)]
    ['exp(x1)', 'x1 + 2.5']
    """
    table = pd.DataFrame({"complexity": [e.complexity for e in found],
                          "loss": [e.fit.loss for e in found], "candidate": list(found)})
    return list(pareto_front(table)["candidate"])


def to_user_units(equation: Equation, problem: Problem) -> Expression | None:
    """A formula for ``problem``'s rescaled data, rewritten for the user's units (the constants
    as converted, to be polished); None if sympy's form cannot be parsed back.

    >>> import numpy as np
    >>> X = np.linspace(100.0, 200.0, 10).reshape(-1, 1)
    >>> problem = prepare(X, X[:, 0] ** 2, max_dims=1, rng=np.random.default_rng(0))
    >>> from chatsr.search.refine import search
    >>> found = search(lambda prefix, n, seed: [("<|math_pow2|>", "<|math_x1|>")],
    ...                problem.X_scaled, problem.y_scaled, time_budget=None, max_rounds=0,
    ...                random_state=0)
    >>> user = to_user_units(found[0], problem)
    >>> found[0].expression.infix(), user.infix()
    ('x1**2', '1.08*x1**2')
    >>> from chatsr.search.tidy import polish
    >>> polish(user, problem.X, problem.y).expression.infix()
    '1.0*x1**2'
    """
    expression = equation.expression
    if problem.y_scale == 1 and (problem.x_scale == 1).all():
        return expression  # sympy would write 1.0*f as mul C f
    symbols = sympy.symbols(f"x1:{problem.X.shape[1] + 1}", real=True)
    formula = expression.to_sympy() * problem.y_scale
    formula = formula.subs({s: s / k for s, k in zip(symbols, problem.x_scale, strict=True)},
                           simultaneous=True)
    try:
        return Expression.from_sympy(formula)
    except (ExpressionError, ValueError):
        return None


def result_row(fit: FitResult, source: str, problem: Problem,
               rng: np.random.Generator | None = None,
               time_limit: float | None = None) -> dict[str, Any] | None:
    """A formula's row of the results table: its loss penalised for its constants
    (`chatsr.search.selection.penalized_loss`) and cross-validated
    (`chatsr.search.tidy.cross_validated_loss`, refits bounded by ``time_limit``); None if it
    needs an operator ``problem`` does not allow (the way back from rescaled units may bring
    in ``mul``) or is not finite on the data's box (`defined_on_box`, with ``rng``).

    >>> import numpy as np
    >>> from chatsr.search.tidy import polish
    >>> X = np.linspace(1.0, 2.0, 20).reshape(-1, 1)
    >>> problem = prepare(X, 3.0 * X[:, 0], max_dims=1, rng=np.random.default_rng(0))
    >>> fit = polish(Expression.parse("* C x1"), problem.X, problem.y, random_state=0)
    >>> row = result_row(fit, "model", problem)
    >>> row["complexity"], row["expression"].infix(), row["r2"]
    (3, '3.0*x1', 1.0)
    >>> X = np.arange(1.0, 11.0).reshape(-1, 1)  # sqrt(cos(2 pi x1)) is 1 on integers only
    >>> problem = prepare(X, np.ones(10) + X[:, 0], max_dims=1, rng=np.random.default_rng(0))
    >>> gaps = Expression.parse("+ x1 sqrt cos * C x1").with_constants([2 * np.pi])
    >>> result_row(polish(gaps, X, problem.y), "model", problem) is None
    True
    """
    if set(fit.expression.names) & set(OPERATORS) - problem.operators:
        return None
    if not defined_on_box(fit.expression, problem.X, rng or np.random.default_rng(0)):
        return None
    loss = penalized_loss(fit.loss, fit.expression.n_constants, len(problem.y))
    cv_loss = cross_validated_loss(fit, problem.X, problem.y, random_state=0,
                                   sample_weight=problem.weight, loss=problem.loss,
                                   time_limit=time_limit)
    return {"complexity": fit.expression.complexity, "loss": loss, "cv_loss": cv_loss,
            "mse": fit.mse, "r2": fit.r2, "expression": fit.expression, "source": source}


def select(rows: Sequence[dict[str, Any]], model_selection: ModelSelection = "best"
           ) -> tuple[pd.DataFrame, pd.Series]:
    """The Pareto front of the rows (`result_row`), indexed from 0, and the row chosen by
    ``model_selection`` (`chatsr.search.selection.select_best`) on the cross-validated loss
    where the rows have one (`chatsr.search.tidy.CV_MIN_POINTS` points or more): "best" is
    then the simplest formula within 1.5x of the lowest held-out loss (a formula that fits
    the noise loses there). Raises ``RuntimeError`` when there are no rows.

    >>> front, best = select([{"complexity": 1, "loss": 2.0}, {"complexity": 3, "loss": 0.5},
    ...                       {"complexity": 5, "loss": 0.5}])
    >>> front["complexity"].tolist(), int(best["complexity"])
    ([1, 3], 3)
    """
    if not rows:
        raise RuntimeError("no formula could be fitted to these data: every candidate was "
                           "undefined or overflowed on them (are the values of y and the "
                           "columns of X within float range, and the operators allowed "
                           "enough?)")
    front = pareto_front(pd.DataFrame(rows)).reset_index(drop=True)
    held_out = "cv_loss" in front and bool(front["cv_loss"].notna().all())  # enough points
    return front, select_best(front, model_selection, by="cv_loss" if held_out else "loss",
                              simplest=held_out)


def _loss_and_weights(y: np.ndarray, loss: str, sample_weight: Any
                      ) -> tuple[str, np.ndarray | None]:
    """The loss ``loss="auto"`` means for ``y``, and the points' weights (None: all equal)."""
    if loss not in ("auto", "mse", "log"):
        raise ValueError(f"loss must be 'auto', 'mse' or 'log', got {loss!r}")
    positive = bool((y > 0).all())
    if loss == "log" and not positive:
        raise ValueError("loss='log' compares log(f) with log(y): y must be positive; use "
                         "loss='mse'")
    spans_decades = positive and y.max() >= 100 * y.min()
    chosen = "log" if loss == "log" or (loss == "auto" and spans_decades) else "mse"
    return chosen, None if sample_weight is None else _check_sample_weight(
        sample_weight, y, ensure_non_negative=True)  # also rejects all zeros


def _rms(values: np.ndarray) -> np.ndarray:
    """Root mean square along the first axis, without overflow or underflow (1e300, 1e-300)."""
    peak = np.max(np.abs(values), axis=0)
    safe = np.where(peak > 0, peak, 1.0)
    return safe * np.sqrt(np.mean((values / safe) ** 2, axis=0))


def _scale(rms: np.ndarray | float) -> np.ndarray:
    """``rms`` where it is outside `ORDER_ONE`, else 1."""
    rms = np.asarray(rms, dtype=np.float64)
    return np.where((rms < ORDER_ONE[0]) | (rms > ORDER_ONE[1]), rms, 1.0)


def _check_problem(X: np.ndarray, y: np.ndarray, *, max_dims: int) -> None:
    """Errors that name the problem, for what validate_data lets through."""
    for name, values in (("X", X), ("y", y)):
        peak = float(np.max(np.abs(values)))
        if peak > MAX_MAGNITUDE:
            raise ValueError(f"{name} reaches {peak:.3g}: squared errors of such values "
                             f"overflow double precision; divide {name} by a unit of its "
                             f"size (e.g. {peak:.0e}) first")
    peak = float(np.max(np.abs(y)))
    if 0 < peak < 1 / MAX_MAGNITUDE:
        raise ValueError(f"y is at most {peak:.3g}: its variance underflows double precision; "
                         f"multiply y by a unit of its size (e.g. {1 / peak:.0e}) first")
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
