"""Tests of chatsr.model.decoding with a tiny random model: valid, bounded, seeded and scored
proposals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList

from chatsr.model.decoding import Candidate, propose, sequence_log_probs
from chatsr.model.grammar import PreorderGrammar, grammar_token_ids
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.processing import ChatSRProcessor, pack_points
from chatsr.model.tokenizer import load_tokenizer
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import OPERATORS, math_token

ADD, MUL, SIN, X1, X2, C = (math_token(n) for n in ("add", "mul", "sin", "x1", "x2", "C"))


@pytest.fixture(scope="module")
def setup() -> tuple[ChatSRForCausalLM, ChatSRProcessor, np.ndarray]:
    tok = load_tokenizer()
    torch.manual_seed(0)
    model = ChatSRForCausalLM(ChatSRConfig.tiny(tok)).eval()
    X = np.random.default_rng(0).uniform(-2.0, 2.0, size=(40, 2))
    points = pack_points(X, X[:, 0] * np.sin(X[:, 1]), max_dims=3)  # x3 is padding
    return model, ChatSRProcessor.for_model(tok, model), points


def check(candidates: list[Candidate], *, max_length: int, num_variables: int,
          operators: set[str] | None = None) -> None:
    """Every candidate parses, fits the grammar's limits and is unique; best first."""
    assert candidates
    assert len({c.tokens for c in candidates}) == len(candidates)
    log_probs = [c.log_prob for c in candidates]
    assert log_probs == sorted(log_probs, reverse=True)
    assert all(np.isfinite(log_probs)) and max(log_probs) < 0
    for candidate in candidates:
        expression = Expression.parse(candidate.tokens)
        assert list(candidate.tokens) == expression.to_tokens()  # <|math_...|> spelling
        assert 1 <= len(candidate.tokens) <= max_length
        assert all(v <= num_variables for v in expression.variables)
        if operators is not None:
            assert {n for n in expression.names if n in OPERATORS} <= operators, candidate.tokens


@pytest.mark.parametrize("options, operators", [
    (dict(max_length=8), None),  # num_variables defaults to 2, the non-zero x columns
    (dict(max_length=6, num_variables=1, operators=["add", "mul", "sin", "exp"],
          exclude=["exp"], temperature=2.0), {"add", "mul", "sin"}),
    (dict(max_length=5, num_variables=3, top_k=5), None),
])
def test_sampled_candidates_are_valid_bounded_trees(setup, options, operators):
    model, processor, points = setup
    candidates = propose(model, processor, points, num_candidates=350, batch_size=175, **options)
    check(candidates, max_length=options["max_length"],
          num_variables=options.get("num_variables", 2), operators=operators)
    assert all(c.source == "sample" for c in candidates)
    assert len(candidates) > 20  # a random model spreads its samples


def test_greedy_gives_one_deterministic_candidate(setup):
    model, processor, points = setup
    first = propose(model, processor, points, strategy="greedy", num_candidates=5)
    assert len(first) == 1 and first[0].source == "greedy"
    assert propose(model, processor, points, strategy="greedy") == first
    check(first, max_length=20, num_variables=2)


def test_beam_gives_distinct_candidates(setup):
    model, processor, points = setup
    candidates = propose(model, processor, points, strategy="beam", num_candidates=8)
    assert 1 <= len(candidates) <= 8 and all(c.source == "beam" for c in candidates)
    check(candidates, max_length=20, num_variables=2)


def test_beam_wider_than_the_trees_drops_impossible_beams(setup):
    model, processor, points = setup
    # max_length=1 and one variable leave 7 trees (x1, C, const_1..5) for 16 beams
    candidates = propose(model, processor, points, strategy="beam", num_candidates=16,
                         max_length=1, num_variables=1)
    assert 1 <= len(candidates) <= 7
    check(candidates, max_length=1, num_variables=1)


