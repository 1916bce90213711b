"""Benchmark constant fitting: wall time of ``fit_constants`` and of one objective evaluation.

Fits ``C*exp(C*x1) + C*x2`` (3 constants) on 100 and 1,000 points, twice each:
noisy data (no restart reproduces the data, so all 8 restarts run) and noise-free data (the
search stops at the first exact restart). Prints medians over ``--runs`` runs.

    python scripts/bench_fitting.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from chatsr.symbolic.evaluation import compile_skeleton
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import fit_constants

SKELETON = Expression.parse("+ * C exp * C x1 * C x2")  # C0*exp(C1*x1) + C2*x2
TRUE_CONSTANTS = (1.5, 0.8, -0.6)


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def objective_seconds(X: np.ndarray, y: np.ndarray, repeats: int = 2000) -> tuple[float, float]:
    """One MSE + gradient evaluation: through the public method, and as the fitter does it."""
    c = np.array([1.0, 0.5, -1.0])
    jac_fn = compile_skeleton(SKELETON.names, True)
    norm = 2.0 / y.size

    def public():
        values, jac = SKELETON.value_and_jacobian(X, c)
        residual = values - y
        return residual @ residual, norm * (jac.T @ residual)

    def direct():
        values, jac = jac_fn(X, c)
        residual = values - y
        return residual @ residual, norm * (jac.T @ residual)

    return (median_seconds(lambda: [public() for _ in range(repeats)], 5) / repeats,
            median_seconds(lambda: [direct() for _ in range(repeats)], 5) / repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per median")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"skeleton {SKELETON.infix()}, true constants {TRUE_CONSTANTS}, "
          f"median of {args.runs} runs\n")
    header = (f"{'points':>6}  {'data':<10} {'restarts':>8}  {'fit [ms]':>9}  {'R2':>12}  "
              f"{'eval public [us]':>16}  {'eval direct [us]':>16}")
    print(header)
    print("-" * len(header))
    for n in (100, 1000):
        X = rng.uniform(-2.0, 2.0, size=(n, 2))  # (n, 2)
        exact = SKELETON(X, TRUE_CONSTANTS)  # (n,)
        noisy = exact + 0.05 * np.std(exact) * rng.normal(size=n)
        public, direct = objective_seconds(X, exact)
        for label, y in (("noisy", noisy), ("exact", exact)):
            fit_constants(SKELETON, X, y, random_state=0)  # warm the compile cache
            seconds = median_seconds(
                lambda y=y, X=X: fit_constants(SKELETON, X, y, random_state=0), args.runs)
            result = fit_constants(SKELETON, X, y, random_state=0)
            print(f"{n:>6}  {label:<10} {result.n_restarts_run:>8}  {seconds * 1e3:>9.2f}  "
                  f"{result.r2:>12.10f}  {public * 1e6:>16.1f}  {direct * 1e6:>16.1f}")


if __name__ == "__main__":
    main()
