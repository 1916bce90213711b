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

    ``value`` must convert to numbers (not text, dates or complex numbers), have the ``shape``
    of :func:`check_shape`, hold at least one point (row) unless ``allow_empty``, and, if
    ``finite``, no NaN or infinity; for a narrower float ``dtype`` (float32), no value beyond
    its range (tiny values that become 0 are fine).
    Errors are ``error`` (a ``ValueError`` subclass): they name ``argument``, say what is
    wrong and what is expected, and end with ``hint`` if one is given.

    >>> check_array("X", [[1, 2], [3, 4]], shape=("n_points", "n_columns")).dtype
    dtype('float64')
    >>> check_array("X", [1.0, 2.0], shape=("n_points", "n_columns"))
    Traceback (most recent call last):
        ...
    ValueError: X must be a 2-D array of shape (n_points, n_columns), got shape (2,)
    """
    array = _as_numbers(argument, value, dtype, hint, error)
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
    narrow = np.dtype(dtype)
    if narrow.kind == "f" and narrow.itemsize < 8:
        # finite in float64 but beyond a narrower float: the cast would make it inf, which
        # the check above would misreport as an infinite input
        too_big = np.abs(array) > np.finfo(narrow).max
        if too_big.any():
            index = tuple(int(i) for i in np.argwhere(too_big)[0])
            raise error(_with_hint(
                f"{argument}[{', '.join(map(str, index))}] = {array[index]:.3g} is beyond the "
                f"range of {narrow.name} (±{np.finfo(narrow).max:.3g}): rescale the data",
                hint))
        with np.errstate(under="ignore"):  # values below its smallest number become 0: finite
            array = array.astype(narrow)
    return array


def _as_numbers(argument: str, value: object, dtype: DTypeLike, hint: str,
                error: type[ValueError]) -> np.ndarray:
    """``value`` as float64 (or ``dtype`` if it is no float), refusing text, dates and complex
    numbers, which numpy would convert or misreport."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise error(_with_hint(f"{argument} must be an array of numbers, got "
                               f"{type(value).__name__} ({exc})", hint)) from None
    kind = raw.dtype.kind
    if kind == "O":
        text = next((v for v in raw.flat if isinstance(v, (str, bytes))), None)
        kind = "U" if text is not None else kind
        missing = [i for i, v in enumerate(raw.flat) if v is None]
        if missing:  # numpy reads None as NaN: say what the user wrote
            first = ", ".join(map(str, np.unravel_index(missing[0], raw.shape)))
            raise error(_with_hint(f"{argument} must be an array of numbers, but "
                                   f"{len(missing)} of its {raw.size} values are missing "
                                   f"(None; first at {argument}[{first}])", hint))
    else:
        text = raw.flat[0] if raw.size else ""
    if kind in "USa":  # numpy would read "1.5" as 1.5 and report "a" as a conversion error
        raise error(_with_hint(f"{argument} must be an array of numbers, got "
                               f"{type(value).__name__} holding text (e.g. {str(text)[:20]!r}): "
                               "convert the columns to numbers first", hint))
    if kind in "mM":
        raise error(_with_hint(f"{argument} must be an array of numbers, got "
                               f"{type(value).__name__} of dates or durations ({raw.dtype}): "
                               "convert them to numbers (e.g. seconds) first", hint))
    if kind == "c":
        raise error(_with_hint(f"{argument} must be an array of real numbers, got complex "
                               f"numbers ({raw.dtype})", hint))
    wide = np.float64 if np.dtype(dtype).kind == "f" else dtype
    try:
        return np.asarray(raw, dtype=wide)
    except (TypeError, ValueError) as exc:
        raise error(_with_hint(f"{argument} must be an array of numbers, got "
                               f"{type(value).__name__} ({exc})", hint)) from None


def _with_hint(message: str, hint: str) -> str:
    return f"{message}; {hint}" if hint else message
