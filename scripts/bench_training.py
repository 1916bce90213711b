"""Measure training throughput (samples/s) of ``chatsr train`` with 1 and 2 processes.

    python scripts/bench_training.py                       # the default model, 20 steps each
    python scripts/bench_training.py --steps 40 --processes 1 2 4
    python scripts/bench_training.py --model '{"text": {"num_hidden_layers": 2}}'

Each run is the real command (on-the-fly data generation, collation, FSDP under torchrun for
more than one process); the figure is the median samples/s over the steps after the first
three, read from the run's ``trainer_state.json``. Samples/s counts the global batch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def measure(processes: int, steps: int, model: str, extra: list[str]) -> float:
    out = tempfile.mkdtemp(prefix="chatsr-bench-")
    launcher = ([sys.executable, "-m", "chatsr.cli", "train"] if processes == 1 else
                [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                 str(processes), "-m", "chatsr.cli", "train"])
    command = [*launcher, "--output-dir", out, "--max-steps", str(steps), "--eval-every", "0",
               "--save-every", "0", "--no-progress", *(["--model", model] if model else []),
               *extra]
    subprocess.run(command, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                   stderr=subprocess.DEVNULL)
    history = json.loads((Path(out) / "trainer_state.json").read_text())["history"]
    return statistics.median(row["samples_per_s"] for row in history[3:] if "loss" in row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default="", help="JSON model options (default: default)")
    args, extra = parser.parse_known_args()
    print(f"| processes | samples/s (batch 64 unless set) | model {args.model or 'default'}")
    print("|---|---|")
    for n in args.processes:
        print(f"| {n} | {measure(n, args.steps, args.model, extra):.0f} |", flush=True)


if __name__ == "__main__":
    main()
