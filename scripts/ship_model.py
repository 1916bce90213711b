"""Copy a finished training run into the package as the shipped model (float16 weights).

    python scripts/ship_model.py runs/default [--to chatsr/checkpoints/default]

Writes the model (safetensors, float16: half the size; `chatsr.load_pretrained` loads it as
float32), the tokenizer, the loss curve and ``training.json`` (samples
seen, wall time, last validation numbers), and checks that the float16 copy gives the same
greedy answers as the run's float32 model on a few held-out samples.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from chatsr.data.generator import iter_samples
from chatsr.model.decoding import propose
from chatsr.model.pretrained import DEFAULT_CHECKPOINT, load_pretrained
from chatsr.model.processing import ChatSRProcessor

CHECK_SEED = 424242  # held-out samples for the float16 check


def summary(run: Path) -> dict:
    """What the run did: steps, samples, wall time, the last evaluation."""
    state = json.loads((run / "trainer_state.json").read_text())
    history = state["history"]
    train = [r for r in history if "loss" in r]
    evals = [r for r in history if "val_loss" in r]
    seconds = sum(r["samples"] / r["samples_per_s"] for r in _steps(train))
    return {"steps": train[-1]["step"], "samples_seen": train[-1]["samples"],
            "train_hours": round(seconds / 3600, 2), "final_train_loss": train[-1]["loss"],
            "final_eval": evals[-1] if evals else None}


def _steps(train: list[dict]) -> list[dict]:
    """Rows with the samples of their own step (``samples`` is cumulative)."""
    rows, previous = [], 0
    for row in train:
        rows.append({"samples": row["samples"] - previous,
                     "samples_per_s": row["samples_per_s"]})
        previous = row["samples"]
    return rows


def greedy_answers(path: Path, n: int = 20) -> list[tuple[str, ...]]:
    model, tokenizer = load_pretrained(path)
    processor = ChatSRProcessor.for_model(tokenizer, model)
    answers = []
    for record, _ in zip(iter_samples(seed=CHECK_SEED, max_vars=2, num_points=(50, 100)),
                         range(n), strict=False):
        points = np.asarray(record["data_points"], dtype=np.float64)
        answers.append(propose(model, processor, points, strategy="greedy")[0].tokens)
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished `chatsr train` output directory")
    parser.add_argument("--to", type=Path, default=DEFAULT_CHECKPOINT)
    args = parser.parse_args()
    model, tokenizer = load_pretrained(args.run)
    if args.to.exists():  # the old model's files go; its card (README.md) stays, to be updated
        for old in args.to.iterdir():
            if old.name != "README.md":
                old.unlink()
    model.to(torch.float16).save_pretrained(args.to)
    tokenizer.save_pretrained(args.to)
    shutil.copy(args.run / "loss_curve.png", args.to / "loss_curve.png")
    info = summary(args.run)
    (args.to / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    same = sum(a == b for a, b in zip(greedy_answers(args.run), greedy_answers(args.to),
                                      strict=True))
    size = sum(f.stat().st_size for f in args.to.iterdir()) / 2**20
    print(json.dumps(info, indent=2))
    print(f"shipped to {args.to} ({size:.1f} MiB); float16 gives the float32 model's greedy "
          f"answer on {same}/20 held-out samples")


if __name__ == "__main__":
    main()
