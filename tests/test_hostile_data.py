"""Data sets and DataFrame columns that are not numbers: named, never used as numbers."""

import numpy as np
import pandas as pd
import pytest

from chatsr.data.datasets import DATASETS, check_numeric_columns, label_columns, load_dataset
from chatsr.pipeline import column_names

COLUMNS = {
    "date": pd.date_range("2020-01-01", periods=3),
    "zoned": pd.date_range("2020-01-01", periods=3, tz="UTC"),
    "duration": pd.to_timedelta([1, 2, 3], unit="D"),
    "period": pd.period_range("2020-01", periods=3, freq="M"),
    "flag": [True, False, True],
    "nullable_flag": pd.array([True, None, False], dtype="boolean"),
    "category": pd.Categorical([1.0, 2.0, 3.0]),
    "complex": np.array([1 + 1j, 2, 3]),
    "text": ["a", "b", "c"],
    "string": pd.array(["a", "b", "c"], dtype="string"),
}
NUMBERS = {"x": [1.0, 2.0, 3.0], "n": [1, 2, 3], "small": np.array([1, 2, 3], dtype=np.uint8),
           "nullable": pd.array([1, None, 3], dtype="Int64")}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_a_column_that_is_no_real_number_is_a_label(name):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], name: COLUMNS[name]})
    assert label_columns(frame) == [name]
    with pytest.raises(ValueError, match=rf"X has column\(s\) that are not real numbers: "
                                         rf"'{name}' \("):
        check_numeric_columns("X", frame)
    # the estimator names it instead of fitting it as numbers
    with pytest.raises(ValueError, match=rf"\['{name}'\] of X are not numeric"):
        column_names(frame)


def test_integer_and_float_columns_are_numbers():
    frame = pd.DataFrame(NUMBERS)
    assert label_columns(frame) == []
    check_numeric_columns("X", frame)
    assert column_names(frame) == list(NUMBERS)


def test_duplicate_column_names_do_not_break_the_check():
    frame = pd.DataFrame([[1.0, "a", 2.0]], columns=["x", "x", "y"])
    assert label_columns(frame) == ["x"]


@pytest.mark.parametrize("name", ["nope", "Kepler", "", None, 3, ("kepler",)])
def test_an_unknown_data_set_lists_the_available_ones(name):
    with pytest.raises(ValueError, match="no shipped data set .*; the data sets are: "
                                         + ", ".join(sorted(DATASETS))):
        load_dataset(name)
