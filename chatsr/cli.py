"""The ``chatsr`` command line: one small function per subcommand, registered in ``COMMANDS``.

Each subcommand is a :class:`Command`: a name, a one-line help, a function that adds its
arguments to its parser and a function that runs it on the parsed arguments and returns the exit
status. Heavy modules are imported inside the run functions, so ``chatsr --help`` stays instant.

>>> import tempfile
>>> main(["generate", "--num-samples", "10", "--max-vars", "1", "--num-points", "20",
...       "--out", tempfile.mkdtemp(), "--quiet"])
0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from .bench import add_bench_arguments, run_bench
from .debugging import add_debug_arguments, run_debug

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


class Command(NamedTuple):
    """A subcommand: ``add_arguments(parser)`` declares it, ``run(args, parser)`` executes it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, argparse.ArgumentParser], int]


# argument types: argparse turns their ArgumentTypeError into "argument --x: message", exit 2
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _point_count(text: str) -> int | tuple[int, int]:
    """``100`` (fixed) or ``10-800`` / ``10,800`` (a log-uniform range)."""
    parts = text.replace(",", "-").split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 1 or values[0] > values[-1]:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (e.g. 100) or a range LOW-HIGH (e.g. 10-800), "
            f"got {text!r}")
    return values[0] if len(values) == 1 else (values[0], values[1])


