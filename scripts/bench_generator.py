"""Measure the generator's throughput: valid samples per second with 1 and 2 worker processes.

    python scripts/bench_generator.py                 # max_vars 3, max_length 15, 100 points
    python scripts/bench_generator.py --num-samples 20000 --workers 1 2 4
    python scripts/bench_generator.py --profile       # where one worker spends its time

One-time set-up (the benchmark exclusion set, about 0.3 s) is done before the clock starts;
starting the worker pool is timed, as a user pays for it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from chatsr.data.generator import GeneratorConfig, generate_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-vars", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=15)
    parser.add_argument("--num-points", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--profile", action="store_true", help="profile one single-worker run")
    args = parser.parse_args()
    config = GeneratorConfig(max_vars=args.max_vars, max_length=args.max_length,
                             num_points=args.num_points)
    generate_samples(1, config, progress=False)  # tables and exclusion set, outside the timing

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(generate_samples, args.num_samples, config, progress=False)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return

    print(f"max_vars={args.max_vars} max_length={args.max_length} "
          f"num_points={args.num_points} num_samples={args.num_samples}")
    for workers in args.workers:
        best = float("inf")
        for repeat in range(args.repeats):
            start = time.perf_counter()
            samples = generate_samples(args.num_samples, config, seed=repeat, workers=workers,
                                       progress=False)
            best = min(best, time.perf_counter() - start)
            assert len(samples) == args.num_samples
        print(f"workers={workers}: {args.num_samples / best:,.0f} samples/s "
              f"(best of {args.repeats}: {best:.2f} s)")


if __name__ == "__main__":
    main()
