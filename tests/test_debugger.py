"""Tests of chatsr.training.debugger: the report agrees with the model's forward and generate."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from chatsr.cli.debug import add_debug_arguments, run_debug
from chatsr.data.generator import generate_samples
from chatsr.data.records import write_samples
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.processing import DEFAULT_PROMPT, ChatSRProcessor, pack_points
from chatsr.model.tokenizer import load_tokenizer
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import CHATSR_TOKEN
from chatsr.training.debugger import DebugReport, debug_record, debug_sample

ANSWER = ["add", "x1", "mul", "C", "x2"]
EOS = "<|endoftext|>"


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def model(tok) -> ChatSRForCausalLM:
    torch.manual_seed(0)
    return ChatSRForCausalLM(ChatSRConfig.tiny(tok)).eval()


@pytest.fixture(scope="module")
def processor(tok, model) -> ChatSRProcessor:
    return ChatSRProcessor.for_model(tok, model)


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    X = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    return pack_points(X, X[:, 0] + 2 * X[:, 1], max_dims=3)  # (20, 4), x3 all zero


def test_loss_is_the_forward_loss_and_the_mean_of_the_token_losses(model, processor, points):
    report = debug_sample(model, processor, points, answer=ANSWER, max_new_tokens=4)
    batch = processor([points], [DEFAULT_PROMPT], [ANSWER])
    with torch.no_grad():
        expected = float(model(**batch).loss)
    assert report.loss == pytest.approx(expected, rel=1e-5)
    assert [t for t, _ in report.token_losses] == Expression.parse(ANSWER).to_tokens() + [EOS]
    assert np.mean([nll for _, nll in report.token_losses]) == pytest.approx(report.loss)
    assert all(nll > 0 for _, nll in report.token_losses)


def test_first_token_is_the_softmax_at_the_last_prompt_position(model, processor, points, tok):
    report = debug_sample(model, processor, points, top_k=4, max_new_tokens=2)
    assert report.loss is None and report.token_losses == []
    with torch.no_grad():
        probabilities = model(**processor([points])).logits[0, -1].softmax(-1)  # (V,)
    values, ids = probabilities.topk(4)
    assert [t for t, _ in report.first_token] == tok.convert_ids_to_tokens(ids.tolist())
    np.testing.assert_allclose([p for _, p in report.first_token], values.numpy(), rtol=1e-5)
    listed = [p for _, p in report.first_token]
    assert listed == sorted(listed, reverse=True) and sum(listed) <= 1


def test_steps_follow_greedy_generate(model, processor, points, tok):
    report = debug_sample(model, processor, points, prompt="<data>\nFind y.", top_k=3,
                          max_new_tokens=8)
    batch = processor([points], ["<data>\nFind y."], padding_side="left")
    out = model.generate(**batch, do_sample=False, max_new_tokens=8)
    generated = tok.convert_ids_to_tokens(out[0, batch["input_ids"].shape[1]:].tolist())
    assert [token for token, _, _ in report.steps] == generated
    for token, p, top in report.steps:
        assert len(top) == 3 and top[0] == (token, p)  # greedy takes the most likely token
    assert report.steps[0][2] == report.first_token  # no grammar: the same distribution


def test_constrained_steps_write_one_valid_tree(model, processor, tok):
    X = np.linspace(0.5, 2.0, 20)[:, None]
    points = pack_points(X, np.log(X[:, 0]), max_dims=3)  # only x1 is used
    report = debug_sample(model, processor, points, top_k=50, max_new_tokens=6,
                          constrained=True)
    chosen = [token for token, _, _ in report.steps]
    assert chosen[-1] == EOS and len(chosen) <= 6
    assert all(CHATSR_TOKEN.fullmatch(token) for token in chosen[:-1])
    assert report.formula == Expression.parse(chosen[:-1]).infix()
    for _, p, top in report.steps:
        assert 0 < p <= 1 and sum(q for _, q in top) == pytest.approx(1, abs=1e-4)
        assert not {t for t, _ in top} & {"<|math_x2|>", "<|math_x3|>"}  # x2, x3 are zero


def test_format_shows_every_part(model, processor, points):
    report = debug_sample(model, processor, points, answer=ANSWER, top_k=2, max_new_tokens=5,
                          constrained=True)
    text = report.format()
    assert f"loss: {report.loss:.4f}" in text
    assert "<|math_mul|>" in text and "first generated token" in text
    assert "greedy generation" in text and f"formula: {report.formula}" in text
    step_lines = text.split("greedy generation\n")[1].split("\n\n")[0].splitlines()
    assert len(step_lines) == 1 + len(report.steps)
    header, rows = step_lines[0], step_lines[1:]
    p_end = header.index(" p ") + 2  # the probability column is right-aligned under "p"
    for line, (_, p, _) in zip(rows, report.steps, strict=True):
        assert line[p_end - 6:p_end] == f"{p:.4f}"
    assert "do not parse" in DebugReport(loss=None).format()


def test_options_are_checked(model, processor, points):
    with pytest.raises(ValueError, match="top_k must be an integer of at least 1, got 0"):
        debug_sample(model, processor, points, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens must be .* at least 2, got 1"):
        debug_sample(model, processor, points, max_new_tokens=1, constrained=True)
    with pytest.raises(ValueError, match=r"points\[0\] must be a 2-D array of shape \(n, 4\)"):
        debug_sample(model, processor, points[:, :3])


def test_debug_record_reads_prompt_answer_and_points(model, processor):
    for record in generate_samples(2, max_vars=1, num_points=20, max_dims=3, progress=False):
        report = debug_record(model, processor, record, top_k=2, max_new_tokens=4)
        expected = debug_sample(model, processor, np.asarray(record["data_points"]),
                                prompt=record["conversations"][0]["value"],
                                answer=record["expression_tokens"], top_k=2, max_new_tokens=4)
        assert report == expected


def test_debug_record_cuts_zero_columns_and_rejects_used_ones(model, processor):
    record = generate_samples(1, max_vars=1, num_points=20, max_dims=5, progress=False)[0]
    assert len(record["data_points"][0]) == 6
    narrow = dict(record, data_points=[row[:3] + row[-1:] for row in record["data_points"]])
    assert (debug_record(model, processor, record, max_new_tokens=3)
            == debug_record(model, processor, narrow, max_new_tokens=3))
    used = dict(record, data_points=[row[:4] + [1.0, row[-1]] for row in record["data_points"]])
    with pytest.raises(ValueError, match=r"x column\(s\) \[5\] .* only x1..x3"):
        debug_record(model, processor, used)


def test_run_debug_prints_the_report(tmp_path, model, tok, capsys):
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    samples = write_samples(generate_samples(2, max_vars=1, num_points=20, max_dims=3,
                                             progress=False), tmp_path / "test.jsonl")
    parser = argparse.ArgumentParser()
    add_debug_arguments(parser)
    args = parser.parse_args([str(tmp_path / "model"), str(samples), "--index", "1",
                              "--top-k", "2", "--max-new-tokens", "4", "--constrained"])
    assert run_debug(args) == 0
    out = capsys.readouterr().out
    assert "sample 1 (sr_1)" in out and "loss: " in out and "formula: " in out

    args = parser.parse_args([str(tmp_path / "model"), str(samples), "--index", "2"])
    assert run_debug(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--index 2 is out of range" in captured.err and "from 0 to 1" in captured.err


def test_debug_arguments_reject_a_bad_top_k(capsys):
    parser = argparse.ArgumentParser()
    add_debug_arguments(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["model", "samples.jsonl", "--top-k", "0"])
    assert exit_info.value.code == 2
    assert "--top-k: expected a positive integer" in capsys.readouterr().err
