"""The results table: the Pareto front of candidate formulas and the choice of one, as in PySR.

Candidates are rows with a ``complexity`` (node count) and a ``loss`` (mean squared error). The
front keeps, from the simplest up, each formula that is strictly more accurate than every simpler
one; its ``score`` is the drop in log-loss per added node, ``-Δlog(loss) / Δcomplexity``, which
is large where a little more structure explains much more of the data. :func:`select_best`
picks one row: the most accurate, the best-scoring, or ("best", PySR's default) the
best-scoring among those almost as accurate as the most accurate.

>>> table = pd.DataFrame({"equation": ["x1", "C*x1", "x1 + x1", "C*x1 + C"],
...                       "complexity": [1, 3, 3, 5], "loss": [4.0, 1.0, 2.0, 0.9]})
>>> front = pareto_front(table)
>>> front["equation"].tolist(), front["score"].round(4).tolist()
(['x1', 'C*x1', 'C*x1 + C'], [0.0, 0.6931, 0.0527])
>>> select_best(front)["equation"], select_best(front, model_selection="accuracy")["equation"]
('C*x1', 'C*x1 + C')
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["BEST_LOSS_FACTOR", "ModelSelection", "pareto_front", "penalized_loss", "select_best"]

ModelSelection = Literal["best", "accuracy", "score"]
BEST_LOSS_FACTOR = 1.5  # "best" chooses among rows with loss <= this times the lowest (PySR's)
# log(0) is -inf: an exact formula gets a large finite score instead of an infinite one
_LOSS_FLOOR = np.finfo(np.float64).tiny


def pareto_front(candidates: pd.DataFrame) -> pd.DataFrame:
    """The rows no simpler row matches in accuracy, sorted by complexity, with their score.

    Parameters
    ----------
    candidates
        One row per formula with at least ``complexity`` (whole numbers) and ``loss`` (MSE,
        non-negative); other columns are carried along. Rows whose loss is NaN or infinite are
        left out.

    Returns
    -------
    pandas.DataFrame
        For each complexity the lowest-loss row (the first one on ties), kept only when its loss
        is strictly lower than that of every simpler row; index labels are those of
        ``candidates``. A ``score`` column holds ``-Δlog(loss) / Δcomplexity`` relative to the
        previous row (0 for the first row).

    Examples
    --------
    >>> table = pd.DataFrame({"complexity": [5, 1, 3, 4], "loss": [0.1, 1.0, 0.5, 0.5]})
    >>> front = pareto_front(table)
    >>> front.index.tolist(), front["complexity"].tolist(), front["score"].round(4).tolist()
    ([1, 2, 0], [1, 3, 5], [0.0, 0.3466, 0.8047])
    """
    _check_table(candidates, "candidates", ("complexity", "loss"))
    complexity = pd.to_numeric(candidates["complexity"], errors="coerce").to_numpy(np.float64)
    whole = np.isfinite(complexity) & (complexity == np.round(complexity))
    if not whole.all():
        bad = candidates["complexity"].iloc[np.flatnonzero(~whole)[0]]
        raise ValueError(f"candidates: complexity must hold whole numbers, got {bad}")
    loss = pd.to_numeric(candidates["loss"], errors="coerce").to_numpy(np.float64)
    if (loss < 0).any():
        raise ValueError(f"candidates: loss must be a mean squared error (>= 0), got "
                         f"{loss[loss < 0][0]}")
    finite = np.flatnonzero(np.isfinite(loss))
    # np.lexsort is stable: rows equal in complexity and loss keep their input order
    order = finite[np.lexsort((loss[finite], complexity[finite]))]
    order = order[np.diff(complexity[order], prepend=-np.inf) > 0]  # first of each complexity
    best_simpler = np.minimum.accumulate(np.r_[np.inf, loss[order]])[:-1]
    order = order[loss[order] < best_simpler]
    front = candidates.iloc[order].copy()
    log_loss = np.log(np.maximum(loss[order], _LOSS_FLOOR))
    score = np.zeros(len(order))
    score[1:] = -np.diff(log_loss) / np.diff(complexity[order])
    front["score"] = score
    return front


def select_best(front: pd.DataFrame, model_selection: ModelSelection = "best",
                by: str = "loss", simplest: bool = False) -> pd.Series:
    """One row of a results table, chosen as PySR's ``model_selection`` does.

    Parameters
    ----------
    front
        A table from :func:`pareto_front` (``loss`` and ``score`` columns; "accuracy" needs only
        ``loss``).
    model_selection
        ``"best"``: the highest score among rows with ``loss <= 1.5 ×`` the lowest loss;
        ``"accuracy"``: the lowest loss; ``"score"``: the highest score. Ties go to the row that
        comes first (the simplest, on a front).
    by
        The column read as "loss" for "best" and "accuracy" (e.g. a cross-validated loss).
    simplest
        "best" takes the simplest of the rows within 1.5 × the lowest loss, not the
        best-scoring: with a held-out loss, the simplest formula that predicts as well as the
        best does (the score, a drop in training loss, rewards formulas that fit the noise).

    Returns
    -------
    pandas.Series
        The chosen row; its ``name`` is its index label in ``front``.

    Examples
    --------
    >>> front = pareto_front(pd.DataFrame({"complexity": [1, 2, 4, 7],
    ...                                    "loss": [100.0, 1.0, 0.1, 0.08]}))
    >>> [int(select_best(front, model_selection=m)["complexity"])
    ...  for m in ("best", "accuracy", "score")]
    [4, 7, 2]
    """
    if model_selection not in ("best", "accuracy", "score"):
        raise ValueError(f"model_selection must be 'best', 'accuracy' or 'score', got "
                         f"{model_selection!r}")
    needed = (by,) if model_selection == "accuracy" else (by, "score")
    _check_table(front, "front", needed)
    if front.empty:
        raise ValueError("front is empty: there is no formula to select")
    loss = front[by]
    # positions, not labels: the first of tied rows wins even when index labels repeat
    if model_selection == "accuracy":
        return front.iloc[loss.argmin()]
    rows = front[loss <= BEST_LOSS_FACTOR * loss.min()] if model_selection == "best" else front
    if simplest and model_selection == "best":
        return rows.iloc[0] if "complexity" not in rows else rows.iloc[
            rows["complexity"].to_numpy().argmin()]
    return rows.iloc[rows["score"].argmax()]


def penalized_loss(loss: float, num_constants: int, num_points: int) -> float:
    """``loss`` times the small-sample penalty of the corrected Akaike criterion (AICc).

    ``n log(loss) + 2k + 2k(k + 1) / (n - k - 1)`` is AICc for ``k`` fitted constants on ``n``
    points; this returns ``exp(AICc / n)``, a loss again: barely above ``loss`` on many points,
    much larger when the constants are many for the points (8 planets, 6 constants: ×e¹²), and
    ``inf`` when ``k >= n - 1``, where a formula can pass through every point.

    >>> round(penalized_loss(1.0, 1, 8), 3), round(penalized_loss(1.0, 2, 200), 3)
    (1.396, 1.021)
    >>> penalized_loss(1.0, 7, 8)
    inf
    """
    n, k = num_points, num_constants
    if n - k - 1 <= 0:
        return float("inf")
    return float(loss * np.exp((2 * k + 2 * k * (k + 1) / (n - k - 1)) / n))


def _check_table(table: object, argument: str, columns: tuple[str, ...]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{argument} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{argument} must have the columns {', '.join(columns)}; missing "
                         f"{', '.join(missing)} (it has {', '.join(map(str, table.columns))})")
