"""Tests of chatsr.model.grammar: every decoding strategy of generate yields valid, bounded
trees."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import (
    LogitsProcessorList,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from chatsr.model.grammar import PreorderGrammar, grammar_token_ids
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import OPERATORS, math_token, math_tokens

PAD, BOS, EOS = 0, 1, 2
TEXT_IDS = list(range(3, 10))  # stand-ins for text tokens, which the grammar must never emit
MATH = math_tokens(max_vars=3)
TOKEN_IDS = {token: i for i, token in enumerate(MATH, start=10)}
NAMES = {i: token for token, i in TOKEN_IDS.items()}
VOCAB_SIZE = 10 + len(MATH) + 5  # a few unused ids past the math tokens, as padded vocabularies
MAX_LENGTH = 7


@pytest.fixture(scope="module")
def model() -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=EOS,
                         pad_token_id=PAD)
    return Qwen2ForCausalLM(config).eval()


def grammar(**options) -> PreorderGrammar:
    arguments = dict(token_ids=TOKEN_IDS, eos_token_id=EOS, prompt_length=0,
                     max_length=MAX_LENGTH, num_variables=3)
    return PreorderGrammar(**(arguments | options))


def allowed(processor: PreorderGrammar, generated: list[str], prompt: int = 0) -> set[str]:
    """The tokens ``processor`` allows after the prompt ids ``3..`` and the named tokens."""
    ids = list(range(3, 3 + prompt)) + [TOKEN_IDS[token] for token in generated]
    scores = processor(torch.tensor([ids], dtype=torch.long), torch.zeros(1, VOCAB_SIZE))
    kept = torch.isfinite(scores[0]).nonzero()[:, 0].tolist()
    return {NAMES.get(i, "eos" if i == EOS else i) for i in kept}


def expressions(sequences: torch.Tensor, pad: int = PAD) -> list[Expression]:
    """Parse each generated row: a tree, then EOS, then nothing but padding."""
    parsed = []
    for row in sequences.tolist():
        assert EOS in row, f"no EOS: {row}"
        end = row.index(EOS)
        assert set(row[end:]) <= {EOS, pad}, f"tokens after EOS: {row}"
        assert 1 <= end <= MAX_LENGTH
        parsed.append(Expression.parse([NAMES[i] for i in row[:end]]))
    return parsed


def generate(model, processor, *, embeds: bool = False, **options) -> torch.Tensor:
    prompt = torch.tensor([[BOS, 4, 7, 5]])
    kwargs = dict(max_new_tokens=MAX_LENGTH + 1, eos_token_id=EOS, pad_token_id=PAD,
                  logits_processor=LogitsProcessorList([processor])) | options
    with torch.no_grad():
        if embeds:
            return model.generate(inputs_embeds=model.get_input_embeddings()(prompt),
                                  attention_mask=torch.ones_like(prompt), **kwargs)
        return model.generate(prompt, attention_mask=torch.ones_like(prompt),
                              **kwargs)[:, prompt.shape[1]:]


# generation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("embeds", [False, True])
def test_sampled_candidates_are_valid_trees(model, embeds):
    torch.manual_seed(1)
    processor = grammar(prompt_length=0 if embeds else 4)
    sequences = generate(model, processor, embeds=embeds, do_sample=True,
                         num_return_sequences=500, temperature=2.0, top_k=0)
    parsed = expressions(sequences)
    assert len(parsed) == 500
    lengths = {e.complexity for e in parsed}
    assert max(lengths) <= MAX_LENGTH
    assert len(lengths) > 3  # the grammar bounds the trees without forcing one size
    assert any(e.complexity == MAX_LENGTH for e in parsed)  # the budget is reached and kept


def test_sampling_when_padding_is_eos(model):
    torch.manual_seed(2)
    sequences = generate(model, grammar(prompt_length=4), do_sample=True,
                         num_return_sequences=100, pad_token_id=EOS)
    assert len(expressions(sequences, pad=EOS)) == 100


@pytest.mark.parametrize("options", [{}, {"num_beams": 4, "num_return_sequences": 4},
                                     {"num_beams": 4, "do_sample": True}])
@pytest.mark.parametrize("max_length", [1, 3, MAX_LENGTH])
def test_greedy_and_beam_search_give_valid_trees(model, options, max_length):
    torch.manual_seed(3)
    sequences = generate(model, grammar(prompt_length=4, max_length=max_length),
                         max_new_tokens=max_length + 1, **options)
    assert all(e.complexity <= max_length for e in expressions(sequences))


def test_batched_prompts_with_left_padding(model):
    prompt = torch.tensor([[PAD, PAD, BOS, 4], [BOS, 5, 6, 7]])
    mask = (prompt != PAD).long()
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=mask, max_new_tokens=MAX_LENGTH + 1,
                             eos_token_id=EOS, pad_token_id=PAD, num_beams=4,
                             logits_processor=LogitsProcessorList([grammar(prompt_length=4)]))
    assert len(expressions(out[:, 4:])) == 2


def test_restrictions_are_honoured(model):
    torch.manual_seed(4)
    processor = grammar(prompt_length=4, operators=["add", "mul", "sin", "exp", "+"],
                        exclude=["exp"], num_variables=2, allow_integers=False)
    sequences = generate(model, processor, do_sample=True, num_return_sequences=300)
    used = {name for e in expressions(sequences) for name in e.names}
    assert used <= {"add", "mul", "sin", "x1", "x2", "C"}
    assert {"add", "mul", "sin", "x1", "x2", "C"} <= used  # each allowed token is reachable
    generated = set(sequences.flatten().tolist())
    assert not generated & set(TEXT_IDS)


@pytest.mark.parametrize("require", [["sin"], ["sin", "mul", "exp"], ["div", "div"]])
def test_required_operators_are_in_every_tree(model, require):
    torch.manual_seed(5)
    processor = grammar(prompt_length=4, require=require, exclude=["cos"])
    sequences = generate(model, processor, do_sample=True, num_return_sequences=300,
                         temperature=2.0, top_k=0)
    parsed = expressions(sequences)
    assert len(parsed) == 300
    assert all(set(require) <= set(e.names) and "cos" not in e.names for e in parsed)
    if len(require) == 1:  # one requirement leaves the size free
        assert len({e.complexity for e in parsed}) > 1
    beams = generate(model, processor, num_beams=4, num_return_sequences=4)
    assert all(set(require) <= set(e.names) for e in expressions(beams))


def test_a_leaf_may_not_close_the_tree_while_a_required_operator_is_missing():
    add, sin, x1 = (math_token(n) for n in ["add", "sin", "x1"])
    processor = grammar(require=["sin"])
    assert allowed(processor, []) == UNARY | BINARY  # a leaf now would be the whole tree
    assert allowed(processor, [add, x1]) & (LEAVES | {"eos"}) == set()
    assert LEAVES <= allowed(processor, [add, sin])  # once written, any leaf may follow
    # two open slots and sin still owed after add add x1: 3 of the 4 tokens left, no binary
    assert allowed(processor, [add, add, x1]) & BINARY == set()


# the mask, token by token -----------------------------------------------------------------------
LEAVES = {math_token(n) for n in ["x1", "x2", "x3", "C"] + [f"const_{k}" for k in range(1, 6)]}
UNARY = {math_token(n) for n, op in OPERATORS.items() if op.arity == 1}
BINARY = {math_token(n) for n, op in OPERATORS.items() if op.arity == 2}


def test_empty_prefix_allows_every_math_token_but_no_eos():
    assert allowed(grammar(), []) == LEAVES | UNARY | BINARY
    assert allowed(grammar(max_length=1), []) == LEAVES
    assert allowed(grammar(max_length=2), []) == LEAVES | UNARY


def test_open_tree_within_budget():
    add, sin, x1 = (math_token(n) for n in ["add", "sin", "x1"])
    assert allowed(grammar(max_length=3), [add]) == LEAVES
    assert allowed(grammar(max_length=4), [add]) == LEAVES | UNARY
    assert allowed(grammar(max_length=4), [add, sin]) == LEAVES
    assert allowed(grammar(max_length=4, prompt_length=2), [add, x1], prompt=2) == LEAVES | UNARY


def test_closed_or_finished_tree_allows_only_eos():
    add, x1, c = (math_token(n) for n in ["add", "x1", "C"])
    assert allowed(grammar(), [x1]) == {"eos"}
    assert allowed(grammar(prompt_length=3), [add, x1, c], prompt=3) == {"eos"}
    processor = grammar()
    after_eos = torch.tensor([[TOKEN_IDS[x1], EOS, PAD], [TOKEN_IDS[x1], EOS, EOS]])
    scores = processor(after_eos, torch.zeros(2, VOCAB_SIZE))
    assert (torch.isfinite(scores).nonzero()[:, 1] == EOS).all()
    assert torch.isfinite(scores).sum() == 2


def test_prefix_outside_the_grammar_allows_only_eos():
    # beam search keeps -inf candidates as spare beams when few tokens are allowed
    assert allowed(grammar(), []) != {"eos"}
    text = torch.tensor([[TEXT_IDS[0]]])
    scores = grammar()(text, torch.zeros(1, VOCAB_SIZE))
    assert torch.isfinite(scores[0]).nonzero()[:, 0].tolist() == [EOS]


def test_batch_rows_are_independent_and_scores_are_not_modified_in_place():
    add, x1 = TOKEN_IDS[math_token("add")], TOKEN_IDS[math_token("x1")]
    scores = torch.randn(3, VOCAB_SIZE)
    before = scores.clone()
    out = grammar(max_length=3)(torch.tensor([[add, x1], [x1, EOS], [add, add]]), scores)
    assert torch.equal(scores, before)
    assert torch.isfinite(out[0]).sum() == len(LEAVES)
    assert torch.isfinite(out[1]).nonzero()[:, 0].tolist() == [EOS]
    assert torch.isfinite(out[2]).nonzero()[:, 0].tolist() == [EOS]  # over budget already
    finite = torch.isfinite(out)
    assert torch.equal(out[finite], scores[finite])


def test_unknown_math_tokens_of_token_ids_are_left_out():
    processor = grammar(operators=["add"], num_variables=1, allow_integers=False)
    assert processor.allowed_tokens == tuple(math_token(n) for n in ["add", "x1", "C"])


# tokenizer helper ------------------------------------------------------------------------------
@pytest.mark.parametrize("unk", [True, False])
def test_grammar_token_ids_reads_the_tokenizer(unk):
    vocab = {"<unk>": 0, "hello": 1} | {t: i for i, t in enumerate(math_tokens(3), start=2)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>" if unk else None))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend,
                                        unk_token="<unk>" if unk else None)
    ids = grammar_token_ids(tokenizer)
    assert ids == {t: vocab[t] for t in math_tokens(3)}
    assert math_token("x4") not in ids
    assert len(grammar_token_ids(tokenizer, max_vars=2)) == len(ids) - 1


# bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("options, argument", [
    ({"max_length": 0}, "max_length"),
    ({"max_length": 2.5}, "max_length"),
    ({"prompt_length": -1}, "prompt_length"),
    ({"eos_token_id": -1}, "eos_token_id"),
    ({"eos_token_id": 10}, "eos_token_id"),
    ({"num_variables": -1}, "num_variables"),
    ({"num_variables": 4}, "num_variables"),
    ({"operators": ["add", "frobnicate"]}, "operators"),
    ({"operators": ["x1"]}, "operators"),
    ({"operators": "add"}, "operators"),
    ({"exclude": ["nope"]}, "exclude"),
    ({"require": ["nope"]}, "require"),
    ({"require": ["sin"], "exclude": ["sin"]}, "require"),
    ({"require": ["sin"], "operators": ["add"]}, "require"),
    ({"require": ["add", "mul", "sub"], "max_length": 6}, "require"),
    ({"token_ids": {"hello": 3}}, "token_ids"),
    ({"token_ids": {"<|math_bogus|>": 3}}, "token_ids"),
    ({"token_ids": {math_token("x1"): -2}}, "token_ids"),
    ({"token_ids": {math_token("x1"): 3, math_token("C"): 3}}, "token_ids"),
    ({"token_ids": {math_token("add"): 3, math_token("x1"): 4}, "operators": ["add", "sin"],
      "num_variables": 1}, "operators"),
    ({"num_variables": 0, "allow_integers": False,
      "token_ids": {math_token(n): i for i, n in enumerate(["add", "x1"], start=3)}},
     "no leaf token"),
])
def test_bad_arguments_raise(options, argument):
    with pytest.raises(ValueError, match=argument):
        grammar(**options)


def test_bad_call_raises():
    with pytest.raises(ValueError, match="prompt_length"):
        grammar(prompt_length=5)(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, VOCAB_SIZE))
    with pytest.raises(ValueError, match="token_ids"):
        grammar()(torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 20))
