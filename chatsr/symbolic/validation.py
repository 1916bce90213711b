"""Checks of arguments at the library's boundary, with errors that name the argument, the bad
value and what is expected.

>>> check_integer("top_k", 3, 1)
>>> check_integer("top_k", 0, 1)
Traceback (most recent call last):
    ...
ValueError: top_k must be an integer of at least 1, got 0
>>> check_array("y", [1.0, float("nan")], shape=("n_points",))
Traceback (most recent call last):
    ...
ValueError: y must be finite, but 1 of its 2 values are NaN or inf (first at y[1])
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["check_array", "check_integer", "check_shape"]

# An expected shape: an int is a required length, a str names a free axis ("n_points").
Shape = Sequence[int | str]


def check_integer(argument: str, value: object, least: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) ``>= least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{argument} must be an integer of at least {least}, got {value!r}")


def check_shape(argument: str, actual: Sequence[int], expected: Shape, *, hint: str = "",
                error: type[ValueError] = ValueError) -> None:
    """Raise ``error`` unless ``actual`` has ``len(expected)`` axes and the lengths that
    ``expected`` fixes; it takes any shape, a torch tensor's too, without touching the data.

    >>> check_shape("mask", (2, 10), (2, 10))
    >>> check_shape("points", (10, 4), ("batch", "num_points", 4), hint="add a batch axis")
    Traceback (most recent call last):
        ...
    ValueError: points must be a 3-D array of shape (batch, num_points, 4), got shape (10, 4); \
add a batch axis
    """
    actual = tuple(int(n) for n in actual)
    fits = len(actual) == len(expected) and all(
        isinstance(want, str) or got == want for got, want in zip(actual, expected, strict=True))
    if not fits:
        spec = "(" + ", ".join(map(str, expected)) + ("," if len(expected) == 1 else "") + ")"
        raise error(_with_hint(f"{argument} must be a {len(expected)}-D array of shape {spec}, "
                               f"got shape {actual}", hint))


def check_array(argument: str, value: object, *, shape: Shape, finite: bool = True,
                allow_empty: bool = False, dtype: DTypeLike = np.float64, hint: str = "",
                error: type[ValueError] = ValueError) -> np.ndarray:
    """``value`` as an array of ``dtype`` (float64 by default), after checking it.

    ``value`` must convert to numbers, have the ``shape`` of :func:`check_shape`, hold at
    least one point (row) unless ``allow_empty``, and, if ``finite``, no NaN or infinity.
    Errors are ``error`` (a ``ValueError`` subclass): they name ``argument``, say what is
    wrong and what is expected, and end with ``hint`` if one is given.

    >>> check_array("X", [[1, 2], [3, 4]], shape=("n_points", "n_columns")).dtype
    dtype('float64')
    >>> check_array("X", [1.0, 2.0], shape=("n_points", "n_columns"))
    Traceback (most recent call last):
        ...
    ValueError: X must be a 2-D array of shape (n_points, n_columns), got shape (2,)
    """
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise error(_with_hint(f"{argument} must be an array of numbers, got "
                               f"{type(value).__name__} ({exc})", hint)) from None
    check_shape(argument, array.shape, shape, hint=hint, error=error)
    if not allow_empty and array.size == 0:
        raise error(_with_hint(f"{argument} must hold at least 1 point, got shape "
                               f"{array.shape}", hint))
    if finite:
        bad = ~np.isfinite(array)
        if bad.any():
            first = ", ".join(str(int(i)) for i in np.argwhere(bad)[0])
            raise error(_with_hint(f"{argument} must be finite, but {np.count_nonzero(bad)} of "
                                   f"its {array.size} values are NaN or inf (first at "
                                   f"{argument}[{first}])", hint))
    return array


def _with_hint(message: str, hint: str) -> str:
    return f"{message}; {hint}" if hint else message
