"""Training: over-fitting, the HF Trainer, resume after a kill, FSDP sharding on 2 processes."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from chatsr.data.generator import generate_samples
from chatsr.data.records import write_samples
from chatsr.model.modeling import ChatSRForCausalLM
from chatsr.model.processing import ChatSRProcessor
from chatsr.training.loop import TrainingConfig, build_model, plot_history, train
from chatsr.training.streams import SPARSE_POINTS, FileSource, GeneratedSource, TrainingBatches

TINY = {"tiny": True}
GENERATOR = {"max_vars": 1, "num_points": [10, 30], "max_dims": 3}


def config(tmp_path: Path, **options) -> TrainingConfig:
    values = dict(output_dir=str(tmp_path / "run"), model=TINY, generator=GENERATOR,
                  batch_size=8, micro_batch_size=4, max_steps=4, eval_every=0, save_every=0,
                  progress=False, lr=3e-3)
    return TrainingConfig(**(values | options))


def losses(history):
    return [row["loss"] for row in history if "loss" in row]


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    write_samples(generate_samples(8, seed=1, progress=False, **GENERATOR), path)
    return path


def test_loss_drops_on_a_tiny_overfit_set(tmp_path, tiny_file):
    history = train(config(tmp_path, train_file=str(tiny_file), max_steps=60, lr=1e-2,
                           warmup_ratio=0.0))
    first, last = np.mean(losses(history)[:3]), np.mean(losses(history)[-3:])
    assert last < 0.3 * first, (first, last)
    out = tmp_path / "run"
    assert (out / "loss_curve.png").stat().st_size > 1000
    model = ChatSRForCausalLM.from_pretrained(out)  # the final model loads in one process
    assert model.config.num_data_tokens == 4


def test_evaluation_reports_validation_loss_and_parse_rate(tmp_path):
    history = train(config(tmp_path, max_steps=2, eval_every=2, eval_samples=4))
    evaluation = [row for row in history if "val_loss" in row]
    assert len(evaluation) == 1
    assert np.isfinite(evaluation[0]["val_loss"]) and 0 <= evaluation[0]["parse_rate"] <= 1
    # other samples' points give another loss: the (untrained) model reads its data
    assert np.isfinite(evaluation[0]["data_gain"]) and evaluation[0]["data_gain"] != 0


def test_a_finished_run_continues_with_more_steps(tmp_path):
    train(config(tmp_path, max_steps=2))
    history = train(config(tmp_path, max_steps=4))
    assert [row["step"] for row in history] == [1, 2, 3, 4]


def test_freezing_keeps_parts_fixed(tmp_path):
    base = tmp_path / "base"
    train(config(tmp_path, output_dir=str(base), max_steps=1))
    train(config(tmp_path, init_from=str(base), freeze=("encoder", "embeddings"),
                 max_steps=2))
    before = ChatSRForCausalLM.from_pretrained(base)
    after = ChatSRForCausalLM.from_pretrained(tmp_path / "run")
    for name, p in before.data_encoder.named_parameters():
        assert torch.equal(p, dict(after.data_encoder.named_parameters())[name]), name
    assert torch.equal(before.get_input_embeddings().weight, after.get_input_embeddings().weight)
    assert not torch.equal(before.projector[0].weight, after.projector[0].weight)


def test_fine_tuning_a_float16_model_trains_in_float32(tmp_path):
    # the shipped model is stored in float16: AdamW's eps underflows there (NaN after a step)
    base = tmp_path / "base"
    model, tokenizer = build_model(TINY)
    model.to(torch.float16).save_pretrained(base)
    tokenizer.save_pretrained(base)
    history = train(config(tmp_path, init_from=str(base), max_steps=3))
    assert np.isfinite(losses(history)).all(), losses(history)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dtype"] == "float32"


def test_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="freeze accepts"):
        config(tmp_path, freeze=("decoder",))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        config(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="not a chatsr model directory"):
        train(config(tmp_path, init_from=str(tmp_path)))
    with pytest.raises(ValueError, match="unknown model options"):
        build_model({"width": 3})


def test_batches_partition_the_global_batch_between_ranks(tiny_file):
    model, tokenizer = build_model(TINY)
    processor = ChatSRProcessor.for_model(tokenizer, model)
    source = FileSource(tiny_file, seed=0)
    ranks = [TrainingBatches(source, processor, batch_size=8, micro_batch_size=4, max_points=5,
                             seed=0, rank=r, world_size=2) for r in range(2)]
    assert list(ranks[0].indices(3)) + list(ranks[1].indices(3)) == list(range(24, 32))
    assert all(b["point_mask"].sum(1).max() <= 5 for b in ranks[0](0))
    epoch = sorted(source[i]["id"] for i in range(8))
    assert epoch == sorted(r["id"] for r in source.records)  # one epoch sees each record once
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        TrainingBatches(source, processor, batch_size=7, micro_batch_size=4, max_points=5,
                        seed=0, rank=0, world_size=2)
    generated = GeneratedSource(seed=0, **GENERATOR)
    assert generated[40]["id"] == "sr_40" and generated[3]["id"] == "sr_3"


def test_sparse_records_keep_two_points_and_the_rest_keep_theirs(tiny_file):
    model, tokenizer = build_model(TINY)
    processor = ChatSRProcessor.for_model(tokenizer, model)
    source = FileSource(tiny_file, seed=0)
    options = dict(batch_size=8, micro_batch_size=8, max_points=20, seed=0)
    plain = TrainingBatches(source, processor, **options)
    sparse = TrainingBatches(source, processor, sparse_prob=0.5, **options)
    sizes = [len(sparse.points(source[i], i)) for i in range(64)]
    full = [len(plain.points(source[i], i)) for i in range(64)]
    cut = [s == SPARSE_POINTS < f for s, f in zip(sizes, full, strict=True)]
    assert 16 < sum(cut) < 48  # about half
    assert all(s == f for s, f, c in zip(sizes, full, cut, strict=True) if not c)
    assert sizes == [len(sparse.points(source[i], i)) for i in range(64)]  # seeded
    with pytest.raises(ValueError, match="sparse_prob must be in"):
        TrainingConfig(sparse_prob=1.0)


def test_plain_hf_trainer_trains_the_model(tmp_path, tiny_file):
    model, tokenizer = build_model(TINY)
    processor = ChatSRProcessor.for_model(tokenizer, model)
    records = FileSource(tiny_file).records
    batches = TrainingBatches(FileSource(tiny_file), processor, batch_size=4,
                              micro_batch_size=4, max_points=20, seed=0)

    def collate(items):
        (batch,) = batches.collate([r for _, r in items], [i for i, _ in items])
        return batch

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=30, learning_rate=1e-2,
                             per_device_train_batch_size=4, logging_steps=1, report_to=[],
                             remove_unused_columns=False, use_cpu=True, save_strategy="no",
                             disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=list(enumerate(records)),
                      data_collator=collate)
    trainer.train()
    logged = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert np.mean(logged[-3:]) < 0.5 * np.mean(logged[:3])


def _command(cfg: TrainingConfig) -> list[str]:
    return [sys.executable, "-m", "chatsr.cli", "train", "--output-dir", cfg.output_dir,
            "--model", json.dumps(cfg.model), "--generator", json.dumps(cfg.generator),
            "--max-steps", str(cfg.max_steps), "--batch-size", str(cfg.batch_size),
            "--micro-batch-size", str(cfg.micro_batch_size), "--lr", str(cfg.lr),
            "--save-every", str(cfg.save_every), "--eval-every", "0", "--no-progress"]


@pytest.mark.slow
def test_resume_after_a_kill_continues_the_same_loss_curve(tmp_path):
    reference = train(config(tmp_path, output_dir=str(tmp_path / "ref"), max_steps=120))
    killed = config(tmp_path, output_dir=str(tmp_path / "killed"), max_steps=120,
                    save_every=10)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    process = subprocess.Popen(_command(killed), env=env, stderr=subprocess.DEVNULL)
    marker = Path(killed.output_dir) / "checkpoint-10" / "trainer_state.json"
    deadline = time.time() + 120
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (Path(killed.output_dir) / "trainer_state.json").exists()
    resumed = train(killed)
    assert [r["step"] for r in resumed] == list(range(1, 121))
    np.testing.assert_allclose(losses(resumed), losses(reference), rtol=1e-5)


@pytest.mark.slow
def test_fsdp_on_two_cpu_processes_shards_and_matches_one_process(tmp_path):
    options = asdict(config(tmp_path, output_dir=str(tmp_path / "fsdp"), max_steps=3,
                            micro_batch_size=2, lr=1e-3))
    worker = Path(__file__).with_name("fsdp_worker.py")
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "29517", str(worker), json.dumps(options)],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / "fsdp" / f"shards-{r}.json").read_text()) for r in (0, 1)]
    total = reports[0]["total"]
    for report in reports:  # each rank holds about half of every parameter, not a copy
        assert report["local"] < 0.55 * total
    assert sum(r["local"] for r in reports) == total

    single = train(config(tmp_path, output_dir=str(tmp_path / "single"), max_steps=3,
                          micro_batch_size=4, lr=1e-3))
    sharded = json.loads((tmp_path / "fsdp" / "trainer_state.json").read_text())["history"]
    np.testing.assert_allclose(losses(sharded), losses(single), rtol=1e-5)
    a = ChatSRForCausalLM.from_pretrained(tmp_path / "fsdp").state_dict()
    b = ChatSRForCausalLM.from_pretrained(tmp_path / "single").state_dict()
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst


def test_loss_curve_plot(tmp_path):
    history = [{"step": s, "samples": 8 * s, "loss": 5.0 / s} for s in range(1, 6)]
    history.append({"step": 5, "val_loss": 1.2, "parse_rate": 0.5})
    path = plot_history(history, tmp_path / "curve.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


class _CreatesAFile:
    """Unpickling this runs code: it would create the file ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_resuming_never_unpickles_code_from_a_checkpoint(tmp_path):
    cfg = config(tmp_path, max_steps=4, save_every=2)
    train(cfg)
    witness = tmp_path / "code-ran"
    saved = sorted(Path(cfg.output_dir).rglob("optimizer.pt"))
    assert saved
    for path in saved:  # whichever the run resumes from holds a pickle that would run code
        torch.save({"optimizer": _CreatesAFile(witness), "scheduler": {}}, path)
    with pytest.raises(ValueError, match=r"optimizer\.pt holds more than tensors") as error:
        train(config(tmp_path, max_steps=6, save_every=2))
    assert str(Path(cfg.output_dir)) in str(error.value)  # the message names the file
    assert "weights_only" in str(error.value) and "--no-resume" in str(error.value)
    assert not witness.exists()


def test_bf16_autocast_trains_and_keeps_float32_weights(tmp_path):
    history = train(config(tmp_path, precision="bf16", max_steps=3))
    assert all(np.isfinite(losses(history)))
    model = ChatSRForCausalLM.from_pretrained(tmp_path / "run")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with pytest.raises(ValueError, match="precision must be one of float32, bf16"):
        config(tmp_path, precision="fp8")


def test_checkpoints_by_time_as_well_as_by_steps(tmp_path):
    cfg = config(tmp_path, max_steps=3, save_every=0, save_minutes=1e-9)  # due every step
    train(cfg)
    assert sorted(p.name for p in Path(cfg.output_dir).glob("checkpoint-*")) == \
        ["checkpoint-1", "checkpoint-2"]
    with pytest.raises(ValueError, match="save_minutes must be >= 0"):
        config(tmp_path, save_minutes=-1.0)
