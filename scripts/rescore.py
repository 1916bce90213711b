"""Symbolic recovery of a bench's fits checked again with today's rule, without refitting.

`chatsr bench` writes each fit's formula (``found``) to ``results.csv``; when the recovery
test changes, this re-runs it on those formulas (the variables positive where the problem's
range is, as `chatsr bench` does) and prints, per method, the exact recovery before and
after and the problems whose verdict changed. It writes nothing.

    python scripts/rescore.py OUT [OUT ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from chatsr.data.benchmarks import BENCHMARKS
from chatsr.symbolic.metrics import symbolic_recovery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="+", type=Path, help="directories with results.csv")
    args = parser.parse_args()
    runs = pd.concat([pd.read_csv(d / "results.csv") for d in args.out], ignore_index=True)
    now = []
    for row in runs.itertuples():
        problem = BENCHMARKS[row.problem]
        now.append(row.status == "ok" and isinstance(row.found, str) and symbolic_recovery(
            problem.formula, row.found, positive=problem.positive_variables))
    runs["now"] = now
    for (suite, noise, method), group in runs.groupby(["suite", "noise", "method"]):
        changed = group[group.recovered != group.now]
        print(f"{suite} noise {noise} {method}: exact {100 * group.recovered.mean():.1f} % -> "
              f"{100 * group.now.mean():.1f} % of {len(group)}"
              + "".join(f"\n  {r.problem}: {r.recovered} -> {r.now}"
                        for r in changed.itertuples()))


if __name__ == "__main__":
    main()
