"""Argument types shared by the subcommands: argparse turns their ``ArgumentTypeError`` into
"argument --x: message" and exit status 2.

>>> positive_int("3"), point_count("10-800"), name_list("add, mul")
(3, (10, 800), ('add', 'mul'))
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["json_object", "name_list", "noise_list", "non_negative_float", "non_negative_int",
           "number_type", "operator_list", "point_count", "positive_float", "positive_int"]


def number_type(kind: type[int] | type[float], *, positive: bool) -> Callable[[str], Any]:
    """An argument type that reads a finite ``kind`` (int or float), > 0 if ``positive`` else
    >= 0, and otherwise raises ``ArgumentTypeError`` saying what it expected.

    >>> number_type(float, positive=True)("2.5")
    2.5
    >>> number_type(int, positive=False)("-1")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: expected an integer >= 0, got '-1'
    """
    noun = "integer" if kind is int else "number"
    expected = f"a positive {noun}" if positive else f"{'an' if kind is int else 'a'} {noun} >= 0"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = f"{'positive' if positive else 'non_negative'}_{kind.__name__}"
    return parse


positive_int = number_type(int, positive=True)
non_negative_int = number_type(int, positive=False)
positive_float = number_type(float, positive=True)
non_negative_float = number_type(float, positive=False)


def point_count(text: str) -> int | tuple[int, int]:
    """``100`` (fixed) or ``10-800`` / ``10,800`` (a log-uniform range)."""
    parts = text.replace(",", "-").split("-")
    try:
        values = [positive_int(p) for p in parts]
    except argparse.ArgumentTypeError:
        values = []
    if len(values) not in (1, 2) or values[0] > values[-1]:
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
            weights[name] = non_negative_float(weight) if weight else 1.0
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected NAME or NAME:WEIGHT (a number >= 0) items separated by commas, got "
                f"{item!r}") from None
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


def noise_list(text: str) -> list[float]:
    """``0,0.01``: noise levels, each >= 0."""
    try:
        levels = [non_negative_float(part) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError:
        levels = []
    if not levels:
        raise argparse.ArgumentTypeError(f"expected levels >= 0 separated by commas, e.g. "
                                         f"0,0.01, got {text!r}")
    return levels