def test_seed_decides_the_samples_and_leaves_the_global_rng_alone(setup):
    model, processor, points = setup
    state = torch.random.get_rng_state()
    first = propose(model, processor, points, num_candidates=16, max_length=8, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert propose(model, processor, points, num_candidates=16, max_length=8, seed=3) == first
    assert propose(model, processor, points, num_candidates=16, max_length=8, seed=4) != first


def test_prefix_completions_start_with_the_prefix(setup):
    model, processor, points = setup
    prefix = [ADD, MUL, C]
    candidates = propose(model, processor, points, num_candidates=64, max_length=7,
                         prefix=["+", "mul", C])  # any spelling, returned as <|math_...|>
    check(candidates, max_length=7, num_variables=2)
    assert all(c.tokens[:3] == tuple(prefix) and c.source == "prefix" for c in candidates)
    assert any(len(c.tokens) > 5 for c in candidates)  # the budget counts the prefix: <= 7


@pytest.mark.parametrize("options, message", [
    (dict(prefix=[ADD, X1, X2]), "already a complete tree"),
    (dict(prefix=[SIN, X1, X2]), "goes on after a complete tree"),
    (dict(prefix=[ADD, "<|math_bogus|>"]), "'<|math_bogus|>', which is not a math token"),
    (dict(prefix=[ADD] * 5, max_length=4), "5 tokens, more than max_length=4"),
    (dict(prefix=[ADD, ADD], max_length=4), "needs at least 3 more tokens"),
    (dict(prefix=[ADD, "x3"], num_variables=2), "rule out"),
    (dict(prefix=[SIN], exclude=["sin"]), "rule out"),
    (dict(prefix="add"), "sequence of tokens"),
    (dict(strategy="top_p"), "strategy must be one of greedy, beam, sample, got 'top_p'"),
    (dict(num_candidates=0), "num_candidates must be an integer of at least 1, got 0"),
    (dict(batch_size=0), "batch_size"),
    (dict(temperature=0.0), "temperature must be positive"),
    (dict(top_k=0), "top_k must be None"),
    (dict(num_variables=4), "num_variables must be between 0 and 3"),
])
def test_bad_options_are_named(setup, options, message):
    model, processor, points = setup
    with pytest.raises(ValueError, match=message.replace("|", r"\|")):
        propose(model, processor, points, **options)


def test_log_prob_matches_generate_scores_and_teacher_forcing(setup):
    """Candidate.log_prob is the grammar-renormalised score of the model, as HF's greedy search
    reports it in output_scores (the grammar's processed logits); teacher forcing agrees."""
    model, processor, points = setup
    [greedy] = propose(model, processor, points, strategy="greedy", max_length=10)
    batch = processor([points])
    grammar = PreorderGrammar(token_ids=grammar_token_ids(processor.tokenizer),
                              eos_token_id=processor.tokenizer.eos_token_id,
                              prompt_length=batch["input_ids"].shape[1], max_length=10,
                              num_variables=2)
    out = model.generate(**batch, max_new_tokens=11, do_sample=False, output_scores=True,
                         return_dict_in_generate=True,
                         logits_processor=LogitsProcessorList([grammar]))
    chosen = out.sequences[0, batch["input_ids"].shape[1]:]  # the tree and EOS, no padding
    expected = sum(float(step[0].log_softmax(-1)[token]) for step, token in
                   zip(out.scores, chosen, strict=True))
    assert greedy.log_prob == pytest.approx(expected, abs=1e-4)

    sampled = propose(model, processor, points, num_candidates=40, max_length=10)
    trees = [greedy.tokens] + [c.tokens for c in sampled]
    scores = sequence_log_probs(model, processor, points, trees, max_length=10, batch_size=16)
    assert scores.shape == (len(trees),)
    np.testing.assert_allclose(scores, [greedy.log_prob] + [c.log_prob for c in sampled],
                               atol=1e-4)


def test_sequence_log_probs_rules_out_what_the_grammar_forbids(setup):
    model, processor, points = setup
    too_long = [MUL, X1, X2]
    scores = sequence_log_probs(model, processor, points, [too_long, ["x1"], ["sin", "x3"]],
                                max_length=2)
    assert scores[0] == -np.inf and np.isfinite(scores[1]) and scores[2] == -np.inf
    assert sequence_log_probs(model, processor, points, []).shape == (0,)
    with pytest.raises(ValueError):
        sequence_log_probs(model, processor, points, [[ADD, X1]])


def test_training_flag_is_restored(setup):
    model, processor, points = setup
    model.train()
    try:
        propose(model, processor, points, strategy="greedy")
        sequence_log_probs(model, processor, points, [[X1]])
        assert model.training
    finally:
        model.eval()
