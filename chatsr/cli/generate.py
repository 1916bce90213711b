"""``chatsr generate``: synthetic train/val/test samples in ChatSR's JSON format."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatsr.cli.arguments import (
    non_negative_float,
    non_negative_int,
    operator_list,
    point_count,
    positive_int,
)

__all__ = ["add_generate_arguments", "run_generate"]


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``chatsr generate`` options on ``parser``."""
    parser.add_argument("--num-samples", type=positive_int, required=True,
                        help="samples in all three splits together")
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for train/val/test files (created if missing)")
    parser.add_argument("--max-vars", type=positive_int, default=3,
                        help="most variables in a formula (default: 3)")
    parser.add_argument("--max-length", type=positive_int, default=15,
                        help="most tokens in a formula (default: 15)")
    parser.add_argument("--min-length", type=positive_int, default=1,
                        help="fewest tokens in a formula (default: 1)")
    parser.add_argument("--max-dims", type=positive_int, default=10,
                        help="x columns in data_points, unused ones zero (default: 10)")
    parser.add_argument("--num-points", type=point_count, default=(10, 800),
                        help="points per sample: N, or LOW-HIGH drawn log-uniformly "
                             "(default: 10-800)")
    parser.add_argument("--noise", type=non_negative_float, default=0.0,
                        help="Gaussian noise on y, relative to std(y) (default: 0)")
    parser.add_argument("--operators", type=operator_list, default=None,
                        help="operators and optional weights, e.g. add,mul,sin:0.3 "
                             "(default: all, with built-in weights)")
    parser.add_argument("--science-weight", type=non_negative_float, default=0.0,
                        help="share of formulas from the science-shaped prior (default: 0)")
    parser.add_argument("--units-prob", type=non_negative_float, default=0.0,
                        help="share of samples stating consistent SI units (default: 0)")
    parser.add_argument("--raw-targets", action="store_true",
                        help="keep formulas as drawn, not in their canonical spelling")
    parser.add_argument("--keep-benchmarks", action="store_true",
                        help="do not remove the Nguyen and Feynman skeletons")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="random seed; the output depends on it alone (default: 0)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="processes (default: 1)")
    parser.add_argument("--format", choices=("json", "jsonl"), default="jsonl",
                        help="a JSON list per file, or JSON lines (default: jsonl)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run_generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``chatsr generate``: write the splits; settings that cannot work exit with status 2."""
    import dataclasses

    from chatsr.data.generator import GeneratorConfig, generate_samples
    from chatsr.data.records import write_splits

    try:
        config = GeneratorConfig(
            max_length=args.max_length, min_length=args.min_length, max_vars=args.max_vars,
            max_dims=args.max_dims, num_points=args.num_points, noise=args.noise,
            operators=args.operators, exclude=None if args.keep_benchmarks else "benchmarks",
            science_weight=args.science_weight, units_prob=args.units_prob,
            canonical=not args.raw_targets)
    except ValueError as error:  # a combination of values no single argument type can check
        message = str(error)
        for field in dataclasses.fields(GeneratorConfig):  # speak in the options' names
            message = message.replace(field.name, "--" + field.name.replace("_", "-"))
        parser.error(message)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} is a file, not a folder")
    try:
        samples = generate_samples(args.num_samples, config, seed=args.seed,
                                   workers=args.workers, progress=not args.quiet)
    except RuntimeError as error:  # too few distinct formulas for the settings
        parser.error(str(error))
    paths = write_splits(samples, args.out, fmt=args.format)
    if not args.quiet:
        for split, path in paths.items():
            print(f"{split}: {path}")
    return 0
