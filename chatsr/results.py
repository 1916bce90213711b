"""A fit's results without the model: the front as text and HTML, and as JSON on disk.

A saved fit is plain JSON (never a pickle): each formula of the Pareto front as its preorder
token names and constants, the variable names, the chosen row, the estimator's settings and
the versions that made it. Reading one back needs numpy, pandas and sympy only: no torch, no
model, nothing from the file is run (`chatsr.symbolic.expressions.Expression` checks every
token against the vocabulary).

>>> import pandas as pd
>>> rows = [{"complexity": 3, "loss": 0.0, "mse": 0.0, "r2": 1.0, "score": 0.0,
...          "expression": Expression.parse("* C x1").with_constants([2.0]), "source": "model"}]
>>> front = front_table(pd.DataFrame(rows), ["t"])
>>> front[["equation", "source"]].values.tolist()
[['2.0*t', 'model']]
>>> print(text_table(front, 0))
   complexity  loss   r2 equation
*           3   0.0  1.0    2.0*t
"""

from __future__ import annotations

import html
import json
import math
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from chatsr.symbolic.expressions import Expression

__all__ = ["FORMAT", "SHOWN_COLUMNS", "front_table", "html_table", "read_fit", "text_table",
           "write_fit"]

FORMAT = "chatsr-fit"
VERSION = 1
SHOWN_COLUMNS = ["complexity", "loss", "r2", "equation"]
_NUMBERS = ("complexity", "loss", "cv_loss", "mse", "r2", "score")


def front_table(front: pd.DataFrame, variable_names: list[str]) -> pd.DataFrame:
    """``front`` (numbers, ``expression``, ``source``) with its formulas written out: a plain
    string ``equation`` (so that ``to_csv`` writes formulas) and the ``sympy`` object, both in
    ``variable_names``."""
    front = front.copy()
    formulas = [e.to_sympy(variable_names=variable_names) for e in front["expression"]]
    front["equation"] = [str(f) for f in formulas]
    front["sympy"] = formulas
    order = [c for c in (*_NUMBERS, "equation", "sympy", "expression", "source") if c in front]
    return front[order + [c for c in front.columns if c not in order]]


def text_table(front: pd.DataFrame, best: int) -> str:
    """The front's main columns as text, the chosen row (index ``best``) marked ``*``."""
    shown = front[SHOWN_COLUMNS].copy()
    shown.index = ["*" if i == best else "" for i in front.index]
    return shown.to_string()


def html_table(front: pd.DataFrame, best: int) -> str:
    """The same as `text_table` as an HTML table, the chosen row in bold."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in SHOWN_COLUMNS)
    body = []
    for i, row in front.iterrows():
        cells = "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in SHOWN_COLUMNS)
        style = ' style="font-weight: bold"' if i == best else ""
        body.append(f"<tr{style}><td>{'&#9654;' if i == best else ''}</td>{cells}</tr>")
    return (f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}"
            f"</tbody></table>")


def _cell(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_fit(path: str | Path, *, front: pd.DataFrame, best: int, params: dict[str, Any],
              fitted: dict[str, Any]) -> Path:
    """Write a fit as JSON: the ``front`` (with ``expression`` and ``source``), the index of
    the ``best`` row, the estimator's ``params`` and its other ``fitted`` attributes (plain
    values: names, numbers). Returns the path."""
    rows = [{**{c: _number(row[c]) for c in _NUMBERS if c in row},
             "tokens": list(row["expression"].names),
             "constants": list(row["expression"].constants or ()), "source": row["source"],
             **({"consistent": bool(row["consistent"])} if "consistent" in row else {})}
            for _, row in front.iterrows()]
    document = {"format": FORMAT, "version": VERSION, "versions": _versions(),
                "params": params, "fitted": fitted, "best": int(best), "front": rows}
    path = Path(path)
    path.write_text(json.dumps(document, indent=1))
    return path


def read_fit(path: str | Path) -> dict[str, Any]:
    """A fit written by `write_fit`: its ``params``, ``fitted`` attributes, ``best`` index
    and ``front`` (a DataFrame with ``expression`` objects). Raises ``ValueError`` naming the
    file for anything that is not such a fit."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no saved fit at {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a saved chatsr fit (not JSON: {error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not a saved chatsr fit (no \"format\": \"{FORMAT}\")")
    if document.get("version") != VERSION:
        raise ValueError(f"{path} is a saved fit of format version "
                         f"{document.get('version')!r}; this chatsr reads version {VERSION}")
    try:
        rows = [{**{c: row[c] for c in _NUMBERS if c in row},
                 "expression": Expression(row["tokens"], row["constants"] or None),
                 "source": row["source"],
                 **({"consistent": bool(row["consistent"])} if "consistent" in row else {})}
                for row in document["front"]]
        front = pd.DataFrame(rows)
        best = int(document["best"])
        if best not in front.index:
            raise ValueError(f"best row {best} is not in the front")
        return {"params": dict(document["params"]), "fitted": dict(document["fitted"]),
                "best": best, "front": front}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is a damaged chatsr fit: {error}") from None


def _number(value: Any) -> float | int | None:
    value = float(value)
    if not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _versions() -> dict[str, str]:
    out = {}
    for package in ("chatsr", "numpy", "sympy", "pyoperon"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "unknown"
    return out
