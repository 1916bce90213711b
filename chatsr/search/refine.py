"""The search: the model's proposals, then Operon's genetic programming seeded and steered by
the model, until the budget ends.

One-shot decoding gives a small model one chance per candidate; a genetic-programming engine
evaluates tens of thousands of formulas a second but starts from nothing. The search joins them
(`chatsr.search.engine`):

* **seeding**: the model's first-round proposals, their constants fitted by BFGS, join the
  engine's random initial population, where they compete and breed;
* **steering**: how often the engine draws each operator follows what the model believes the
  formula holds: the share of its proposals with that operator, and its encoder's
  bag-of-tokens head where the model has one (the ``prior`` given by the caller);
* **resampling from prefixes** (the model's own moves), between epochs of the engine: cut one
  of the engine's best formulas at the root of one of its subtrees and let the model write new
  completions of that prefix, so the part that already fits is kept and the rest is redrawn
  given the data; each completion's first subtree also replaces the one cut away. What the
  model writes joins the population; when none of it reaches the engine's Pareto front, the
  model waits twice as long before its next turn (on a clock), so that a model which does
  not help costs the engine little time.

Every candidate of the model's is fitted by BFGS (`chatsr.symbolic.fitting`); the engine's
last Pareto front is refitted in double precision from its own constants. Skeletons are
de-duplicated, and candidates are ranked by a reward that trades accuracy for size, as
TPSR's does: ``1 / (1 + sqrt(NMSE)) - COMPLEXITY_COST * complexity``. The search stops early
when a formula reproduces the data exactly.

>>> import numpy as np
>>> X = np.linspace(0.5, 3.0, 40).reshape(-1, 1)
>>> y = 2.0 * X[:, 0] ** 2 + 1.0
>>> proposals = lambda prefix, n, seed: [("<|math_pow2|>", "<|math_x1|>")]
>>> found = search(proposals, X, y, time_budget=None, max_rounds=1, num_candidates=1,
...                random_state=0)
>>> found[0].expression.infix()
'2.0*x1**2 + 1.0'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from chatsr.search.engine import CORE_OPERATORS, ENGINE_OPERATORS, Engine, EngineSettings
from chatsr.search.enumeration import MAX_VARIABLES, short_formulas
from chatsr.search.tidy import polish
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import EXACT_NMSE, FitResult, fit_constants, loss_spread
from chatsr.symbolic.operators import OPERATORS, ExpressionError, arity, canonical_name
from chatsr.symbolic.skeletons import skeleton_key

__all__ = ["ENGINE_POINTS", "Equation", "Proposer", "operator_frequencies", "search",
           "subtree_spans"]

logger = logging.getLogger(__name__)

# Proposer(prefix, number, seed) -> token sequences; the prefix is () for fresh proposals
Proposer = Callable[[tuple[str, ...], int, int], Sequence[Sequence[str]]]
COMPLEXITY_COST = 0.002  # reward lost per node: 10 nodes cost as much as NMSE 1e-4 → 0
# A formula this accurate reproduces noise-free data to float precision and cannot be improved.
# Not 1 - 1e-10: long formulas with tiny constants (250*cosh(0.025*x1)**2 - 249...) reach that
# as Taylor approximations of x1**2, and stopping there would end the search for x1**2 itself.
EXACT_R2 = 1.0 - EXACT_NMSE
ENGINE_POINTS = 2000  # rows the engine evolves on (a random subset of more); fits use all
GENERATIONS_PER_ROUND = 10
MAX_FREQUENCY = 10  # an operator the model is sure of is drawn this many times as often
FULL_LIFT = 3.0  # believed 3 times as much as the average operator: MAX_FREQUENCY
JOIN_LIFT = 2.0  # an operator outside the engine's core joins at twice the average belief
MODEL_SHARE = 0.3  # most of a budgeted search's time the model's resampling may take


@dataclass(frozen=True)
class Equation:
    """A fitted candidate: its skeleton (preorder tokens with ``C``), fit and origin."""

    skeleton: tuple[str, ...]
    fit: FitResult
    source: str  # "model", "prefix", "units" (a seed), "enumeration" or "engine"
    nmse: float  # loss / var(y), both weighted: the accuracy the reward uses

    @property
    def expression(self) -> Expression:
        """The formula with its fitted constants."""
        return self.fit.expression

    @property
    def complexity(self) -> int:
        return self.fit.expression.complexity

    @property
    def reward(self) -> float:
        return 1.0 / (1.0 + float(np.sqrt(self.nmse))) - COMPLEXITY_COST * self.complexity


def subtree_spans(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of every subtree of a preorder sequence, in preorder.

    >>> subtree_spans(["add", "x1", "sin", "x2"])
    [(0, 4), (1, 2), (2, 4), (3, 4)]
    """
    arities = [arity(canonical_name(t)) for t in tokens]
    spans = []
    for start in range(len(tokens)):
        need, end = 1, start
        while need:
            need += arities[end] - 1
            end += 1
        spans.append((start, end))
    return spans


