"""``chatsr train``: train or fine-tune a model, one process or many under ``torchrun``.

>>> from chatsr.cli import build_parser
>>> build_parser().parse_args(["train", "--max-steps", "5"]).max_steps
5
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from chatsr.cli.arguments import (
    json_object,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:
    from chatsr.training.loop import TrainingConfig

__all__ = ["add_train_arguments", "run_train"]

# (option, type, help); defaults live in TrainingConfig, and an option left out keeps its default
_TRAIN_OPTIONS = (
    ("output-dir", str, "checkpoints, final model, history and loss curve (default: runs/chatsr)"),
    ("train-file", str, "samples file from `chatsr generate` (default: generate on the fly)"),
    ("val-file", str, "validation samples (default: a generator stream with another seed)"),
    ("init-from", str, "fine-tune this trained model directory (default lr then 1e-4)"),
    ("max-steps", positive_int, "optimizer steps (default: 1000)"),
    ("batch-size", positive_int, "global samples per step, split between processes (64)"),
    ("micro-batch-size", positive_int, "samples per forward pass (default: 16)"),
    ("max-points", positive_int, "points per sample seen in training (default: 100)"),
    ("sparse-prob", non_negative_float, "share of samples cut to 2 points, so that only the "
     "prompt's facts tell the formula (default: 0)"),
    ("lr", positive_float, "LM learning rate (default: 1e-3, or 1e-4 with --init-from)"),
    ("encoder-lr", positive_float, "set-encoder learning rate (default: --lr)"),
    ("projector-lr", positive_float, "projector learning rate (default: --lr)"),
    ("weight-decay", non_negative_float, "AdamW weight decay on matrices (default: 0.01)"),
    ("warmup-ratio", non_negative_float, "share of steps with linear warm-up (0.03)"),
    ("max-grad-norm", non_negative_float, "gradient clipping (default: 1.0)"),
    ("eval-every", non_negative_int, "steps between evaluations, 0: never (default: 200)"),
    ("eval-samples", positive_int, "validation samples per evaluation (default: 64)"),
    ("save-every", non_negative_int, "steps between checkpoints, 0: final only (500)"),
    ("save-minutes", non_negative_float, "also a checkpoint after this many minutes (0: off)"),
    ("save-total-limit", positive_int, "checkpoints kept (default: 2)"),
    ("log-every", positive_int, "steps between log lines (default: 10)"),
    ("seed", non_negative_int, "initialisation, data order, point subsets (default: 0)"),
    ("precision", str, "float32, or bf16 for bfloat16 autocast (default: float32)"),
)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``chatsr train`` options on ``parser``."""
    parser.add_argument("--config", type=Path, help="a JSON file of training options; "
                        "options given on the command line override it")
    for name, kind, help_text in _TRAIN_OPTIONS:
        parser.add_argument("--" + name, type=kind, help=help_text)
    parser.add_argument("--generator", type=json_object,
                        help='generator options for on-the-fly data, e.g. \'{"max_vars": 2}\'')
    parser.add_argument("--model", type=json_object,
                        help='model size: \'{"encoder": {...}, "text": {...}}\' or '
                             '\'{"tiny": true}\'')
    parser.add_argument("--freeze", type=lambda t: tuple(filter(None, t.split(","))),
                        help="parts kept fixed: encoder,projector,lm,embeddings")
    parser.add_argument("--no-resume", dest="resume", action="store_false", default=None,
                        help="start afresh even if OUTPUT_DIR holds a checkpoint")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar")


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``chatsr train``: options, files and the model to start from are checked first."""
    from chatsr.training.loop import TrainingConfig, train

    names = [n.replace("-", "_") for n, _, _ in _TRAIN_OPTIONS]
    names += ["generator", "model", "freeze", "resume", "progress"]
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    try:
        config = (TrainingConfig.from_json(args.config, **given) if args.config
                  else TrainingConfig(**given))
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    _check_paths(config, parser)
    history = train(config)
    losses = [row["loss"] for row in history if "loss" in row]
    if losses and os.environ.get("RANK", "0") == "0":
        print(f"trained to step {history[-1]['step']}: loss {losses[-1]:.4f}; "
              f"model in {config.output_dir}")
    return 0


def _check_paths(config: TrainingConfig, parser: argparse.ArgumentParser) -> None:
    """Exit with a one-line error for a samples file, model folder or output folder that cannot
    be used, before any training starts."""
    from chatsr.model.pretrained import load_pretrained

    for option, file in (("--train-file", config.train_file), ("--val-file", config.val_file)):
        if file is not None and not Path(file).is_file():
            parser.error(f"{option} {str(file)!r}: "
                         f"{'a folder, not a file' if Path(file).is_dir() else 'no such file'}")
    if Path(config.output_dir).exists() and not Path(config.output_dir).is_dir():
        parser.error(f"--output-dir {str(config.output_dir)!r} is a file, not a folder")
    if config.init_from is not None:
        try:
            load_pretrained(config.init_from)
        except (ValueError, FileNotFoundError) as error:
            parser.error(f"--init-from: {error}")
