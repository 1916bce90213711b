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

__all__ = ["DATASETS", "Dataset", "label_columns", "load_dataset"]

_FOLDER = Path(__file__).parents[1] / "assets" / "datasets"


def label_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that name rows rather than measure them (not numeric)."""
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]


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
    """The features ``X`` (numeric columns but the target) and the target ``y`` of ``name``."""
    if name not in DATASETS:
        raise KeyError(f"no shipped data set {name!r}; choose from {sorted(DATASETS)}")
    dataset = DATASETS[name]
    frame = dataset.frame().drop(columns=dataset.labels)
    return frame.drop(columns=[dataset.target]), frame[dataset.target]
