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


@pytest.mark.parametrize(("value", "message"), [
    (["1.5", "2"], r"^y must be an array of numbers, got list holding text \(e\.g\. '1\.5'\)"),
    (np.array([1.0, "x"], dtype=object), r"^y must be an array of numbers, got ndarray holding "
                                          r"text \(e\.g\. 'x'\)"),
    ("abc", r"^y must be an array of numbers, got str holding text"),
    (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"),
     r"^y must be an array of numbers, got ndarray of dates or durations \(datetime64\[D\]\)"),
    ([1 + 2j, 3.0], r"^y must be an array of real numbers, got complex numbers"),
    ([1.0, None, None], r"^y must be an array of numbers, but 2 of its 3 values are missing "
                        r"\(None; first at y\[1\]\)$"),
])
def test_check_array_names_text_dates_complex_and_missing_values(value, message):
    with pytest.raises(ValueError, match=message):
        check_array("y", value, shape=("n",))


def test_tiny_finite_values_are_finite_in_any_float_dtype():
    values = [1e-300, 5e-324, -1e-310, 1.0]
    np.testing.assert_array_equal(check_array("y", values, shape=("n",)), values)
    tiny32 = check_array("points", values, shape=("n",), dtype=np.float32)
    assert tiny32.dtype == np.float32 and np.isfinite(tiny32).all()


def test_values_beyond_float32_are_reported_as_such_not_as_infinite():
    with pytest.raises(ValueError, match=r"^points\[1\] = 1e\+39 is beyond the range of float32 "
                                         r"\(±3\.4e\+38\): rescale the data$"):
        check_array("points", [1.0, 1e39], shape=("n",), dtype=np.float32)
    with pytest.raises(ValueError, match="values are NaN or inf"):
        check_array("points", [1.0, np.inf], shape=("n",), dtype=np.float32)
