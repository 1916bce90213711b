"""``chatsr discover``: a formula for a column of a CSV file or a shipped data set."""

from __future__ import annotations

import argparse
import os
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


def _read_csv(path: Path):
    """The table in the CSV file ``path``, or a ``ValueError`` saying why there is none."""
    import pandas as pd

    with path.open("rb") as file:
        start = file.read(1024).lstrip()
    if b"\0" in start:
        raise ValueError(f"{path} is a binary file, not a CSV file")
    if start[:1] in (b"{", b"["):
        raise ValueError(f"{path} looks like JSON, not a CSV file: DATA must be a CSV file "
                         f"with a header row (pandas: DataFrame.to_csv)")
    try:
        frame = pd.read_csv(path, comment="#")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: DATA must be a CSV file with a header row and data "
                         f"rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "not text"
        raise ValueError(f"{path} is not a readable CSV file ({reason})") from None
    if frame.empty:
        raise ValueError(f"{path} has a header row ({', '.join(map(str, frame.columns))}) but "
                         f"no data rows")
    return frame


def _read_table(args: argparse.Namespace):
    """``X``, ``y``, the default prompt and the label columns left out, from ``args.data``
    and ``args.target``."""
    from chatsr.data.datasets import DATASETS, label_columns

    path = Path(args.data)
    if path.is_dir():
        raise ValueError(f"DATA {args.data!r} is a folder, not a CSV file")
    if path.is_file():
        frame = _read_csv(path)
        target, prompt = args.target or frame.columns[-1], None
    elif args.data in DATASETS:
        dataset = DATASETS[args.data]
        frame = dataset.frame().drop(columns=dataset.labels)  # its labels: no news to report
        target, prompt = args.target or dataset.target, dataset.prompt
    else:
        raise ValueError(f"{args.data}: no such file, nor a shipped data set "
                         f"({', '.join(DATASETS)})")
    if target not in frame.columns:
        raise ValueError(f"no column {target!r} in {args.data}; columns: {list(frame.columns)}")
    labels = label_columns(frame)
    if target in labels:
        raise ValueError(f"the target column {target!r} of {args.data} is not numeric "
                         f"({frame[target].dtype}); choose a numeric one with --target")
    frame = frame.drop(columns=labels)
    if frame.shape[1] < 2:
        raise ValueError(f"{args.data} has no numeric column besides the target {target!r} "
                         f"to explain it with (non-numeric: {labels})")
    prompt = prompt if args.prompt is None else (args.prompt or None)
    return frame.drop(columns=[target]), frame[target], prompt, labels


def _check_plot(path: Path | None) -> None:
    """Raise ``ValueError`` unless a plot can be saved to ``path``: checked before the fit."""
    if path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if path.is_dir():
        raise ValueError(f"--plot {str(path)!r} is a folder; give a file name, e.g. fit.png")
    if not path.parent.is_dir():
        raise ValueError(f"--plot {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    if path.suffix.lower().lstrip(".") not in formats:
        raise ValueError(f"--plot {str(path)!r} must end in a format matplotlib writes: "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"--plot {str(path)!r}: the folder {str(path.parent)!r} is not "
                         f"writable")


def run_discover(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``chatsr discover``; a problem with the data, the options, the model folder or the
    plot's file is a ``ValueError`` raised before the fit starts."""
    import json

    import sympy

    from chatsr.model.pretrained import resolve_model
    from chatsr.model.processing import ChatSRProcessor, user_prompt

    X, y, prompt, labels = _read_table(args)
    _check_plot(args.plot)
    model, tokenizer = resolve_model(args.model)
    ChatSRProcessor.for_model(tokenizer, model).encode_prompt(user_prompt(prompt))

    from chatsr.estimator import ChatSRRegressor

    est = ChatSRRegressor((model, tokenizer), num_candidates=args.num_candidates,
                          operators=args.operators, exclude=args.exclude,
                          time_budget=args.time_budget, random_state=args.seed)
    est.fit(X, y, prompt=prompt)
    if labels:
        print(f"chatsr discover: ignoring non-numeric column(s) {labels}", file=sys.stderr)
    table = est.equations_[["complexity", "loss", "mse", "r2", "score", "sympy"]]
    best = est.best_
    if args.json:
        rows = [{"complexity": int(r.complexity), "loss": float(r.loss), "mse": float(r.mse),
                 "r2": float(r.r2),
                 "score": float(r.score), "equation": str(r.sympy),
                 "latex": sympy.latex(r.sympy)} for r in table.itertuples()]
        print(json.dumps({"data": args.data, "target": y.name, "variables": list(X.columns),
                          "prompt": prompt, "best": rows[int(best.name)], "equations": rows,
                          "loss": est.loss_, "fit_time": est.fit_time_}, indent=2))
    else:
        def rounded(formula):  # evalf leaves the constants inside functions at full precision
            return formula.xreplace({f: sympy.Float(f, _DIGITS)
                                     for f in formula.atoms(sympy.Float)})

        shown = table.assign(equation=[rounded(e) for e in table["sympy"]]).drop(columns="sympy")
        print(f"{y.name} = {rounded(best['sympy'])}")
        print(f"R² = {best['r2']:.6f}, MSE = {best['mse']:.4g}, complexity {best['complexity']}"
              f", found in {est.fit_time_:.1f} s")
        print(f"\nPareto front (accuracy against complexity; loss: {_LOSS_NAMES[est.loss_]} with "
              f"the AICc penalty for constants):")
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.plot:
        from chatsr.plots import plot_fit

        ax = plot_fit(est, X, y)
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        if not args.json:
            print(f"plot: {args.plot}")
    return 0
