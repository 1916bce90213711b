"""The tables the explorer offers: shipped data sets, read on first use, and uploaded CSV files."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from chatsr.data.datasets import Dataset

__all__ = ["Source", "numeric_columns", "read_csv"]


def read_csv(content: bytes) -> pd.DataFrame:
    """A table from the bytes of a CSV file (``#`` lines are comments, as in the shipped data).

    Raises ``ValueError`` with a readable message when the bytes are not a CSV table with at
    least one row and two numeric columns (a target and a feature).

    >>> read_csv(b"# a comment\\nx,y\\n1,2\\n3,4\\n").columns.tolist()
    ['x', 'y']
    >>> read_csv(b"name\\nMars\\n")
    Traceback (most recent call last):
    ...
    ValueError: the file has 0 numeric column(s); it needs a target and at least one feature
    """
    try:
        frame = pd.read_csv(io.BytesIO(content), comment="#")
    except UnicodeDecodeError as error:
        raise ValueError(f"the file is not UTF-8 text ({error.reason} at byte "
                         f"{error.start})") from None
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty") from None
    except pd.errors.ParserError as error:
        raise ValueError(f"the file is not a valid CSV table: {error}") from None
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise ValueError("the file has a header but no rows")
    numeric = numeric_columns(frame)
    if len(numeric) < 2:
        raise ValueError(f"the file has {len(numeric)} numeric column(s); it needs a target "
                         f"and at least one feature")
    return frame


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that hold numbers, in order.

    >>> numeric_columns(pd.DataFrame({"name": ["Mars"], "a": [1.52], "period": [1.88]}))
    ['a', 'period']
    """
    return [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]


@dataclass
class Source:
    """A table to explore: a shipped data set (read on first use) or an uploaded file."""

    description: str
    target: str | None = None
    prompt: str | None = None
    dataset: Dataset | None = None
    table: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        """The table, all columns (a data set's file is read on the first call)."""
        if self.table is None:
            self.table = self.dataset.frame()
        return self.table