def _as_expression(tokens: Sequence[str] | Expression) -> Expression:
    """``tokens`` parsed (raising as `Expression.parse` does), or the expression as it is, its
    constants kept."""
    return tokens if isinstance(tokens, Expression) else Expression.parse(list(tokens))


class _Pool:
    """Fitted candidates, keyed by canonical skeleton, with a shared deadline."""

    def __init__(self, X: np.ndarray, y: np.ndarray, deadline: float, fit_time: float | None,
                 rng: np.random.Generator, weight: np.ndarray | None, loss: str):
        self.X, self.y, self.deadline, self.fit_time, self.rng = X, y, deadline, fit_time, rng
        self.weight, self.loss = weight, loss
        self.scale = loss_spread(y, weight, loss)  # what makes a loss an NMSE
        self.equations: dict[str, Equation] = {}
        self.seen: set[str] = set()

    def add(self, tokens: Sequence[str] | Expression, source: str) -> Equation | None:
        """Fit a new skeleton (tokens: BFGS from several starts; an `Expression` with
        constants: refitted from them) and keep it; None if seen, unfit or out of time."""
        if time.perf_counter() > self.deadline:
            return None
        try:
            expr = _as_expression(tokens)
            key = skeleton_key(expr)
        except (ExpressionError, ValueError):
            return None
        if key in self.seen:
            return None
        self.seen.add(key)
        if expr.n_constants > 12 and expr.constants is None:  # BFGS from scratch: hopeless
            return None
        if expr.constants is None:
            fit = fit_constants(expr, self.X, self.y, restarts=4, time_limit=self.fit_time,
                                random_state=self.rng, sample_weight=self.weight,
                                loss=self.loss)
        else:
            fit = polish(expr, self.X, self.y, random_state=self.rng, sample_weight=self.weight,
                         loss=self.loss, time_limit=self.fit_time)
        if not fit.success:
            return None
        nmse = fit.loss / self.scale if self.scale > 0 else fit.loss
        equation = Equation(tuple(expr.to_tokens()), fit, source, nmse)
        self.equations[key] = equation
        return equation

    def ranked(self) -> list[Equation]:
        return sorted(self.equations.values(), key=lambda e: -e.reward)

    def solved(self) -> bool:
        return any(e.fit.r2 >= EXACT_R2 for e in self.equations.values())



def _resample(propose: Proposer, parent: Sequence[str], resamples: int,
              rng: np.random.Generator) -> list[tuple[str, ...]]:
    """The model's completions of the skeleton ``parent`` cut at the root of a random subtree
    (not the whole formula, unless it is a leaf), and each completion's first subtree in place
    of the one cut away (the rest of ``parent`` kept)."""
    parent = tuple(parent)
    spans = subtree_spans(parent)
    cut, end = spans[rng.integers(1, len(spans))] if len(spans) > 1 else spans[0]
    out = []
    for tokens in propose(parent[:cut], resamples, int(rng.integers(2**31))):
        tokens = tuple(tokens)
        out.append(tokens)
        if len(tokens) > cut:
            new_end = subtree_spans(tokens[cut:])[0][1] + cut
            out.append((*tokens[:new_end], *parent[end:]))
    return out


