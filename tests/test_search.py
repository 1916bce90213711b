"""The search around the model, with stand-in proposers (no network needed)."""

import numpy as np
import pytest

from chatsr.search.engine import ENGINE_OPERATORS, EngineSettings
from chatsr.search.refine import operator_frequencies, search, subtree_spans
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


def test_the_engine_finds_offset_and_scale_around_a_proposal():
    X = np.linspace(-2, 2, 50).reshape(-1, 1)
    y = 3.0 * np.sin(X[:, 0]) - 0.5
    found = search(lambda prefix, n, seed: [tokens("sin x1")], X, y, time_budget=None,
                   max_rounds=2, num_candidates=1, random_state=0)
    assert found[0].fit.r2 > 1 - 1e-10
    assert Expression.parse(list(found[0].skeleton)).names.count("sin") == 1


def test_prefix_resampling_uses_the_proposer_with_prefixes():
    # three columns (x3 unused): on two, the enumeration of short formulas would solve it first
    X = np.random.default_rng(0).uniform(1, 3, size=(60, 3))
    y = X[:, 0] * X[:, 1]
    calls = []

    def proposer(prefix, n, seed):
        calls.append(prefix)
        if not prefix:
            return [tokens("* x1 x1")]
        return [completed(prefix, "x2")]  # the "model" completes any prefix with x2 leaves

    found = search(proposer, X, y, time_budget=None, max_rounds=2, num_candidates=1,
                   random_state=1)
    assert any(calls[1:]), "later rounds resample from prefixes"
    assert found[0].fit.r2 > 1 - 1e-10
    assert set(found[0].expression.names) <= {"mul", "C", "x1", "x2"}


def test_results_are_ranked_and_distinct():
    X = np.random.default_rng(0).uniform(-1, 1, size=(40, 1))
    y = np.exp(X[:, 0]) + np.sin(3 * X[:, 0])
    found = search(lambda prefix, n, seed: [tokens("x1"), tokens("cos x1")], X, y,
                   time_budget=None, max_rounds=2, num_candidates=2, random_state=0)
    rewards = [e.reward for e in found]
    assert rewards == sorted(rewards, reverse=True)
    assert len({e.skeleton for e in found}) == len(found)
    assert {e.source for e in found} <= {"model", "prefix", "engine", "enumeration"}


def test_one_shot_fits_the_proposals_only():
    X = np.linspace(0.5, 2.0, 30).reshape(-1, 1)
    y = 2.0 * X[:, 0]
    found = search(lambda prefix, n, seed: [tokens("* C x1"), tokens("exp x1")], X, y,
                   time_budget=None, max_rounds=0, num_candidates=2, random_state=0)
    assert [e.source for e in found] == ["model", "model"]
    assert found[0].expression.infix() == "2.0*x1"


def test_without_a_model_the_engine_searches_alone():
    X = np.random.default_rng(2).uniform(1, 3, size=(60, 2))
    y = X[:, 0] * X[:, 1] + X[:, 0]
    found = search(None, X, y, time_budget=None, max_rounds=6, random_state=0)
    assert found and {e.source for e in found} == {"engine", "enumeration"}
    assert found[0].fit.r2 > 0.999


def test_a_seed_comes_back_fitted_even_where_the_engine_cannot_hold_it():
    X = np.random.default_rng(4).uniform(1, 3, size=(60, 2))
    y = X[:, 0] * np.exp(-2.5 * X[:, 1] / X[:, 0])
    law = Expression.parse("mul x1 exp mul C div x2 x1").with_constants([-1.0])
    # five nodes at most: the engine cannot take the seven-node law into its population
    found = search(None, X, y, time_budget=None, max_rounds=1, random_state=0,
                   settings=EngineSettings(max_length=5), seeds=[law])
    assert found[0].source == "units" and found[0].fit.r2 > 1 - 1e-12


def test_the_model_steers_the_operators_the_engine_draws():
    proposals = [tokens("tanh x1"), tokens("+ x1 tanh x2"), tokens("* x1 x2")]
    weights = operator_frequencies(proposals, {"exp": 0.9})
    assert weights["tanh"] > weights["add"] >= 1  # the model believes in tanh
    assert weights["exp"] == 10  # the prior says exp, the proposals do not
    assert weights["atan"] == 0 and weights["sin"] == 1  # outside the core / in it
    flat = operator_frequencies([], dict.fromkeys(ENGINE_OPERATORS, 0.7))
    assert {flat[n] for n in ("sin", "exp")} == {1} and flat["atan"] == 0  # no lift: no steer


def test_invalid_proposals_are_dropped_not_fatal():
    X = np.linspace(0.1, 2, 30).reshape(-1, 1)
    y = np.log(X[:, 0])
    found = search(lambda prefix, n, seed: [("<|math_add|>",), ("nonsense",), tokens("log x1")],
                   X, y, time_budget=None, max_rounds=0, num_candidates=3, random_state=0)
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
                   random_state=0, operators=["add", "cos"])  # the engine cannot square
    assert found[0].fit.r2 > 1 - 1e-14
    assert "pow2" in found[0].expression.names
