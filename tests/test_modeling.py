import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

from chatsr.data.prompts import DATA
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.processing import IGNORE_INDEX, ChatSRProcessor
from chatsr.model.set_encoder import SetEncoderConfig
from chatsr.model.tokenizer import build_tokenizer, load_tokenizer
from chatsr.symbolic.operators import math_tokens

PROMPTS = [f"{DATA}\nFit y.", f"{DATA}\nx1 is a temperature in kelvin. Fit y."]
ANSWERS = [["add", "x1", "mul", "C", "x2"], ["sin", "x1"]]
TINY_ENCODER = SetEncoderConfig(max_dims=3, d_model=16, num_heads=2, num_inducing=4,
                                num_isab=1, num_outputs=4)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return ChatSRForCausalLM(ChatSRConfig.tiny(tokenizer)).eval()


@pytest.fixture(scope="module")
def processor(tokenizer, model):
    return ChatSRProcessor.for_model(tokenizer, model)


def point_sets(seed: int = 0, sizes=(7, 12)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 4)).astype(np.float32) for n in sizes]


def train_batch(processor, seed: int = 0):
    return processor(point_sets(seed), PROMPTS, ANSWERS)


def prompt_batch(processor, seed: int = 0):
    return processor(point_sets(seed), PROMPTS, padding_side="left")


def test_save_and_load_round_trip_gives_identical_logits(model, processor, tmp_path):
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))

    config = AutoConfig.from_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()

    assert type(config) is ChatSRConfig and type(loaded) is ChatSRForCausalLM
    assert config.data_token_id == model.config.data_token_id
    assert config.num_data_tokens == model.config.num_data_tokens == 4
    assert config.encoder == model.config.encoder
    assert config.text_config.pad_token_id == model.config.text_config.pad_token_id
    batch = train_batch(processor)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_loss_is_cross_entropy_over_the_labelled_tokens_only(model, processor):
    batch = train_batch(processor)
    out = model(**batch)

    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]  # position t predicts t + 1
    keep = labels != IGNORE_INDEX
    assert 0 < int(keep.sum()) < keep.numel() // 2
    expected = F.cross_entropy(logits[keep], labels[keep])
    assert torch.isfinite(out.loss)
    assert torch.allclose(out.loss, expected, atol=1e-6)
    # labelling one more (prompt) token changes the loss: the others really are excluded
    more = batch["labels"].clone()
    more[0, 1] = batch["input_ids"][0, 1]
    assert not torch.allclose(model(**{**batch, "labels": more}).loss, out.loss)


def test_num_items_in_batch_makes_the_loss_a_sum_over_that_number(model, processor):
    batch = train_batch(processor)
    count = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    mean = model(**batch).loss
    summed = model(**batch, num_items_in_batch=torch.tensor(3)).loss
    assert torch.allclose(summed, mean * count / 3, rtol=1e-5)


def test_loss_trains_the_encoder_and_projector(model, processor):
    model.zero_grad()
    model(**train_batch(processor)).loss.backward()
    for part in (model.data_encoder, model.projector):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
    model.zero_grad()


def test_bag_loss_adds_to_the_training_loss_only(tokenizer, processor):
    config = ChatSRConfig.tiny(tokenizer)
    config.bag_loss_weight = 0.5
    torch.manual_seed(0)
    model = ChatSRForCausalLM(config)
    batch = train_batch(processor)
    model.eval()
    lm_loss = model(**batch).loss
    model.train()
    total = model(**batch).loss
    encoded = model.data_encoder(batch["points"], batch["point_mask"])
    bag = model.bag_loss(encoded, batch["labels"])
    assert torch.allclose(total, lm_loss + 0.5 * bag, atol=1e-6)
    # the target of each row is the set of its answer tokens, nothing else
    logits = model.bag_head(encoded.mean(dim=1))
    target = torch.zeros_like(logits)
    for row, answer in enumerate(ANSWERS):
        ids = processor.encode_answer(answer)
        target[row, ids] = 1.0
    assert torch.allclose(bag, F.binary_cross_entropy_with_logits(logits, target), atol=1e-6)
    # it trains the encoder without the LM
    model.zero_grad()
    bag.backward()
    assert all(p.grad is None for p in model.language_model.parameters())
    assert any(p.grad.abs().sum() > 0 for p in model.data_encoder.parameters())


