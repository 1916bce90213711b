"""The ``chatsr`` command line (``python -m chatsr.cli`` works too, e.g. under ``torchrun -m``)."""

from chatsr.cli.main import COMMANDS, Command, build_parser, main

__all__ = ["COMMANDS", "Command", "build_parser", "main"]
