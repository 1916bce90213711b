"""``chatsr bench``: the benchmark runner (`chatsr.bench`) from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatsr.bench import (
    DEFAULT_MAX_VARS,
    DEFAULT_METHODS,
    DEFAULT_TIMEOUT,
    METHODS,
    NOISE_LEVELS,
    SUITES,
    run_benchmark,
    select_problems,
    summarize,
    summary_markdown,
)
from chatsr.cli.arguments import (
    name_list,
    noise_list,
    non_negative_int,
    positive_float,
    positive_int,
)

__all__ = ["add_bench_arguments", "run_bench"]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``chatsr bench`` options on ``parser``.

    >>> parser = argparse.ArgumentParser()
    >>> add_bench_arguments(parser)
    >>> args = parser.parse_args(["--out", "b", "--noise", "0", "--methods", "chatsr"])
    >>> args.suite, args.noise, args.methods, args.max_vars == DEFAULT_MAX_VARS
    ('all', [0.0], ('chatsr',), True)
    """
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for results.csv, summary.md and bench.png")
    parser.add_argument("--suite", choices=SUITES, default="all",
                        help="problems: Nguyen 1-12, AI-Feynman or both (default: all)")
    parser.add_argument("--problems", type=name_list,
                        help="problems by name instead, e.g. Nguyen-1,I.12.1")
    parser.add_argument("--limit", type=positive_int,
                        help="first N problems of each suite (default: all)")
    parser.add_argument("--max-vars", type=positive_int, default=DEFAULT_MAX_VARS,
                        help=f"Feynman equations with at most this many variables (default: "
                             f"{DEFAULT_MAX_VARS}; the shipped model is trained on up to 3)")
    parser.add_argument("--methods", type=name_list, default=DEFAULT_METHODS,
                        help=f"comma-separated, of {','.join(METHODS)} (default: "
                             f"{','.join(DEFAULT_METHODS)})")
    parser.add_argument("--noise", type=noise_list, default=list(NOISE_LEVELS),
                        help=f"noise levels relative to RMS(y) (default: "
                             f"{','.join(f'{n:g}' for n in NOISE_LEVELS)})")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="data and method seeds (default: 0)")
    parser.add_argument("--model", type=Path,
                        help="chatsr model directory (default: the shipped checkpoint)")
    parser.add_argument("--time-budget", type=positive_float,
                        help="chatsr search seconds (default: the regressor's, 10)")
    parser.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT,
                        help=f"seconds before a fit is killed (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``chatsr bench``: the benchmark, its report files and the summary on stdout."""
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} is a file, not a folder")
    if args.model is not None:
        from chatsr.model.pretrained import load_pretrained

        try:  # a bad folder is named now, not in the error column of every fit
            load_pretrained(args.model)
        except (ValueError, FileNotFoundError) as error:
            parser.error(f"--model: {error}")
    try:
        problems = select_problems(args.suite, names=args.problems, limit=args.limit,
                                   max_vars=args.max_vars)
        results = run_benchmark(problems, args.methods, args.noise, seed=args.seed,
                                time_budget=args.time_budget, timeout=args.timeout,
                                out_dir=args.out, model=args.model, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(summary_markdown(summarize(results)))
    print(f"\nresults: {args.out / 'results.csv'}, summary: {args.out / 'summary.md'}, "
          f"plot: {args.out / 'bench.png'}")
    return 0
