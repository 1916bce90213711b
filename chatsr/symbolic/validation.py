"""Checks of arguments at the library's boundary, with errors that name the argument, the bad
value and what is expected.

>>> check_integer("top_k", 3, 1)
>>> check_integer("top_k", 0, 1)
Traceback (most recent call last):
    ...
ValueError: top_k must be an integer of at least 1, got 0
"""

from __future__ import annotations

import numbers

__all__ = ["check_integer"]


def check_integer(argument: str, value: object, least: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) ``>= least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{argument} must be an integer of at least {least}, got {value!r}")