def test_models_without_bag_loss_have_no_bag_head(model):
    assert model.config.bag_loss_weight == 0 and model.bag_head is None


def test_greedy_generate_continues_the_prompt_from_the_points(model, processor):
    batch = prompt_batch(processor)
    B, T = batch["input_ids"].shape
    out = model.generate(**batch, max_new_tokens=5, min_new_tokens=5, do_sample=False)

    assert out.shape == (B, T + 5)
    assert torch.equal(out[:, :T], batch["input_ids"])
    # the first new token is the argmax of the forward pass, which reads the points: generate
    # used the encoded points and not the embedding of the <data> token
    with torch.no_grad():
        first = model(**batch).logits[:, -1].argmax(-1)
    assert torch.equal(out[:, T], first)


def test_sampling_and_beam_search_expand_the_points_given_once(model, processor):
    batch = prompt_batch(processor)
    B, T = batch["input_ids"].shape
    options = dict(max_new_tokens=4, min_new_tokens=4)

    torch.manual_seed(1)
    sampled = model.generate(**batch, do_sample=True, num_return_sequences=3, **options)
    torch.manual_seed(1)
    again = model.generate(**batch, do_sample=True, num_return_sequences=3, **options)
    beams = model.generate(**batch, num_beams=3, num_return_sequences=2, **options)

    assert sampled.shape == (3 * B, T + 4) and beams.shape == (2 * B, T + 4)
    assert torch.equal(sampled, again)
    for out, k in ((sampled, 3), (beams, 2)):
        assert torch.equal(out[:, :T], batch["input_ids"].repeat_interleave(k, dim=0))


def test_different_point_sets_give_different_logits(model, processor):
    # even untrained, the data must reach the LM: HF's N(0, 0.02) initialisation of the set
    # encoder once made these logits differ by ~1e-5 only
    x = np.linspace(-2.0, 2.0, 20)
    zeros = np.zeros_like(x)
    line = np.stack([x, zeros, zeros, 3.0 * x], axis=1)
    growth = np.stack([x, zeros, zeros, 100.0 * np.exp(3.0 * x)], axis=1)
    with torch.no_grad():
        a = model(**processor([line, line], PROMPTS)).logits[:, -1]
        b = model(**processor([growth, line], PROMPTS)).logits[:, -1]
    assert (a[0] - b[0]).abs().max() > 1e-3
    assert torch.allclose(a[1], b[1], atol=1e-6)  # each prompt reads its own point set


def test_logits_ignore_padding_points_and_their_order(model, processor):
    batch = prompt_batch(processor)
    with torch.no_grad():
        base = model(**batch).logits
        # shuffle the real points, then add padding rows full of garbage, NaN included
        points, mask = batch["points"], batch["point_mask"]
        perm = torch.randperm(points.shape[1])
        garbage = torch.full((points.shape[0], 5, points.shape[2]), float("nan"))
        garbage[:, ::2] = 1e30
        padded = {**batch,
                  "points": torch.cat([points[:, perm], garbage], dim=1),
                  "point_mask": torch.cat([mask[:, perm], torch.zeros(len(mask), 5, dtype=bool)],
                                          dim=1)}
        logits = model(**padded).logits
    assert torch.isfinite(logits).all()
    assert torch.allclose(logits, base, atol=1e-5)


def test_text_only_prompts_need_no_points(model, tokenizer):
    ids = torch.tensor([tokenizer.encode("x1 is a temperature", add_special_tokens=False)])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, model.language_model(input_ids=ids).logits)


def _data_ids(tokenizer, count: int, batch: int = 2) -> torch.Tensor:
    text = tokenizer.encode("Fit y.", add_special_tokens=False)
    data = tokenizer.convert_tokens_to_ids(DATA)
    return torch.tensor([[data] * count + text] * batch)


