"""The discovery issue's acceptance problems: Kepler's third law and four noiseless formulas.

For each problem and seed: the formula found with default settings, R² on the data, exact
recovery by the SRBench rule (`chatsr.symbolic.metrics.symbolic_recovery`; Kepler: C·a^1.5)
and the fit time; then the recoveries out of the seeds. Optional
``--max-rounds 0`` shows what the model's first proposals alone give (no search rounds).

    python scripts/bench_targets.py [--model DIR] [--time-budget 10] [--max-rounds 0] [--seeds 5]
"""

from __future__ import annotations

import argparse

import numpy as np

from chatsr import ChatSRRegressor, load_dataset
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.metrics import symbolic_recovery

# (name, truth in x1.., sampling range per variable); 200 points, seed 0
PROBLEMS = [
    ("x1*x2*sin(x3)", [(0.5, 3.0)] * 3),
    ("x1/x2", [(0.5, 3.0)] * 2),
    ("x1**2 + x2", [(-2.0, 2.0)] * 2),
    ("exp(-x1)*x2", [(0.0, 3.0), (0.5, 3.0)]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--time-budget", type=float, default=10.0)
    parser.add_argument("--max-rounds", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=1,
                        help="fit each problem with random_state 0..N-1 (default 1)")
    args = parser.parse_args()
    print("| problem | seed | found | R² | exact | time (s) |\n|---|---|---|---|---|---|")
    X, y = load_dataset("kepler")
    problems = [("Kepler: period(a), 8 planets", "x1**1.5", X, y)]
    rng = np.random.default_rng(0)
    for truth, ranges in PROBLEMS:
        X = np.column_stack([rng.uniform(lo, hi, 200) for lo, hi in ranges])
        problems.append((truth, truth, X, _evaluate(truth, X)))
    totals = {}
    for seed in range(args.seeds):
        options = dict(model=args.model, time_budget=args.time_budget,
                       max_rounds=args.max_rounds, random_state=seed)
        for name, truth, X, y in problems:
            est = ChatSRRegressor(**options).fit(X, y)
            exact = symbolic_recovery(truth, est.expression_)
            totals.setdefault(name, []).append((exact, est.fit_time_))
            print(f"| {name} | {seed} | {est.sympy().evalf(4)} | {est.score(X, y):.6f} "
                  f"| {exact} | {est.fit_time_:.1f} |", flush=True)
    print("\n| problem | exact recoveries | median time (s) |\n|---|---|---|")
    for name, runs in totals.items():
        print(f"| {name} | {sum(e for e, _ in runs)}/{len(runs)} "
              f"| {np.median([t for _, t in runs]):.1f} |")


def _evaluate(truth: str, X: np.ndarray) -> np.ndarray:
    return np.broadcast_to(Expression.from_sympy(truth)(X), (len(X),)).astype(float)


if __name__ == "__main__":
    main()
