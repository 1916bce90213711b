"""``chatsr debug``: one sample through a model (`chatsr.training.debugger`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chatsr.cli.arguments import positive_int

__all__ = ["add_debug_arguments", "run_debug"]


def add_debug_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``chatsr debug MODEL_DIR SAMPLES_FILE [--index I] [--top-k K] [--constrained]
    [--max-new-tokens N]`` on ``parser``.

    >>> parser = argparse.ArgumentParser()
    >>> add_debug_arguments(parser)
    >>> args = parser.parse_args(["model", "test.jsonl", "--index", "3", "--constrained"])
    >>> args.index, args.top_k, args.constrained
    (3, 5, True)
    """
    parser.add_argument("model_dir", metavar="MODEL_DIR", type=Path,
                        help="a trained model directory (model and tokenizer)")
    parser.add_argument("samples_file", metavar="SAMPLES_FILE", type=Path,
                        help="samples in ChatSR's format (.json or .jsonl)")
    parser.add_argument("--index", type=int, default=0,
                        help="which sample of the file, from 0 (default: 0)")
    parser.add_argument("--top-k", type=positive_int, default=5,
                        help="tokens listed per step (default: 5)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=32,
                        help="most tokens generated, EOS included (default: 32)")
    parser.add_argument("--constrained", action="store_true",
                        help="generate under the preorder grammar")


def run_debug(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``chatsr debug``: print the :class:`DebugReport` of one sample; returns the status.

    Returns 0 after printing the report, and 2 after printing an error to stderr when the
    index is out of range or the samples, the model or the options cannot be used. ``parser``
    is unused; it is there to match `chatsr.cli.main.Command.run`.
    """
    from chatsr.data.records import read_samples
    from chatsr.model.pretrained import load_pretrained
    from chatsr.model.processing import ChatSRProcessor
    from chatsr.training.debugger import debug_record

    def fail(message: str) -> int:
        print(f"chatsr debug: error: {message}", file=sys.stderr)
        return 2

    try:
        records = read_samples(args.samples_file)
    except (OSError, ValueError) as error:
        return fail(f"cannot read SAMPLES_FILE: {error}")
    if not 0 <= args.index < len(records):
        return fail(f"--index {args.index} is out of range: {args.samples_file} holds "
                    f"{len(records)} sample(s), so give an index from 0 to {len(records) - 1}")
    try:
        model, tokenizer = load_pretrained(args.model_dir)  # float32, as shipped in float16
    except (OSError, ValueError) as error:
        return fail(f"cannot load a model from MODEL_DIR {str(args.model_dir)!r}: {error}")
    record = records[args.index]
    try:
        report = debug_record(model, ChatSRProcessor.for_model(tokenizer, model), record,
                              top_k=args.top_k, max_new_tokens=args.max_new_tokens,
                              constrained=args.constrained)
    except ValueError as error:
        return fail(f"sample {args.index} of {args.samples_file}: {error}")
    print(f"sample {args.index} ({record.get('id', '?')}) of {args.samples_file}\n")
    print(report.format())
    return 0
