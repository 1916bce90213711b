"""``chatsr discover``: a formula for a column of a CSV file or a shipped data set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chatsr.cli.arguments import name_list, non_negative_int, positive_float, positive_int

__all__ = ["add_discover_arguments", "run_discover"]

_DIGITS = 6  # significant digits of the constants printed (--json gives them all)

_LOSS_NAMES = {"mse": "mean squared error", "log": "mean squared error of log(y)"}



def add_discover_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA",
                        help="a CSV file with a header row, or a shipped data set "
                             "(chatsr.data.datasets: kepler)")
    parser.add_argument("--target", help="the column to explain (default: the data set's "
                        "target, or the last column of a CSV file)")
    parser.add_argument("--prompt", help="context for the model, e.g. 'x1 is a temperature'"
                        " (default: the shipped data set's prompt; '' for none)")
    parser.add_argument("--time-budget", type=positive_float, default=10.0,
                        help="seconds of search after the first proposals (default: 10)")
    parser.add_argument("--num-candidates", type=positive_int, default=64,
                        help="formulas the model proposes first (default: 64)")
    parser.add_argument("--operators", type=name_list,
                        help="allowed operators, e.g. add,mul,sin (default: all)")
    parser.add_argument("--exclude", type=name_list, default=(),
                        help="forbidden operators, e.g. exp,log")
    parser.add_argument("--model", type=Path, help="a model directory (default: the shipped "
                        "model)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="(default: 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="save a fit-vs-data plot")


def _read_table(args: argparse.Namespace):
    """``X``, ``y`` and the default prompt named by ``args.data`` and ``args.target``."""
    import pandas as pd

    from chatsr.data.datasets import DATASETS, label_columns

    path = Path(args.data)
    if not path.exists() and args.data in DATASETS:
        dataset = DATASETS[args.data]
        frame = dataset.frame().drop(columns=dataset.labels)
        target, prompt = args.target or dataset.target, dataset.prompt
    elif path.exists():
        frame = pd.read_csv(path, comment="#")
        target, prompt = args.target or frame.columns[-1], None
        labels = [c for c in label_columns(frame) if c != target]
        if labels:
            print(f"chatsr discover: ignoring non-numeric column(s) {labels}", file=sys.stderr)
            frame = frame.drop(columns=labels)
    else:
        raise ValueError(f"{args.data}: no such file, nor a shipped data set "
                         f"({', '.join(DATASETS)})")
    if target not in frame.columns:
        raise ValueError(f"no column {target!r} in {args.data}; columns: {list(frame.columns)}")
    prompt = prompt if args.prompt is None else (args.prompt or None)
    return frame.drop(columns=[target]), frame[target], prompt


def run_discover(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import json

    import sympy

    from chatsr.estimator import ChatSRRegressor

    try:
        X, y, prompt = _read_table(args)
        est = ChatSRRegressor(args.model, num_candidates=args.num_candidates,
                              operators=args.operators, exclude=args.exclude,
                              time_budget=args.time_budget, random_state=args.seed)
        est.fit(X, y, prompt=prompt)
    except (ValueError, FileNotFoundError) as error:
        print(f"chatsr discover: error: {error}", file=sys.stderr)
        return 2
    table = est.equations_[["complexity", "loss", "mse", "r2", "score", "equation"]]
    best = est.best_
    if args.json:
        rows = [{"complexity": int(r.complexity), "loss": float(r.loss), "mse": float(r.mse),
                 "r2": float(r.r2),
                 "score": float(r.score), "equation": str(r.equation),
                 "latex": sympy.latex(r.equation)} for r in table.itertuples()]
        print(json.dumps({"data": args.data, "target": y.name, "variables": list(X.columns),
                          "prompt": prompt, "best": rows[int(best.name)], "equations": rows,
                          "loss": est.loss_, "fit_time": est.fit_time_}, indent=2))
    else:
        def rounded(formula):  # evalf leaves the constants inside functions at full precision
            return formula.xreplace({f: sympy.Float(f, _DIGITS)
                                     for f in formula.atoms(sympy.Float)})

        shown = table.assign(equation=[rounded(e) for e in table["equation"]])
        print(f"{y.name} = {rounded(best['equation'])}")
        print(f"R² = {best['r2']:.6f}, MSE = {best['mse']:.4g}, complexity {best['complexity']}"
              f", found in {est.fit_time_:.1f} s")
        print(f"\nPareto front (accuracy against complexity; loss: {_LOSS_NAMES[est.loss_]} with "
              f"the AICc penalty for constants):")
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        from chatsr.plots import plot_fit

        ax = plot_fit(est, X, y)
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        if not args.json:
            print(f"plot: {args.plot}")
    return 0
