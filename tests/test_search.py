"""The search around the model, with stand-in proposers (no network needed)."""

import time

import numpy as np
import pytest

from chatsr.search.refine import _extensions, _factors, _mutations, search, subtree_spans
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import math_token


def tokens(text: str) -> tuple[str, ...]:
    return tuple(Expression.parse(text).to_tokens())


def completed(prefix, leaf: str) -> tuple[str, ...]:
    """``prefix`` closed with ``leaf`` leaves: a stand-in model's completion."""
    out = list(prefix)
    while True:
        try:
            Expression.parse(out)
            return tuple(out)
        except ValueError:
            out.append(math_token(leaf))


def test_subtree_spans_cover_every_subtree():
    spans = subtree_spans(tokens("* C pow x1 C"))
    assert spans == [(0, 5), (1, 2), (2, 5), (3, 4), (4, 5)]


def test_wrapper_finds_offset_and_scale():
    X = np.linspace(-2, 2, 50).reshape(-1, 1)
    y = 3.0 * np.sin(X[:, 0]) - 0.5
    found = search(lambda prefix, n, seed: [tokens("sin x1")], X, y, time_budget=3,
                   num_candidates=1, random_state=0)
    assert found[0].fit.r2 > 1 - 1e-10
    assert found[0].source == "wrapper"


def test_prefix_resampling_uses_the_proposer_with_prefixes():
    X = np.random.default_rng(0).uniform(1, 3, size=(60, 2))
    y = X[:, 0] * X[:, 1]
    calls = []

    def proposer(prefix, n, seed):
        calls.append(prefix)
        if not prefix:
            return [tokens("* x1 x1")]
        return [completed(prefix, "x2")]  # the "model" completes any prefix with x2 leaves

    found = search(proposer, X, y, time_budget=5, num_candidates=1, random_state=1,
                   moves=("prefix",))
    assert any(calls[1:]), "later rounds resample from prefixes"
    assert found[0].fit.r2 > 1 - 1e-10
    assert Expression.parse(list(found[0].skeleton)).infix() in ("x1*x2", "x2*x1")


def test_budget_is_respected_and_results_are_ranked():
    X = np.random.default_rng(0).uniform(-1, 1, size=(40, 1))
    y = np.exp(X[:, 0]) + np.sin(3 * X[:, 0])  # hard for these proposals: never solved
    start = time.perf_counter()
    found = search(lambda prefix, n, seed: [tokens("x1"), tokens("cos x1"), (*prefix,
                   *tokens("x1"))] if not prefix or len(prefix) < 3 else [], X, y,
                   time_budget=1.0, num_candidates=3, random_state=0)
    assert time.perf_counter() - start < 2.5
    rewards = [e.reward for e in found]
    assert rewards == sorted(rewards, reverse=True)
    assert len({e.skeleton for e in found}) == len(found)


def test_invalid_proposals_are_dropped_not_fatal():
    X = np.linspace(0.1, 2, 30).reshape(-1, 1)
    y = np.log(X[:, 0])
    found = search(lambda prefix, n, seed: [("<|math_add|>",), ("nonsense",), tokens("log x1")],
                   X, y, time_budget=1, num_candidates=3, random_state=0)
    assert found[0].fit.r2 > 1 - 1e-10


def test_bad_budget():
    with pytest.raises(ValueError, match="time_budget must be positive"):
        search(lambda *a: [], np.ones((5, 1)), np.arange(5.0), time_budget=0)


def test_without_a_clock_a_seed_gives_one_result():
    X = np.linspace(0.5, 3.0, 30).reshape(-1, 1)
    y = np.exp(0.7 * X[:, 0]) + X[:, 0]

    def proposer(prefix, n, seed):
        return [tokens("add x1 x1"), tokens("exp mul C x1")]

    runs = [search(proposer, X, y, time_budget=None, max_rounds=3, num_candidates=2,
                   random_state=5) for _ in range(2)]
    assert [e.skeleton for e in runs[0]] == [e.skeleton for e in runs[1]]
    assert [e.fit.mse for e in runs[0]] == [e.fit.mse for e in runs[1]]
    with pytest.raises(ValueError, match="time_budget .*max_rounds"):
        search(proposer, X, y, time_budget=None)


