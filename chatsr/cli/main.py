"""The ``chatsr`` command line: one small function per subcommand, registered in ``COMMANDS``.

Each subcommand is a :class:`Command`: a name, a one-line help, a function that adds its
arguments to its parser and a function that runs it on the parsed arguments and returns the exit
status; it raises ``ValueError`` (or calls ``parser.error``) for a user's mistake, which becomes
one line. Heavy modules are imported inside the run functions, so ``chatsr --help`` stays
instant.

>>> import tempfile
>>> main(["generate", "--num-samples", "10", "--max-vars", "1", "--num-points", "20",
...       "--out", tempfile.mkdtemp(), "--quiet"])
0
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple, NoReturn

from chatsr.cli.bench import add_bench_arguments, run_bench
from chatsr.cli.debug import add_debug_arguments, run_debug
from chatsr.cli.discover import add_discover_arguments, run_discover
from chatsr.cli.generate import add_generate_arguments, run_generate
from chatsr.cli.train import add_train_arguments, run_train

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


class Command(NamedTuple):
    """A subcommand: ``add_arguments(parser)`` declares it, ``run(args, parser)`` executes it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, argparse.ArgumentParser], int]


COMMANDS: list[Command] = [
    Command("generate", "write synthetic train/val/test samples in ChatSR's JSON format",
            add_generate_arguments, run_generate),
    Command("train", "train or fine-tune a chatsr model (FSDP under torchrun)",
            add_train_arguments, run_train),
    Command("discover", "find a formula for a column of a CSV file (or a shipped data set)",
            add_discover_arguments, run_discover),
    Command("debug", "one sample through a model: loss per token, first-token "
            "probabilities, the generation step by step", add_debug_arguments, run_debug),
    Command("bench", "benchmark chatsr and gplearn on Nguyen and AI-Feynman problems: "
            "R², symbolic recovery, fit time", add_bench_arguments, run_bench),
]


class _OneLineParser(argparse.ArgumentParser):
    """argparse's parser, but an error is one line, ``chatsr COMMAND: error: ...``, without
    the usage block above it (``--help`` shows that)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``chatsr`` parser with every subcommand of :data:`COMMANDS`."""
    parser = _OneLineParser(
        prog="chatsr", description="Symbolic regression with a multimodal language model.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details, and show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        # also after the subcommand, where `python -m chatsr.cli train -v` puts it
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log progress details, and show the traceback of an error")
        sub.set_defaults(run=command.run, parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``chatsr`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    A user's error prints one line, ``chatsr COMMAND: error: ...``, and gives status 2: bad
    arguments (argparse exits), and the ``ValueError``, ``TypeError`` or ``OSError`` (a missing
    file, a folder given as a file) a command raises on its input. ``--verbose`` shows the
    traceback instead.

    >>> main(["discover", "no-such-file.csv"])
    2
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args, args.parser)
    except (ValueError, TypeError, OSError) as error:  # ExpressionError is a ValueError
        if args.verbose:
            raise
        print(f"{args.parser.prog}: error: {_one_line(_describe(error))}", file=sys.stderr)
        return 2


def _describe(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"  # not "[Errno 2] No such file ..."
    return str(error) or type(error).__name__


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
