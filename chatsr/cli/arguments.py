"""Argument types shared by the subcommands: argparse turns their ``ArgumentTypeError`` into
"argument --x: message" and exit status 2.

>>> positive_int("3"), point_count("10-800"), name_list("add, mul")
(3, (10, 800), ('add', 'mul'))
"""

from __future__ import annotations

import argparse
import json

__all__ = ["json_object", "name_list", "noise_list", "non_negative_float", "non_negative_int",
           "operator_list", "point_count", "positive_float", "positive_int"]


# argument types: argparse turns their ArgumentTypeError into "argument --x: message", exit 2
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def point_count(text: str) -> int | tuple[int, int]:
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


def operator_list(text: str) -> dict[str, float]:
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


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return names


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}"
                                         ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


# command line ------------------------------------------------------------------------------------
def noise_list(text: str) -> list[float]:
    try:
        levels = [float(part) for part in text.split(",") if part.strip()] or [-1.0]
    except ValueError:
        levels = [-1.0]
    if any(not level >= 0 for level in levels):
        raise argparse.ArgumentTypeError(f"expected levels >= 0 separated by commas, e.g. "
                                         f"0,0.01, got {text!r}")
    return levels