def _operator_list(text: str) -> dict[str, float]:
    """``add,mul,sin`` (weight 1 each) or ``add:1,mul:1,sin:0.3``."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected NAME or NAME:WEIGHT items separated by commas, got {item!r}") from None
    if not weights:
        raise argparse.ArgumentTypeError("expected at least one operator, e.g. add,mul,sin")
    return weights


# generate --------------------------------------------------------------------------------------
def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-samples", type=_positive_int, required=True,
                        help="samples in all three splits together")
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for train/val/test files (created if missing)")
    parser.add_argument("--max-vars", type=_positive_int, default=3,
                        help="most variables in a formula (default: 3)")
    parser.add_argument("--max-length", type=_positive_int, default=15,
                        help="most tokens in a formula (default: 15)")
    parser.add_argument("--min-length", type=_positive_int, default=1,
                        help="fewest tokens in a formula (default: 1)")
    parser.add_argument("--max-dims", type=_positive_int, default=10,
                        help="x columns in data_points, unused ones zero (default: 10)")
    parser.add_argument("--num-points", type=_point_count, default=(10, 800),
                        help="points per sample: N, or LOW-HIGH drawn log-uniformly "
                             "(default: 10-800)")
    parser.add_argument("--noise", type=_non_negative_float, default=0.0,
                        help="Gaussian noise on y, relative to std(y) (default: 0)")
    parser.add_argument("--operators", type=_operator_list, default=None,
                        help="operators and optional weights, e.g. add,mul,sin:0.3 "
                             "(default: all, with built-in weights)")
    parser.add_argument("--keep-benchmarks", action="store_true",
                        help="do not remove the Nguyen and Feynman skeletons")
    parser.add_argument("--seed", type=_non_negative_int, default=0,
                        help="random seed; the output depends on it alone (default: 0)")
    parser.add_argument("--workers", type=_positive_int, default=1,
                        help="processes (default: 1)")
    parser.add_argument("--format", choices=("json", "jsonl"), default="jsonl",
                        help="a JSON list per file, or JSON lines (default: jsonl)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import dataclasses

    from .generator import GeneratorConfig, generate_samples
    from .samples import write_splits

    try:
        config = GeneratorConfig(
            max_length=args.max_length, min_length=args.min_length, max_vars=args.max_vars,
            max_dims=args.max_dims, num_points=args.num_points, noise=args.noise,
            operators=args.operators, exclude=None if args.keep_benchmarks else "benchmarks")
    except ValueError as error:  # a combination of values no single argument type can check
        message = str(error)
        for field in dataclasses.fields(GeneratorConfig):  # speak in the options' names
            message = message.replace(field.name, "--" + field.name.replace("_", "-"))
        parser.error(message)
    try:
        samples = generate_samples(args.num_samples, config, seed=args.seed,
                                   workers=args.workers, progress=not args.quiet)
    except RuntimeError as error:  # too few distinct formulas for the settings
        print(f"chatsr generate: error: {error}", file=sys.stderr)
        return 1
    paths = write_splits(samples, args.out, fmt=args.format)
    if not args.quiet:
        for split, path in paths.items():
            print(f"{split}: {path}")
    return 0


# train -----------------------------------------------------------------------------------------
# (option, type, help); defaults live in TrainingConfig, and an option left out keeps its default
_TRAIN_OPTIONS = (
    ("output-dir", str, "checkpoints, final model, history and loss curve (default: runs/chatsr)"),
    ("train-file", str, "samples file from `chatsr generate` (default: generate on the fly)"),
    ("val-file", str, "validation samples (default: a generator stream with another seed)"),
    ("init-from", str, "fine-tune this trained model directory (default lr then 1e-4)"),
    ("max-steps", _positive_int, "optimizer steps (default: 1000)"),
    ("batch-size", _positive_int, "global samples per step, split between processes (64)"),
    ("micro-batch-size", _positive_int, "samples per forward pass (default: 16)"),
    ("max-points", _positive_int, "points per sample seen in training (default: 100)"),
    ("lr", float, "LM learning rate (default: 1e-3, or 1e-4 with --init-from)"),
    ("encoder-lr", float, "set-encoder learning rate (default: --lr)"),
    ("projector-lr", float, "projector learning rate (default: --lr)"),
    ("weight-decay", _non_negative_float, "AdamW weight decay on matrices (default: 0.01)"),
    ("warmup-ratio", _non_negative_float, "share of steps with linear warm-up (0.03)"),
    ("max-grad-norm", _non_negative_float, "gradient clipping (default: 1.0)"),
    ("eval-every", _non_negative_int, "steps between evaluations, 0: never (default: 200)"),
    ("eval-samples", _positive_int, "validation samples per evaluation (default: 64)"),
    ("save-every", _non_negative_int, "steps between checkpoints, 0: final only (500)"),
    ("save-total-limit", _positive_int, "checkpoints kept (default: 2)"),
    ("log-every", _positive_int, "steps between log lines (default: 10)"),
    ("seed", _non_negative_int, "initialisation, data order, point subsets (default: 0)"),
)


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}"
                                         ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="a JSON file of training options; "
                        "options given on the command line override it")
    for name, kind, help_text in _TRAIN_OPTIONS:
        parser.add_argument("--" + name, type=kind, help=help_text)
    parser.add_argument("--generator", type=_json_object,
                        help='generator options for on-the-fly data, e.g. \'{"max_vars": 2}\'')
    parser.add_argument("--model", type=_json_object,
                        help='model size: \'{"encoder": {...}, "text": {...}}\' or '
                             '\'{"tiny": true}\'')
    parser.add_argument("--freeze", type=lambda t: tuple(filter(None, t.split(","))),
                        help="parts kept fixed: encoder,projector,lm,embeddings")
    parser.add_argument("--no-resume", dest="resume", action="store_false", default=None,
                        help="start afresh even if OUTPUT_DIR holds a checkpoint")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar")


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .training import TrainingConfig, train

    names = [n.replace("-", "_") for n, _, _ in _TRAIN_OPTIONS]
    names += ["generator", "model", "freeze", "resume", "progress"]
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    try:
        config = (TrainingConfig.from_json(args.config, **given) if args.config
                  else TrainingConfig(**given))
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    history = train(config)
    losses = [row["loss"] for row in history if "loss" in row]
    if losses and os.environ.get("RANK", "0") == "0":
        print(f"trained to step {history[-1]['step']}: loss {losses[-1]:.4f}; "
              f"model in {config.output_dir}")
    return 0


_DIGITS = 6  # significant digits of the constants printed (--json gives them all)


def _name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return names


def _discover_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA",
                        help="a CSV file with a header row, or a shipped data set "
                             "(chatsr.datasets: kepler)")
    parser.add_argument("--target", help="the column to explain (default: the data set's "
                        "target, or the last column of a CSV file)")
    parser.add_argument("--prompt", help="context for the model, e.g. 'x1 is a temperature'"
                        " (default: the shipped data set's prompt; '' for none)")
    parser.add_argument("--time-budget", type=_positive_float, default=10.0,
                        help="seconds of search after the first proposals (default: 10)")
    parser.add_argument("--num-candidates", type=_positive_int, default=64,
                        help="formulas the model proposes first (default: 64)")
    parser.add_argument("--operators", type=_name_list,
                        help="allowed operators, e.g. add,mul,sin (default: all)")
    parser.add_argument("--exclude", type=_name_list, default=(),
                        help="forbidden operators, e.g. exp,log")
    parser.add_argument("--model", type=Path, help="a model directory (default: the shipped "
                        "model)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="(default: 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="save a fit-vs-data plot")


def _read_table(args: argparse.Namespace):
    """``X``, ``y`` and the default prompt named by ``args.data`` and ``args.target``."""
    import pandas as pd

    from .datasets import DATASETS, label_columns

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


def _discover(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import json

    import sympy

    from .regressor import ChatSRRegressor

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
        from .plots import plot_fit

        ax = plot_fit(est, X, y)
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        if not args.json:
            print(f"plot: {args.plot}")
    return 0


_LOSS_NAMES = {"mse": "mean squared error", "log": "mean squared error of log(y)"}

COMMANDS: list[Command] = [
    Command("generate", "write synthetic train/val/test samples in ChatSR's JSON format",
            _generate_arguments, _generate),
    Command("train", "train or fine-tune a chatsr model (FSDP under torchrun)",
            _train_arguments, _train),
    Command("discover", "find a formula for a column of a CSV file (or a shipped data set)",
            _discover_arguments, _discover),
    Command("debug", "one sample through a model: loss per token, first-token "
            "probabilities, the generation step by step", add_debug_arguments, run_debug),
    Command("bench", "benchmark chatsr and gplearn on Nguyen and AI-Feynman problems: "
            "R², symbolic recovery, fit time", add_bench_arguments, run_bench),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``chatsr`` parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="chatsr", description="Symbolic regression with a multimodal language model.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        # also after the subcommand, where `python -m chatsr.train -v` puts it
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log progress details")
        sub.set_defaults(run=command.run, parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``chatsr`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad arguments print a usage message and exit with status 2, as argparse does.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.run(args, args.parser)


if __name__ == "__main__":
    sys.exit(main())