def operator_frequencies(proposals: Sequence[Sequence[str]],
                         prior: Mapping[str, float] | None = None,
                         operators: Collection[str] = ENGINE_OPERATORS,
                         core: Collection[str] = CORE_OPERATORS) -> dict[str, int]:
    """How often the engine should draw each of ``operators`` (0: never, up to
    ``MAX_FREQUENCY``), by what the model believes of this formula compared with what it
    believes of every operator: the share of its ``proposals`` (token sequences) that hold the
    operator or its ``prior`` probability, whichever is higher, divided by the mean over the
    ``operators`` (the lift). Operators of the ``core`` get 1, more with a lift above 1 (all
    of ``MAX_FREQUENCY`` at ``FULL_LIFT``); the others join at ``JOIN_LIFT``. A model that
    believes the same of every formula steers nothing.

    >>> operator_frequencies([["sin", "x1"], ["add", "x1", "tanh", "x2"], ["mul", "x1", "x2"]],
    ...                      operators=["sin", "exp", "tanh", "atan", "mul"],
    ...                      core=["sin", "exp", "mul"])
    {'sin': 4, 'exp': 1, 'tanh': 0, 'atan': 0, 'mul': 4}
    """
    belief = dict.fromkeys(operators, 0.0)
    for tokens in proposals:
        for name in {canonical_name(t) for t in tokens} & belief.keys():
            belief[name] += 1 / len(proposals)
    for name, p in (prior or {}).items():
        if name in belief:
            belief[name] = max(belief[name], float(p))
    mean = float(np.mean(list(belief.values()))) if belief else 0.0
    weights = {}
    for name, p in belief.items():
        lift = p / mean if mean > 0 else 1.0
        strength = float(np.clip((lift - 1) / (FULL_LIFT - 1), 0, 1))
        joins = name in core or lift >= JOIN_LIFT
        weights[name] = 1 + round((MAX_FREQUENCY - 1) * strength) if joins else 0
    return weights


def _check_options(time_budget: float | None, max_rounds: int | None) -> None:
    if time_budget is None and max_rounds is None:
        raise ValueError("give a time_budget (seconds), max_rounds, or both")
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget must be positive (seconds), got {time_budget!r}")
    if max_rounds is not None and (not isinstance(max_rounds, int) or max_rounds < 0):
        raise ValueError(f"max_rounds must be an integer >= 0, got {max_rounds!r}")


def _expressions(token_lists: Sequence[Sequence[str] | Expression], origins: dict[str, str],
                 source: str) -> list[Expression]:
    """The sequences that parse (and the expressions), new skeletons only, each recorded in
    ``origins``."""
    out = []
    for tokens in token_lists:
        try:
            expression = _as_expression(tokens)
            key = skeleton_key(expression)
        except (ExpressionError, ValueError):
            continue
        if key not in origins:
            origins[key] = source
            out.append(expression)
    return out


