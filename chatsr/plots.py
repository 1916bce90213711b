"""Plots of a fitted `ChatSRRegressor`: the formula against the data, and the Pareto front.

>>> import numpy as np, pandas as pd
>>> front = pd.DataFrame({"complexity": [1, 3, 5], "loss": [4.0, 1.0, 0.01]})
>>> ax = plot_pareto(front)
>>> ax.get_yscale(), ax.get_xlabel()
('log', 'complexity (nodes)')
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sympy

__all__ = ["plot_fit", "plot_pareto"]

_DECADES_FOR_LOG = 1.0  # an axis spanning more than this many decades is drawn in log scale
_DIGITS = 4  # significant digits of the constants shown in a plot


def _wide(values: np.ndarray) -> bool:
    values = np.asarray(values, dtype=float)
    return bool((values > 0).all() and np.log10(values.max() / values.min()) > _DECADES_FOR_LOG)


def plot_fit(estimator: Any, X: Any, y: Any, ax: plt.Axes | None = None) -> plt.Axes:
    """The best formula against the data.

    One variable: the data as points and the formula as a curve over their range (log axes when
    the values span more than two decades, as Kepler's distances do). Several variables: the
    predicted against the observed values, with the diagonal a perfect formula would follow.
    """
    ax = ax if ax is not None else plt.figure(figsize=(5, 4)).add_subplot()
    frame = X if isinstance(X, pd.DataFrame) else None
    target = getattr(y, "name", None) or "y"
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    y = np.asarray(y, dtype=float)
    label = f"formula, R² = {estimator.score(_like(frame, X), y):.6f}"
    names = estimator.variable_names_
    if X.shape[1] == 1:
        low, high = X[:, 0].min(), X[:, 0].max()
        log = _wide(X[:, 0])
        grid = np.geomspace(low, high, 300) if log else np.linspace(low, high, 300)
        ax.plot(grid, estimator.predict(_like(frame, grid[:, None])), color="C1", label=label)
        ax.scatter(X[:, 0], y, color="C0", zorder=3, label="data")
        ax.set_xlabel(names[0])
        ax.set_ylabel(target)
        if log:
            ax.set_xscale("log")
        if _wide(y):
            ax.set_yscale("log")
    else:
        predicted = estimator.predict(_like(frame, X))
        ax.scatter(y, predicted, color="C0", s=12, label=label)
        lims = [min(y.min(), predicted.min()), max(y.max(), predicted.max())]
        ax.plot(lims, lims, color="grey", linestyle="--", linewidth=1, label="prediction = data")
        ax.set_xlabel(f"observed {target}")
        ax.set_ylabel(f"predicted {target}")
    formula = estimator.latex(precision=_DIGITS)
    ax.set_title(f"${sympy.latex(sympy.Symbol(target))} = {formula}$", fontsize="medium")
    ax.legend(fontsize="small")
    return ax


def _like(frame: pd.DataFrame | None, values: np.ndarray) -> Any:
    """``values`` with ``frame``'s column names, so that predict sees what fit saw."""
    return values if frame is None else pd.DataFrame(values, columns=frame.columns)


def plot_pareto(equations: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Loss against complexity for the rows of ``equations_`` (log loss axis)."""
    ax = ax if ax is not None else plt.figure(figsize=(5, 3.5)).add_subplot()
    loss = np.maximum(equations["loss"].to_numpy(dtype=float), np.finfo(float).tiny)
    ax.step(equations["complexity"], loss, where="post", color="C0")
    ax.scatter(equations["complexity"], loss, color="C0", zorder=3)
    ax.set_yscale("log")
    ax.set_xlabel("complexity (nodes)")
    ax.set_ylabel("loss (MSE)")
    ax.set_title("Pareto front")
    return ax