def test_mutations_remove_and_insert_unary_operators_and_swap_operators():
    rng = np.random.default_rng(0)
    parent = tokens("* x2 exp neg tanh * C x1")
    children = {child for _ in range(200)
                for child, source in _mutations(parent, 2, rng, {"mul", "add", "exp", "neg",
                                                                 "tanh", "sin", "cos"})}
    assert tokens("* x2 exp neg * C x1") in children  # tanh removed
    assert tokens("* x2 exp tanh * C x1") in children  # neg removed
    assert tokens("* x2 sin neg tanh * C x1") in children  # exp swapped for sin
    assert tokens("+ x2 exp neg tanh * C x1") in children  # mul swapped for add
    assert tokens("* x2 exp neg tanh * C sin x1") in children  # x1 wrapped in sin
    assert tokens("* cos x1 exp neg tanh * C x1") in children  # x2 replaced by cos(x1)
    for child in children:  # every child is a formula, made of allowed operators only
        names = set(Expression.parse(list(child)).names)
        assert names <= {"mul", "add", "exp", "neg", "tanh", "sin", "cos", "x1", "x2", "C"}


def test_the_search_finds_a_formula_one_operator_away():
    X = np.random.default_rng(1).uniform(0.5, 3.0, size=(80, 3))
    y = X[:, 0] * X[:, 1] * np.sin(X[:, 2])
    found = search(lambda prefix, n, seed: [tokens("* * x1 x2 cos x3")], X, y,
                   time_budget=None, max_rounds=3, num_candidates=1, random_state=0,
                   operators=["mul", "add", "sin", "cos", "exp"], moves=("mutation",))
    assert found[0].fit.r2 > 1 - 1e-10 and found[0].source == "mutation"


def test_moves_limit_what_the_rounds_do():
    X = np.random.default_rng(0).uniform(1, 3, size=(60, 2))
    y = 2.0 * X[:, 0] * X[:, 1] + 1.0
    calls = []

    def proposer(prefix, n, seed):
        calls.append(prefix)
        return [tokens("* x1 x1")]

    found = search(proposer, X, y, time_budget=None, max_rounds=2, num_candidates=1,
                   random_state=0, moves=("wrapper",))
    assert {e.source for e in found} <= {"model", "wrapper"}
    assert calls == [()]  # no prefix completions were asked for
    with pytest.raises(ValueError, match="moves must be some of"):
        search(proposer, X, y, max_rounds=1, moves=("crossover",))


def test_a_resampled_subtree_replaces_the_one_cut_away():
    # truth x1**2 + x2; the parent has a bad first term and the right second one. The "model"
    # writes pow2 x1 for any open slot and then x1 leaves: only splicing its first subtree
    # into the parent gives the truth.
    X = np.random.default_rng(0).uniform(-2, 2, size=(60, 2))
    y = X[:, 0] ** 2 + X[:, 1]

    def proposer(prefix, n, seed):
        if not prefix:
            return [tokens("+ cos x1 x2")]
        return [completed((*prefix, math_token("pow2"), math_token("x1")), "x1")]

    found = search(proposer, X, y, time_budget=None, max_rounds=4, num_candidates=1,
                   random_state=0, moves=("prefix",))
    assert found[0].fit.r2 > 1 - 1e-14
    assert Expression.parse(list(found[0].skeleton)).infix() in ("x1**2 + x2", "x2 + x1**2")


def test_extensions_screen_every_factor_and_term_and_keep_the_best():
    X = np.random.default_rng(0).uniform(0.5, 3.0, size=(80, 3))
    y = X[:, 0] * X[:, 1] * np.sin(X[:, 2])
    parent = search(lambda prefix, n, seed: [tokens("* C * x1 x2")], X, y, max_rounds=0,
                    time_budget=None, num_candidates=1, random_state=0)[0]
    allowed = {"mul", "add", "sin", "exp", "cos"}
    children = _extensions(parent, X, y, allowed, _factors(X, allowed), keep=3)
    assert len(children) == 3
    assert children[0] == tokens("* * C * x1 x2 sin x3")  # exact, so screened first
    # no mul: nothing to join with
    assert _extensions(parent, X, y, {"sin"}, _factors(X, {"sin"})) == []
