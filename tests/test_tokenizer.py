import pytest
import torch
from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2Model,
)

from chatsr.model.processing import DEFAULT_PROMPT
from chatsr.model.tokenizer import (
    DATA,
    DEFAULT_TOKENIZER,
    EOS,
    PAD,
    build_tokenizer,
    extend_tokenizer,
    load_tokenizer,
)
from chatsr.symbolic.operators import math_tokens

CORPUS = ["x1 is a temperature in kelvin.", "y grows linearly with x2.",
          "Please derive the expression that fits these data."] * 5


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def tiny_tokenizer():
    return build_tokenizer(CORPUS, vocab_size=300)


def tiny_lm(kind: str, vocab_size: int):
    """A one-layer causal LM of the given family; GPT-2 ties its embeddings by default."""
    torch.manual_seed(0)
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(
            vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)).eval()
    if kind == "llama":
        return LlamaForCausalLM(LlamaConfig(
            vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)).eval()
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=16, n_layer=1, n_head=2,
                                      n_positions=64, bos_token_id=0, eos_token_id=0)).eval()


def test_shipped_tokenizer_loads_offline_with_text_tokens_only():
    tok = AutoTokenizer.from_pretrained(str(DEFAULT_TOKENIZER))
    assert (tok.eos_token, tok.pad_token) == (EOS, PAD)
    assert tok.eos_token_id != tok.pad_token_id
    vocab = tok.get_vocab()
    assert DATA not in vocab and "<|math_add|>" not in vocab  # extend_tokenizer adds those
    assert 300 < len(tok) <= 1024


def test_load_tokenizer_has_every_math_token_and_data_as_one_token(tokenizer):
    for token in [*math_tokens(), DATA]:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, token
        assert tokenizer.convert_ids_to_tokens(ids) == [token]
    # glued together, with text around them, they still split one token each
    tokens = math_tokens()
    encode = tokenizer.encode
    ids = encode("y = " + "".join(tokens) + " done", add_special_tokens=False)
    before = encode("y = ", add_special_tokens=False)
    assert ids == before + tokenizer.convert_tokens_to_ids(tokens) + \
        encode(" done", add_special_tokens=False)
    assert len(set(tokenizer.convert_tokens_to_ids(tokens))) == len(tokens)


def test_decode_skipping_special_tokens_keeps_math_and_drops_eos_pad_data(tokenizer):
    tokens = math_tokens()
    ids = tokenizer.convert_tokens_to_ids([DATA, *tokens, EOS, PAD, PAD])
    assert tokenizer.decode(ids, skip_special_tokens=True) == "".join(tokens)
    assert tokenizer.decode(ids) == DATA + "".join(tokens) + EOS + PAD + PAD
    assert tokenizer.pad_token_id in tokenizer.all_special_ids


@pytest.mark.parametrize("prompt", [
    DEFAULT_PROMPT,
    f"{DATA}\nx2 is a pressure in pascal. The formula contains sin.",
    "Température T in °C, y ∝ x1² (noisy)  twice  spaced\n\ttabbed",
])
def test_prompt_round_trips_through_encode_decode(tokenizer, prompt):
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == prompt
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids


@pytest.mark.parametrize("vocab_size", [0, 259])
def test_build_tokenizer_rejects_a_vocabulary_smaller_than_the_bytes(vocab_size):
    with pytest.raises(ValueError, match=f"at least 260.*got {vocab_size}"):
        build_tokenizer(CORPUS, vocab_size=vocab_size)


def test_build_tokenizer_saves_a_directory_autotokenizer_loads(tmp_path):
    tok = build_tokenizer(CORPUS, vocab_size=300, out_dir=tmp_path)
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    text = "x2 is a temperature in kelvin."
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert (again.eos_token, again.pad_token) == (EOS, PAD)