def search(propose: Proposer | None, X: np.ndarray, y: np.ndarray, *,
           time_budget: float | None = 10.0, max_rounds: int | None = None,
           num_candidates: int = 64, num_parents: int = 2, resamples: int = 8,
           operators: Collection[str] | None = None, core: Collection[str] | None = None,
           prior: Mapping[str, float] | None = None,
           random_state: int | np.random.Generator | None = None,
           sample_weight: np.ndarray | None = None, loss: str = "mse",
           settings: EngineSettings | None = None,
           on_round: Callable[[int, float], None] | None = None,
           seeds: Sequence[Sequence[str] | Expression] = ()) -> list[Equation]:
    """Seed the engine with the model's proposals for ``X``, ``y`` and evolve them, the model
    resampling around the best between rounds, until the budget ends.

    Parameters
    ----------
    propose
        ``propose(prefix, n, seed)`` returns up to ``n`` preorder token sequences starting with
        ``prefix`` (see `chatsr.model.decoding.propose`); None: the engine alone.
    time_budget
        Seconds for the whole search; the first round of proposals is always made.
    max_rounds
        Most rounds of the engine (``GENERATIONS_PER_ROUND`` generations each, then the
        model's resampling); 0: no engine, the model's proposals fitted by BFGS only. With
        ``time_budget=None`` nothing depends on the clock (constant fits included), so a seed
        gives the same result on any machine (with ``settings.n_threads=1``).
    num_candidates
        Proposals in the first round.
    num_parents, resamples
        After a round, the model writes ``resamples`` completions of a prefix of each of the
        engine's ``num_parents`` most accurate formulas, while the model has taken less than
        ``MODEL_SHARE`` of the search's time; with a ``time_budget``, after every round while
        some of what it wrote reaches the engine's front, else after twice as many rounds
        each time (without one, after every round).
    operators, core
        Operator names the engine may use (None: all), and those it always uses (None:
        `chatsr.search.engine.CORE_OPERATORS`); the others join when the model believes in
        them (`operator_frequencies`).
    prior
        The model's probability that the formula holds each operator (its bag-of-tokens
        head), for `operator_frequencies`.
    sample_weight, loss
        The weights of the points and the loss (``"mse"`` or ``"log"``) of every fit
        (`chatsr.symbolic.fitting.fit_constants`); the engine itself fits the mean squared
        error, unweighted.
    settings
        The engine's (`chatsr.search.engine.EngineSettings`; None: its defaults).
    on_round
        Called after each round with its number and the best NMSE so far (progress).
    seeds
        Preorder formulas from elsewhere (dimensional analysis) that join the first round's
        proposals, as tokens or as an `Expression` whose constants start its fit, and are
        among the candidates returned, fitted, whatever the engine makes of them; those
        holding an operator outside ``operators`` are left out. On at most
        `chatsr.search.enumeration.MAX_VARIABLES` columns the best of every short formula
        (`chatsr.search.enumeration.short_formulas`) join them, source ``"enumeration"``.

    Returns the fitted candidates (the model's and the engine's last front, refitted), best
    reward first.
    """
    _check_options(time_budget, max_rounds)
    rng = np.random.default_rng(random_state)
    start = time.perf_counter()
    fit_time = None if time_budget is None else max(0.05, time_budget / 50)
    pool = _Pool(X, y, deadline=float("inf"), fit_time=fit_time, rng=rng,
                 weight=sample_weight, loss=loss)
    proposals = [] if propose is None else list(
        propose((), num_candidates, int(rng.integers(2**31))))
    model_time = time.perf_counter() - start
    allowed = set(OPERATORS) if operators is None else {canonical_name(n) for n in operators}
    seeds = [s for s in seeds if {canonical_name(t) for t in
                                  (s.names if isinstance(s, Expression) else s)}
             & OPERATORS.keys() <= allowed]
    if max_rounds == 0:
        for tokens in proposals:
            pool.add(tokens, "model")
        for tokens in seeds:
            pool.add(tokens, "units")
        return pool.ranked()
    max_rounds = float("inf") if max_rounds is None else max_rounds
    rows = np.arange(len(y))
    if len(rows) > ENGINE_POINTS:
        rows = np.sort(rng.choice(len(y), ENGINE_POINTS, replace=False))
    engine = Engine(X[rows], y[rows], operators=allowed, settings=settings,
                    frequencies=operator_frequencies(
                        proposals, prior, allowed & ENGINE_OPERATORS.keys(),
                        CORE_OPERATORS if core is None else core),
                    seed=int(rng.integers(2**31)))
    origins: dict[str, str] = {}  # skeleton -> who wrote it, for the results' source column
    seeded = [(e, "units") for e in _expressions(seeds, origins, "units")]
    if X.shape[1] <= MAX_VARIABLES:  # few columns: every short formula is tried
        seeded += [(e, "enumeration") for e in _expressions(
            short_formulas(X, y, operators=allowed, sample_weight=sample_weight, loss=loss),
            origins, "enumeration")]
    engine.add(_expressions(proposals, origins, "model") + [e for e, _ in seeded], fit=True)
    for expression, source in seeded:  # kept whatever the engine's selection does with them
        pool.add(expression, source)
    # after the seeds: a search given little time (on the groups, with a model's proposals
    # first) must still fit what dimensional analysis and the enumeration found
    pool.deadline = float("inf") if time_budget is None else start + time_budget
    rounds, per_generation, per_call, front = 0, 0.0, 0.0, []
    refits = []  # seconds of each refit of an engine formula
    # On a clock the model resamples after every round while what it writes reaches the
    # engine's front; each time nothing does, it waits twice as many rounds (its time goes
    # to the engine).
    gap, next_call, written = 1, 1, set()

    def left() -> float:  # seconds of engine time, less the refit of the last front
        return pool.deadline - time.perf_counter() - np.mean(refits or [0.0]) * len(front)

    while rounds < max_rounds and left() > 0 and not pool.solved():
        rounds += 1
        generations = GENERATIONS_PER_ROUND
        if time_budget is not None and per_generation > 0:  # end near the deadline
            generations = int(np.clip(left() / per_generation, 1, GENERATIONS_PER_ROUND))
        begin = time.perf_counter()
        engine.evolve(generations)
        per_generation = (time.perf_counter() - begin) / generations
        front = engine.front()
        if front:
            begin = time.perf_counter()
            _add_found(pool, front[-1], origins)  # the most accurate: is it exact yet?
            refits.append(time.perf_counter() - begin)
        if on_round is not None:
            on_round(rounds, min((e.nmse for e in pool.equations.values()), default=np.inf))
        if written and time_budget is not None:  # its last formulas had a round to show
            gap = 1 if written & _keys(front) else 2 * gap
            written, next_call = set(), rounds + gap
        now = time.perf_counter()
        if propose is None or rounds < next_call or (time_budget is not None and (
                model_time > MODEL_SHARE * (now - start) or per_call > left())):
            continue
        for parent in front[::-1][:num_parents]:
            completions = _expressions(_resample(propose, parent.to_tokens(), resamples, rng),
                                       origins, "prefix")
            written |= _keys(completions)
            engine.add(completions, fit=True)
        per_call = (time.perf_counter() - now) / max(1, min(num_parents, len(front)))
        model_time += time.perf_counter() - now
    pool.deadline = float("inf")  # what the engine found is worth its refit
    for expression in engine.front()[::-1]:  # the most accurate first
        _add_found(pool, expression, origins)
    logger.info("search: %d rounds (%d generations), %d candidates fitted, %.1f s (model "
                "%.1f s)", rounds, engine.generations, len(pool.equations),
                time.perf_counter() - start, model_time)
    return pool.ranked()


def _keys(expressions: Sequence[Expression]) -> set[str]:
    """The skeletons of ``expressions`` (`chatsr.symbolic.skeletons.skeleton_key`)."""
    keys = set()
    for expression in expressions:
        try:
            keys.add(skeleton_key(expression))
        except (ExpressionError, ValueError):
            continue
    return keys


def _add_found(pool: _Pool, expression: Expression, origins: Mapping[str, str]) -> None:
    """Refit one of the engine's formulas into ``pool``, its source the model's if the model
    wrote its skeleton."""
    try:
        source = origins.get(skeleton_key(expression), "engine")
    except (ExpressionError, ValueError):
        return
    pool.add(expression, source)
