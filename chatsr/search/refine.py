"""Search around the model: fit every proposal, then improve on the best within a time budget.

One-shot decoding gives a small model one chance per candidate. The search treats the model as
a policy instead and spends the rest of the budget near the best candidates found so far:

* **resampling from prefixes** (the model's own moves): cut a good candidate at the root of one
  of its subtrees and let the model write new completions of that prefix, so the part of the
  formula that already fits is kept and the rest is redrawn given the data; each completion's
  first subtree also replaces the one cut away, keeping the rest of the candidate too;
* **mutations** (no model needed): replace a subtree by a constant, a variable or a function
  of one (``x2 + (a long approximation of x1²)`` → ``x2 + x1**2``), remove a
  unary operator (``exp(-tanh(C*x1))`` → ``exp(-C*x1)``) or wrap a subtree in one
  (``C/x1`` → ``exp(C/x1)``), swap an operator for another of the same arity (``cos`` →
  ``sin``); and, once for each short formula on the accuracy/complexity front, the best
  products with and sums with a function of one variable (``C*x1`` → ``C*x1/x2``, ``x1*x2``
  → ``x1*x2*sin(x3)``), screened in closed form;
* **wrappers**: ``C * f + C``, ``C * f`` and ``C * f**C`` around a good formula ``f``: the
  units, offsets and power laws that real data so often need.

Every candidate's constants are fitted by BFGS (`chatsr.symbolic.fitting`), skeletons are
de-duplicated, and candidates are ranked by a reward that trades accuracy for size, as TPSR's
does: ``1 / (1 + sqrt(NMSE)) - COMPLEXITY_COST * complexity``. The search stops early when a
formula reproduces the data exactly.

>>> import numpy as np
>>> X = np.linspace(0.5, 3.0, 40).reshape(-1, 1)
>>> y = 2.0 * X[:, 0] ** 2 + 1.0
>>> proposals = lambda prefix, n, seed: [("<|math_pow2|>", "<|math_x1|>")]
>>> found = search(proposals, X, y, time_budget=2.0, num_candidates=1, random_state=0)
>>> found[0].expression.infix()
'2.0*x1**2 + 1.0'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import EXACT_NMSE, FitResult, fit_constants, loss_spread
from chatsr.symbolic.operators import (
    CONSTANT,
    OPERATORS,
    ExpressionError,
    arity,
    canonical_name,
    math_token,
)
from chatsr.symbolic.skeletons import skeleton_key

__all__ = ["MOVES", "Equation", "Proposer", "search"]

logger = logging.getLogger(__name__)

# Proposer(prefix, number, seed) -> token sequences; the prefix is () for fresh proposals
Proposer = Callable[[tuple[str, ...], int, int], Sequence[Sequence[str]]]
COMPLEXITY_COST = 0.002  # reward lost per node: 10 nodes cost as much as NMSE 1e-4 → 0
# A formula this accurate reproduces noise-free data to float precision and cannot be improved.
# Not 1 - 1e-10: long formulas with tiny constants (250*cosh(0.025*x1)**2 - 249...) reach that
# as Taylor approximations of x1**2, and stopping there would end the search for x1**2 itself.
EXACT_R2 = 1.0 - EXACT_NMSE
C_TOKEN = math_token(CONSTANT)
MOVES = ("prefix", "mutation", "wrapper")  # what a round may do; see the module docstring
# short formulas on the front are extended by every factor or term u(x_k): cheap and
# systematic where a random mutation would need luck (C*x1*x2 -> C*x1*x2*sin(x3))
EXTEND_COMPLEXITY = 9
EXTEND_KEEP = 6  # extensions of one formula fitted in full, of the best screened


@dataclass(frozen=True)
class Equation:
    """A fitted candidate: its skeleton (preorder tokens with ``C``), fit and origin."""

    skeleton: tuple[str, ...]
    fit: FitResult
    source: str  # "model", "prefix", "mutation" or "wrapper"
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


class _Pool:
    """Fitted candidates, keyed by canonical skeleton, with a shared deadline."""

    def __init__(self, X: np.ndarray, y: np.ndarray, deadline: float, fit_time: float | None,
                 rng: np.random.Generator, weight: np.ndarray | None, loss: str):
        self.X, self.y, self.deadline, self.fit_time, self.rng = X, y, deadline, fit_time, rng
        self.weight, self.loss = weight, loss
        self.scale = loss_spread(y, weight, loss)  # what makes a loss an NMSE
        self.equations: dict[str, Equation] = {}
        self.seen: set[str] = set()

    def add(self, tokens: Sequence[str], source: str) -> Equation | None:
        if time.perf_counter() > self.deadline:
            return None
        try:
            expr = Expression.parse(list(tokens))
            key = skeleton_key(expr)
        except (ExpressionError, ValueError):
            return None
        if key in self.seen:
            return None
        self.seen.add(key)
        if expr.n_constants > 12:  # BFGS over so many constants is slow and rarely right
            return None
        fit = fit_constants(expr, self.X, self.y, restarts=4, time_limit=self.fit_time,
                            random_state=self.rng, sample_weight=self.weight, loss=self.loss)
        if not fit.success:
            return None
        nmse = fit.loss / self.scale if self.scale > 0 else fit.loss
        equation = Equation(tuple(expr.to_tokens()), fit, source, nmse)
        self.equations[key] = equation
        return equation

    def ranked(self) -> list[Equation]:
        return sorted(self.equations.values(), key=lambda e: -e.reward)

    def simple_front(self) -> list[Equation]:
        """The accuracy/complexity front up to ``EXTEND_COMPLEXITY`` nodes, simplest first."""
        front, best = [], float("inf")
        for e in sorted(self.equations.values(), key=lambda e: (e.complexity, e.nmse)):
            if e.complexity <= EXTEND_COMPLEXITY and e.nmse < best:
                front.append(e)
                best = e.nmse
        return front

    def solved(self) -> bool:
        return any(e.fit.r2 >= EXACT_R2 for e in self.equations.values())


def _unary_operators(allowed: Collection[str]) -> list[str]:
    return sorted(n for n in allowed if n in OPERATORS and arity(n) == 1)


def _mutations(skeleton: tuple[str, ...], num_variables: int, rng: np.random.Generator,
               allowed: Collection[str], moves: Collection[str] = MOVES
               ) -> list[tuple[tuple[str, ...], str]]:
    spans = subtree_spans(skeleton)
    out = []
    if "wrapper" in moves and "mul" in allowed:
        out.append(((math_token("mul"), C_TOKEN, *skeleton), "wrapper"))
        if "add" in allowed:
            out.insert(0, ((math_token("add"), C_TOKEN, math_token("mul"), C_TOKEN, *skeleton),
                           "wrapper"))
        if "pow" in allowed:
            out.append(((math_token("mul"), C_TOKEN, math_token("pow"), *skeleton, C_TOKEN),
                        "wrapper"))
    if "mutation" not in moves:
        return out
    functions = _unary_operators(allowed)
    for start, end in [spans[i] for i in rng.permutation(len(spans))[:3]]:
        # a subtree becomes a leaf, or a unary function of a variable: x1 + (big) -> x1 + x2**2
        variable = math_token(f"x{rng.integers(num_variables) + 1}")
        leaf = (C_TOKEN,) if rng.random() < 0.5 else (variable,)
        out.append(((*skeleton[:start], *leaf, *skeleton[end:]), "mutation"))
        if functions:
            function = math_token(functions[rng.integers(len(functions))])
            out.append(((*skeleton[:start], function, variable, *skeleton[end:]), "mutation"))
    names = [canonical_name(t) for t in skeleton]
    unary = [i for i, name in enumerate(names) if arity(name) == 1]
    for i in [unary[j] for j in rng.permutation(len(unary))[:2]]:  # u(a) -> a
        out.append(((*skeleton[:i], *skeleton[i + 1:]), "mutation"))
    if functions:
        for start, _ in [spans[i] for i in rng.permutation(len(spans))[:2]]:  # a -> u(a)
            function = math_token(functions[rng.integers(len(functions))])
            out.append(((*skeleton[:start], function, *skeleton[start:]), "mutation"))
    operators = [i for i, name in enumerate(names) if arity(name) > 0]
    for i in [operators[j] for j in rng.permutation(len(operators))[:2]]:  # u(a) -> v(a)
        others = sorted(n for n in allowed if n in OPERATORS and n != names[i]
                        and arity(n) == arity(names[i]))
        if others:
            swapped = math_token(others[rng.integers(len(others))])
            out.append(((*skeleton[:i], swapped, *skeleton[i + 1:]), "mutation"))
    return out


def _factors(X: np.ndarray, allowed: Collection[str]) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """Every ``u(±x_k)`` (``u`` an allowed unary operator or none) with its values on ``X``."""
    variables = [(math_token(f"x{k}"),) for k in range(1, X.shape[1] + 1)]
    if "neg" in allowed:  # exp(-x2) is no scaled exp(x2)
        variables += [(math_token("neg"), *x) for x in variables]
    functions = [()] + [(math_token(n),) for n in _unary_operators(allowed) if n != "neg"]
    out = []
    with np.errstate(all="ignore"):
        for factor in [(*u, *x) for u in functions for x in variables]:
            out.append((factor, np.broadcast_to(Expression.parse(list(factor))(X), (len(X),))))
    return out


def _extensions(parent: Equation, X: np.ndarray, y: np.ndarray, allowed: Collection[str],
                factors: list[tuple[tuple[str, ...], np.ndarray]], keep: int = EXTEND_KEEP
                ) -> list[tuple[str, ...]]:
    """The ``keep`` most promising of ``f * u`` and ``f + C * u`` for the ``factors`` ``u``
    (`_factors`): ``C*x1*x2`` -> ``C*x1*x2*sin(x3)``, one new factor or term.

    Each is screened with ``f``'s constants as fitted and only the new factor's scale or term's
    coefficient solved by least squares (closed form), so ranking them all costs one
    evaluation each; only the best are then fitted in full.
    """
    if "mul" not in allowed:
        return []
    with np.errstate(all="ignore"):
        f = np.broadcast_to(parent.expression(X), y.shape)
        scored = []
        for factor, u in factors:
            ways = [("mul", f * u, y)] + ([("add", u, y - f)] if "add" in allowed else [])
            for joint, basis, target in ways:
                scale = (basis @ target) / (basis @ basis)
                error = float(np.sum(np.square(scale * basis - target)))
                if np.isfinite(error):
                    scored.append((error, joint, factor))
    scored.sort(key=lambda t: t[0])
    out = []
    for _, joint, factor in scored[:keep]:
        term = factor if joint == "mul" else (math_token("mul"), C_TOKEN, *factor)
        out.append((math_token(joint), *parent.skeleton, *term))
    return out


def _check_options(time_budget: float | None, max_rounds: int | None,
                   moves: Collection[str]) -> None:
    if time_budget is None and max_rounds is None:
        raise ValueError("give a time_budget (seconds), max_rounds, or both")
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget must be positive (seconds), got {time_budget!r}")
    if max_rounds is not None and (not isinstance(max_rounds, int) or max_rounds < 0):
        raise ValueError(f"max_rounds must be an integer >= 0, got {max_rounds!r}")
    unknown = set(moves) - set(MOVES)
    if unknown or not moves:
        raise ValueError(f"moves must be some of {MOVES}, got {tuple(moves)!r}")


def _extend_front(pool: _Pool, allowed: Collection[str],
                  factors: list[tuple[tuple[str, ...], np.ndarray]],
                  extended: set[tuple[str, ...]]) -> None:
    """Fit the `_extensions` of each short formula on the front not extended before."""
    for simple in [e for e in pool.simple_front() if e.skeleton not in extended]:
        extended.add(simple.skeleton)
        for tokens in _extensions(simple, pool.X, pool.y, allowed, factors):
            pool.add(tokens, "mutation")


def _resample(pool: _Pool, propose: Proposer, parent: Equation, resamples: int,
              rng: np.random.Generator) -> None:
    """Fit the model's completions of ``parent`` cut at the root of a random subtree (not the
    whole formula, unless it is a leaf)."""
    spans = subtree_spans(parent.skeleton)
    cut, end = spans[rng.integers(1, len(spans))] if len(spans) > 1 else spans[0]
    for tokens in propose(parent.skeleton[:cut], resamples, int(rng.integers(2**31))):
        pool.add(tokens, "prefix")
        # the same completion's first subtree in place of the parent's, the rest kept
        tokens = tuple(tokens)
        if len(tokens) > cut:
            new_end = subtree_spans(tokens[cut:])[0][1] + cut
            pool.add((*tokens[:new_end], *parent.skeleton[end:]), "prefix")


def search(propose: Proposer, X: np.ndarray, y: np.ndarray, *,
           time_budget: float | None = 10.0, max_rounds: int | None = None,
           num_candidates: int = 64, num_parents: int = 4, resamples: int = 8,
           operators: Collection[str] | None = None,
           random_state: int | np.random.Generator | None = None,
           sample_weight: np.ndarray | None = None, loss: str = "mse",
           moves: Collection[str] = MOVES) -> list[Equation]:
    """Fit the model's proposals for ``X``, ``y`` and refine the best until the budget ends.

    Parameters
    ----------
    propose
        ``propose(prefix, n, seed)`` returns up to ``n`` preorder token sequences starting with
        ``prefix`` (see `chatsr.model.decoding.propose`).
    time_budget
        Seconds for the whole search; the first round of proposals is always fitted.
    max_rounds
        Most rounds of refinement. With ``time_budget=None`` nothing depends on the clock
        (constant fits included), so a seed gives the same result on any machine.
    num_candidates
        Proposals in the first round.
    num_parents, resamples
        Each later round resamples ``resamples`` completions from a prefix of each of the
        ``num_parents`` best candidates, and mutates them.
    operators
        Operator names the mutations may add (None: all); the wrappers need mul (and add, pow).
    sample_weight, loss
        The weights of the points and the loss (``"mse"`` or ``"log"``) of every fit
        (`chatsr.symbolic.fitting.fit_constants`).
    moves
        What the rounds do, of ``"prefix"`` (the model completes prefixes), ``"mutation"``
        and ``"wrapper"``; fewer measure what each adds (`chatsr bench`'s ablations).

    Returns the fitted candidates, best reward first.
    """
    _check_options(time_budget, max_rounds, moves)
    rng = np.random.default_rng(random_state)
    start = time.perf_counter()
    fit_time = None if time_budget is None else max(0.05, time_budget / 50)
    pool = _Pool(X, y, deadline=float("inf"), fit_time=fit_time, rng=rng,
                 weight=sample_weight, loss=loss)
    # the first round is fitted whatever the budget
    for tokens in propose((), num_candidates, int(rng.integers(2**31))):
        pool.add(tokens, "model")
    pool.deadline = float("inf") if time_budget is None else start + time_budget
    max_rounds = float("inf") if max_rounds is None else max_rounds
    allowed = set(OPERATORS) if operators is None else {canonical_name(n) for n in operators}
    rounds, extended = 0, set()
    factors = _factors(X, allowed) if "mutation" in moves else []
    while (rounds < max_rounds and time.perf_counter() < pool.deadline and pool.equations
           and not pool.solved()):
        rounds += 1
        if "mutation" in moves:
            _extend_front(pool, allowed, factors, extended)
        for parent in pool.ranked()[:num_parents]:
            for tokens, source in _mutations(parent.skeleton, X.shape[1], rng, allowed, moves):
                pool.add(tokens, source)
            if "prefix" in moves:
                _resample(pool, propose, parent, resamples, rng)
    logger.info("search: %d candidates fitted in %d rounds, %.1f s", len(pool.equations),
                rounds, time.perf_counter() - start)
    return pool.ranked()

