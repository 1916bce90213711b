"""The argument checks of chatsr.symbolic.validation: what they return and how they complain."""

from __future__ import annotations

import numpy as np
import pytest

from chatsr.symbolic.operators import ExpressionError
from chatsr.symbolic.validation import check_array, check_integer, check_shape


def test_check_array_returns_a_float64_array_of_the_values():
    array = check_array("X", [[1, 2], [3, 4]], shape=("n", "d"))
    assert array.dtype == np.float64
    np.testing.assert_array_equal(array, [[1.0, 2.0], [3.0, 4.0]])


def test_check_array_keeps_a_requested_dtype():
    assert check_array("points", np.ones((2, 3)), shape=("n", 3), dtype=np.float32).dtype == \
        np.float32


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (np.ones(3), {"shape": ("n", "d")},
         r"^X must be a 2-D array of shape \(n, d\), got shape \(3,\)$"),
        (np.ones((3, 2)), {"shape": ("n",)},
         r"^X must be a 1-D array of shape \(n,\), got shape \(3, 2\)$"),
        (np.ones((3, 2)), {"shape": ("n", 4)},
         r"^X must be a 2-D array of shape \(n, 4\), got shape \(3, 2\)$"),
        (np.ones((0, 2)), {"shape": ("n", "d")},
         r"^X must hold at least 1 point, got shape \(0, 2\)$"),
        (np.array([[1.0, np.inf], [np.nan, 2.0]]), {"shape": ("n", "d")},
         r"^X must be finite, but 2 of its 4 values are NaN or inf \(first at X\[0, 1\]\)$"),
        ([["a", "b"]], {"shape": ("n", "d")}, r"^X must be an array of numbers, got list"),
        (np.ones(3), {"shape": ("n", "d"), "hint": "see pack_points"},
         r"got shape \(3,\); see pack_points$"),
    ],
)
def test_check_array_errors_name_the_argument_the_value_and_what_is_expected(value, options,
                                                                            message):
    with pytest.raises(ValueError, match=message):
        check_array("X", value, **options)


def test_check_array_options_relax_the_checks():
    np.testing.assert_array_equal(check_array("yhat", [np.nan], shape=("n",), finite=False),
                                  [np.nan])
    assert check_array("X", np.ones((0, 2)), shape=("n", "d"), allow_empty=True).shape == (0, 2)


def test_check_array_raises_the_requested_error_class():
    with pytest.raises(ExpressionError, match="X must be a 2-D array"):
        check_array("X", np.ones(3), shape=("n", "d"), error=ExpressionError)


def test_check_shape_reads_any_shape_without_the_data():
    check_shape("mask", (2, 10), (2, "num_points"))
    with pytest.raises(ValueError, match=r"^mask must be a 2-D array of shape \(2, 10\), got "
                                         r"shape \(2, 11\); to match points$"):
        check_shape("mask", (2, 11), (2, 10), hint="to match points")


@pytest.mark.parametrize("value", [0, -3, True, 1.0, "2"])
def test_check_integer_rejects_what_is_not_an_integer_of_at_least_1(value):
    with pytest.raises(ValueError, match=f"top_k must be an integer of at least 1, got "
                                         f"{value!r}"):
        check_integer("top_k", value, 1)