@pytest.mark.parametrize("kind", ["qwen2", "gpt2", "llama"])
def test_extend_tokenizer_resizes_unties_and_mean_initialises(kind):
    tok = tiny_tokenizer()
    old_size = len(tok)
    lm = tiny_lm(kind, old_size)
    tied = lm.get_output_embeddings().weight is lm.get_input_embeddings().weight
    assert tied == (kind != "llama")
    old_in = lm.get_input_embeddings().weight.detach().clone()
    old_out = lm.get_output_embeddings().weight.detach().clone()
    ids = torch.tensor([tok("x1 is a temperature")["input_ids"]])
    old_logits = lm(input_ids=ids).logits

    added = extend_tokenizer(tok, lm)

    assert added == len(math_tokens()) + 1 == len(tok) - old_size
    w_in, w_out = lm.get_input_embeddings().weight, lm.get_output_embeddings().weight
    assert w_in.shape == w_out.shape == (len(tok), old_in.shape[1])
    assert lm.config.tie_word_embeddings is False
    assert lm.config.get_text_config().tie_word_embeddings is False
    assert w_in is not w_out and w_in.data_ptr() != w_out.data_ptr()
    assert torch.equal(w_in[:old_size], old_in) and torch.equal(w_out[:old_size], old_out)
    for new, old in ((w_in[old_size:], old_in), (w_out[old_size:], old_out)):
        assert torch.isfinite(new).all()
        # mean resizing: every new row is within a small fraction of an old row's spread
        assert (new - old.mean(dim=0)).norm(dim=1).max() < 0.1 * old.std(dim=0).norm()
    # the old vocabulary's logits are what they were: nothing but new rows changed
    assert torch.allclose(lm(input_ids=ids).logits[..., :old_size], old_logits, atol=1e-6)
    # untied: writing to the input embedding leaves the output embedding alone
    with torch.no_grad():
        w_in[0] += 1.0
    assert torch.equal(w_out[0], old_out[0])


def test_extend_tokenizer_twice_changes_nothing():
    tok = tiny_tokenizer()
    lm = tiny_lm("qwen2", len(tok))
    extend_tokenizer(tok, lm)
    size = len(tok)
    w_in = lm.get_input_embeddings().weight.detach().clone()
    w_out = lm.get_output_embeddings().weight.detach().clone()

    assert extend_tokenizer(tok, lm) == 0

    assert len(tok) == size
    assert torch.equal(lm.get_input_embeddings().weight, w_in)
    assert torch.equal(lm.get_output_embeddings().weight, w_out)
    assert lm.config.tie_word_embeddings is False


@pytest.mark.parametrize("spare_rows", [64, len(math_tokens()) + 1])
def test_extend_tokenizer_fits_a_padded_vocabulary(spare_rows):
    # Qwen2.5 checkpoints have more embedding rows (151936) than tokens (151665): the new tokens'
    # ids land on rows that already exist, and those must be mean-initialised all the same
    tok = tiny_tokenizer()
    old_size = len(tok)
    lm = tiny_lm("qwen2", old_size + spare_rows)
    old_in = lm.get_input_embeddings().weight.detach().clone()

    extend_tokenizer(tok, lm)

    w_in = lm.get_input_embeddings().weight.detach()
    assert w_in.shape[0] == lm.get_output_embeddings().weight.shape[0] == len(tok)
    assert torch.equal(w_in[:old_size], old_in[:old_size])
    spread = old_in[:old_size].std(dim=0).norm()
    assert (w_in[old_size:] - old_in[:old_size].mean(dim=0)).norm(dim=1).max() < 0.1 * spread


def test_extend_tokenizer_pads_with_eos_when_there_is_no_pad_token():
    tok = tiny_tokenizer()
    tok.pad_token = None
    assert tok.pad_token_id is None
    extend_tokenizer(tok)
    assert tok.pad_token == EOS and tok.pad_token_id == tok.eos_token_id


def test_extend_tokenizer_adds_more_variables_on_request():
    tok = tiny_tokenizer()
    assert extend_tokenizer(tok, max_vars=12) == len(math_tokens(12)) + 1
    for token in ("<|math_x11|>", "<|math_x12|>"):
        assert tok.convert_ids_to_tokens(tok(token, add_special_tokens=False)["input_ids"]) == \
            [token]
    assert "<|math_x13|>" not in tok.get_vocab()
    # a later default call adds nothing and removes nothing
    assert extend_tokenizer(tok) == 0 and "<|math_x12|>" in tok.get_vocab()


def test_extend_tokenizer_needs_a_causal_lm():
    tok = tiny_tokenizer()
    base = Qwen2Model(Qwen2Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                  num_hidden_layers=1, num_attention_heads=2,
                                  num_key_value_heads=1))
    with pytest.raises(ValueError, match="Qwen2Model has no output embeddings"):
        extend_tokenizer(tok, base)