@pytest.mark.parametrize("case, message", [
    ("too_few_data_tokens", r"prompt 0 holds 3 <data> tokens .* gives 4 vectors"),
    ("too_many_data_tokens", r"prompt 0 holds 5 <data> tokens"),
    ("no_points", r"holds <data> tokens but no points"),
    ("batch_mismatch", r"got 1 point sets for 2 prompts"),
    ("nan_point", r"NaN/inf value\(s\) among the real points"),
    ("wrong_columns", r"max_dims \+ 1 = 4 columns .* got 3"),
    ("no_batch_dim", r"add a batch dimension"),
    ("points_without_data_tokens", r"prompt 0 holds 0 <data> tokens"),
])
def test_bad_inputs_raise_value_errors_that_say_what_is_wrong(model, tokenizer, case, message):
    ids, points = _data_ids(tokenizer, 4), torch.randn(2, 6, 4)
    if case == "too_few_data_tokens":
        ids = _data_ids(tokenizer, 3)
    elif case == "too_many_data_tokens":
        ids = _data_ids(tokenizer, 5)
    elif case == "no_points":
        points = None
    elif case == "batch_mismatch":
        points = points[:1]
    elif case == "nan_point":
        points[1, 2, 0] = float("nan")
    elif case == "wrong_columns":
        points = points[..., :3]
    elif case == "no_batch_dim":
        points = points[0]
    elif case == "points_without_data_tokens":
        ids = _data_ids(tokenizer, 0)
    with pytest.raises(ValueError, match=message):
        model(input_ids=ids, points=points)


def test_for_tokenizer_requires_the_data_token():
    tok = build_tokenizer(["x1 is a temperature"] * 3, vocab_size=300)
    with pytest.raises(ValueError, match="no <data> token: call extend_tokenizer"):
        ChatSRConfig.for_tokenizer(tok)


def _save_backbone(path):
    tok = build_tokenizer(["x1 is a temperature in kelvin.", "y grows with x2."] * 5,
                          vocab_size=300)
    torch.manual_seed(0)
    lm = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)).eval()
    lm.save_pretrained(path)
    tok.save_pretrained(path)
    return lm, tok


def test_from_backbone_keeps_the_pretrained_weights(tmp_path):
    backbone, backbone_tok = _save_backbone(tmp_path / "backbone")
    old_size = len(backbone_tok)

    model, tok = ChatSRForCausalLM.from_backbone(tmp_path / "backbone", encoder=TINY_ENCODER)
    model.eval()

    assert len(tok) == old_size + len(math_tokens()) + 1
    assert model.config.data_token_id == tok.convert_tokens_to_ids(DATA)
    assert model.config.text_config.pad_token_id == tok.pad_token_id
    assert model.config.num_data_tokens == 4
    lm = model.language_model
    assert lm.get_input_embeddings().weight.shape[0] == len(tok)
    old_embedding = backbone.get_input_embeddings().weight
    assert torch.equal(lm.get_input_embeddings().weight[:old_size], old_embedding)
    assert torch.equal(lm.get_output_embeddings().weight[:old_size], old_embedding)
    # every layer, not just the embeddings, is the backbone's: same logits on old tokens
    ids = torch.tensor([tok.encode("x1 is a temperature", add_special_tokens=False)])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits[..., :old_size],
                              backbone(input_ids=ids).logits, atol=1e-6)
    processor = ChatSRProcessor.for_model(tok, model)
    out = model(**processor(point_sets(), PROMPTS, ANSWERS))
    assert torch.isfinite(out.loss)


def test_from_backbone_model_survives_save_and_load(tmp_path):
    _save_backbone(tmp_path / "backbone")
    model, tok = ChatSRForCausalLM.from_backbone(tmp_path / "backbone", encoder=TINY_ENCODER)
    model.eval().save_pretrained(tmp_path / "chatsr")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "chatsr").eval()
    batch = ChatSRProcessor.for_model(tok, model)(point_sets(), PROMPTS, ANSWERS)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    lm = loaded.language_model
    assert lm.get_input_embeddings().weight is not lm.get_output_embeddings().weight


def test_from_backbone_config_builds_a_fresh_lm_for_the_tokenizer():
    tok = build_tokenizer(["x1 is a temperature"] * 3, vocab_size=300)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    model, extended = ChatSRForCausalLM.from_backbone(config, tokenizer=tok,
                                                      encoder=TINY_ENCODER)
    assert extended is tok and DATA in tok.get_vocab()
    assert model.get_output_embeddings().weight.shape[0] == len(tok)


def test_from_backbone_rejects_a_missing_directory_and_a_config_without_tokenizer(tmp_path):
    with pytest.raises(ValueError, match="local model directory.*no download"):
        ChatSRForCausalLM.from_backbone(tmp_path / "Qwen2.5-0.5B")
    with pytest.raises(ValueError, match="needs tokenizer="):
        ChatSRForCausalLM.from_backbone(Qwen2Config(vocab_size=300))
