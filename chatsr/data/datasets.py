"""Small real data sets shipped with chatsr, each with its source, for examples and tutorials.

Each is a CSV file under ``chatsr/assets/datasets`` whose ``#`` header lines cite the source.
:func:`load_dataset` returns the numeric feature columns and the target, ready for
``ChatSRRegressor().fit(X, y)``; non-numeric columns (a planet's name) are labels, kept in
``Dataset.labels``.

>>> X, y = load_dataset("kepler")
>>> list(X.columns), y.name, len(y)
(['a'], 'period', 8)
>>> DATASETS["kepler"].describe().splitlines()[0]
"kepler: Kepler's third law: the planets' semi-major axes and sidereal orbital periods."
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["DATASETS", "Dataset", "check_numeric_columns", "label_columns", "load_dataset"]

_FOLDER = Path(__file__).parents[1] / "assets" / "datasets"


def label_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that are not real numbers measured on a scale, so that a
    formula cannot take them: text, dates, durations, periods, categories, booleans and complex
    numbers (pandas counts booleans and complex numbers as numeric, as numbers they mislead).

    >>> frame = pd.DataFrame({"planet": ["Mercury"], "a": [0.39], "moons": [0],
    ...                       "seen": pd.to_datetime(["1631-11-07"]), "ringed": [False]})
    >>> label_columns(frame)
    ['planet', 'seen', 'ringed']
    """
    return [name for name, dtype in frame.dtypes.items() if not _is_measurement(dtype)]


def check_numeric_columns(argument: str, frame: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming the columns of ``frame`` (the argument ``argument``) that
    :func:`label_columns` finds, with their types and how to turn them into numbers.

    >>> check_numeric_columns("X", pd.DataFrame({"a": [0.39], "ringed": [False]}))
    Traceback (most recent call last):
        ...
    ValueError: X has column(s) that are not real numbers: 'ringed' (bool); convert them (a \
date or duration: e.g. days since the first, (t - t.min()).dt.days; a category or boolean: one \
0/1 column per value) or drop them
    """
    bad = [f"{name!r} ({dtype})" for name, dtype in frame.dtypes.items()
           if not _is_measurement(dtype)]
    if bad:
        raise ValueError(f"{argument} has column(s) that are not real numbers: "
                         f"{', '.join(bad)}; convert them (a date or duration: e.g. days since "
                         f"the first, (t - t.min()).dt.days; a category or boolean: one 0/1 "
                         f"column per value) or drop them")


def _is_measurement(dtype: object) -> bool:
    # integer dtypes exclude booleans; float dtypes exclude complex ones
    return pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype)


@dataclass(frozen=True)
class Dataset:
    """A shipped data set: its CSV file, the default target column and a prompt for the model."""

    name: str
    target: str  # the column to explain
    prompt: str | None = None  # context for the model's text channel

    @property
    def path(self) -> Path:
        """The CSV file."""
        return _FOLDER / f"{self.name}.csv"

    def frame(self) -> pd.DataFrame:
        """All columns, labels included."""
        return pd.read_csv(self.path, comment="#")

    @property
    def labels(self) -> list[str]:
        """Columns that name rows rather than measure them."""
        return label_columns(self.frame())

    def describe(self) -> str:
        """What the data are and where they come from (the CSV's header comments)."""
        lines = [line[1:].strip() for line in self.path.read_text().splitlines()
                 if line.startswith("#")]
        return f"{self.name}: " + "\n".join(lines)


DATASETS: dict[str, Dataset] = {
    "kepler": Dataset("kepler", target="period",
                      prompt="All values of x1 are positive."),
    "n2o5_arrhenius": Dataset("n2o5_arrhenius", target="k",
                              prompt="It contains exp. All values of x1 are positive."),
}


def load_dataset(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """The features ``X`` (numeric columns but the target) and the target ``y`` of ``name``.

    >>> load_dataset("mars")
    Traceback (most recent call last):
        ...
    ValueError: no shipped data set 'mars'; the data sets are: kepler, n2o5_arrhenius
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"no shipped data set {name!r}; the data sets are: "
                         f"{', '.join(sorted(DATASETS))}")
    dataset = DATASETS[name]
    frame = dataset.frame().drop(columns=dataset.labels)
    return frame.drop(columns=[dataset.target]), frame[dataset.target]
