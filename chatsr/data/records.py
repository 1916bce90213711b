"""ChatSR's JSON sample format: records, reading and writing, splits.

A sample is one JSON object (see SPEC.md, "Sample format"): a two-turn conversation whose human
turn holds the ``<data>`` placeholder (`chatsr.data.prompts`) and whose answer is the
comma-joined preorder formula, the data points ``[x1, …, x_maxdims, y]`` with unused columns
zero, and the formula's tokens. We add two fields: ``constants``, the values of the formula's
``C`` placeholders in preorder, ``None`` when unknown (files written by the reference), with
which ``Expression.parse(tokens)`` evaluated on the x columns gives ``y`` back (before noise);
and ``units``, the SI unit strings of the variables and of ``y`` (``{"x1": "m", "y": "J"}``),
which the prompt states, or ``None``.

>>> import numpy as np
>>> from chatsr.data.prompts import DATA, REFERENCE_REQUEST
>>> rec = make_record(["add", "x1", "x2"], [], np.array([[1.0, 2.0]]), np.array([3.0]),
...                   max_dims=3, prompt=f"{DATA}\\n{REFERENCE_REQUEST}", sample_id="sr_0")
>>> rec["conversations"][1]["value"]
'Based on the data, the derived formula is: <|math_add|>,<|math_x1|>,<|math_x2|>'
>>> rec["data_points"], rec["standard_tokens"], rec["used_variables"]
([[1.0, 2.0, 0.0, 3.0]], ['+', 'x1', 'x2'], ['x1', 'x2'])
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import math_token
from chatsr.symbolic.validation import check_array

__all__ = ["ANSWER_PREFIX", "make_record", "pack_points", "read_samples", "sample_xy",
           "split_samples", "write_samples", "write_splits"]

logger = logging.getLogger(__name__)

ANSWER_PREFIX = "Based on the data, the derived formula is: "
_DERIVED = {"id", "expression_tokens", "standard_tokens", "expression_length", "num_features",
            "num_points", "used_variables"}


def pack_points(X: np.ndarray, y: np.ndarray, max_dims: int) -> np.ndarray:
    """Rows ``[x1..x_max_dims, y]`` (n, max_dims + 1) from ``X`` (n, d) and ``y`` (n,).

    Columns ``d+1..max_dims`` are zero, as in ChatSR's data format. Raises ``ValueError`` for
    NaN or infinite values, mismatched lengths, an empty set or too many columns.

    >>> pack_points(np.array([[1.0], [2.0]]), np.array([3.0, 4.0]), max_dims=2).tolist()
    [[1.0, 0.0, 3.0], [2.0, 0.0, 4.0]]
    """
    if np.ndim(X) == 1:  # one variable, given as a plain vector
        X = np.reshape(X, (-1, 1))
    X = check_array("X", X, shape=("n", "d"))
    y = check_array("y", y, shape=("n",))
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
    if X.shape[1] > max_dims:
        raise ValueError(f"X has {X.shape[1]} columns but the model reads at most {max_dims}")
    points = np.zeros((X.shape[0], max_dims + 1))
    points[:, :X.shape[1]] = X
    points[:, -1] = y
    return points


def make_record(names: Sequence[str], constants: Sequence[float], X: np.ndarray, y: np.ndarray,
                *, max_dims: int, prompt: str, sample_id: str = "", lists: bool = True,
                units: Mapping[str, str] | None = None) -> dict:
    """One sample in ChatSR's format, plus ``constants`` and ``units``.

    ``X`` holds the used columns ``x1..xk`` (n, k); columns ``k+1..max_dims`` are written as
    zeros. The answer spells the tokens comma-joined, as the reference does. ``lists=False``
    keeps ``data_points`` a float array (n, max_dims + 1), ten times cheaper to send between
    processes than nested lists; ``.tolist()`` it before writing JSON.
    """
    expr = Expression(names)
    tokens = expr.to_tokens()
    points = np.zeros((X.shape[0], max_dims + 1))
    points[:, :X.shape[1]] = X
    points[:, -1] = y
    used = [f"x{i}" for i in expr.variables]
    return {
        "id": sample_id,
        "conversations": [{"from": "human", "value": prompt},
                          {"from": "gpt", "value": ANSWER_PREFIX + ",".join(tokens)}],
        "data_points": points.tolist() if lists else points,
        "expression_tokens": tokens,
        "standard_tokens": expr.to_tokens("symbol"),
        "expression_length": len(tokens),
        "num_features": len(used),
        "num_points": int(X.shape[0]),
        "used_variables": used,
        "constants": [float(c) for c in constants],
        "units": dict(units) if units else None,
    }


def sample_xy(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (n, max_dims) and ``y`` (n,) of a sample as float arrays.

    >>> sample_xy({"data_points": [[1.0, 0.0, 2.0]]})[1]
    array([2.])
    """
    points = np.asarray(record["data_points"], dtype=np.float64)
    return points[:, :-1], points[:, -1]


# files ---------------------------------------------------------------------------------------
def _file_format(path: Path) -> Literal["json", "jsonl"]:
    if path.suffix in (".json", ".jsonl"):
        return path.suffix[1:]
    raise ValueError(f"{path}: expected a file name ending in .json (a JSON list) or .jsonl "
                     f"(JSON lines), got suffix {path.suffix!r}")


def write_samples(samples: Iterable[dict], path: str | Path) -> Path:
    """Write samples as a JSON list (``.json``) or JSON lines (``.jsonl``), by file suffix.

    The list form puts one sample per line too, so both stay readable with ``head`` and ``grep``.
    """
    path = Path(path)
    fmt = _file_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(s, allow_nan=False) for s in samples)
    with path.open("w", encoding="utf-8") as f:
        if fmt == "jsonl":
            f.writelines(line + "\n" for line in lines)
        else:
            f.write("[\n" + ",\n".join(lines) + "\n]\n")
    return path


def read_samples(path: str | Path) -> list[dict]:
    """Read samples from ``.json`` (a list, or one object) or ``.jsonl``, ours or the reference's.

    Fields the reference may lack are derived from the formula and the data
    (``expression_tokens`` from the answer, ``standard_tokens``, ``expression_length``,
    ``num_features``, ``num_points``, ``used_variables``, ``id``); ``constants`` and ``units``
    are ``None`` where unknown; fields we do not know are kept.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "ref.json"
    >>> _ = path.write_text('[{"conversations": [{"from": "human", "value": "<data>"}, '
    ...     '{"from": "gpt", "value": "<|math_sin|>,<|math_x1|>"}], "data_points": [[0.0, 0.0]]}]')
    >>> rec = read_samples(path)[0]
    >>> rec["id"], rec["standard_tokens"], rec["num_features"], rec["constants"]
    ('sr_0', ['sin', 'x1'], 1, None)
    """
    path = Path(path)
    fmt = _file_format(path)
    text = path.read_text(encoding="utf-8")
    if fmt == "jsonl":
        raw = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        raw = json.loads(text)
        raw = [raw] if isinstance(raw, dict) else raw
    return [_complete(record, i, path) for i, record in enumerate(raw)]


def _complete(record: dict, index: int, path: Path) -> dict:
    missing = {"conversations", "data_points"} - set(record)
    if missing:
        raise ValueError(f"{path}: sample {index} lacks {sorted(missing)}; a sample needs "
                         f"'conversations' and 'data_points' (found {sorted(record)})")
    record = dict(record)
    record.setdefault("constants", None)
    record.setdefault("units", None)
    if _DERIVED <= record.keys():  # complete already (our files): no need to parse the formula
        return record
    tokens = record.get("expression_tokens")
    if tokens is None:
        tokens = [t for turn in record["conversations"] if turn.get("from") == "gpt"
                  for t in re.findall(r"<\|math_[A-Za-z0-9_]+\|>", turn["value"])]
    expr = Expression.parse(tokens)
    used = [f"x{i}" for i in expr.variables]
    defaults = {"id": f"sr_{index}", "expression_tokens": [math_token(n) for n in expr.names],
                "standard_tokens": expr.to_tokens("symbol"), "expression_length": len(expr),
                "num_features": len(used), "num_points": len(record["data_points"]),
                "used_variables": used}
    for key, value in defaults.items():
        record.setdefault(key, value)
    return record


def split_samples(samples: Sequence[dict], fractions: Sequence[float] = (0.8, 0.1, 0.1)
                  ) -> dict[str, list[dict]]:
    """Split in order into train/val/test with the given fractions (val and test rounded).

    >>> {k: len(v) for k, v in split_samples(list(range(2000))).items()}
    {'train': 1600, 'val': 200, 'test': 200}
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test) "
                         f"summing to 1, got {tuple(fractions)}")
    n_val, n_test = (round(len(samples) * f) for f in fractions[1:])
    n_train = len(samples) - n_val - n_test
    return {"train": list(samples[:n_train]), "val": list(samples[n_train:n_train + n_val]),
            "test": list(samples[n_train + n_val:])}


def write_splits(samples: Sequence[dict], out_dir: str | Path, *,
                 fmt: Literal["json", "jsonl"] = "jsonl",
                 fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, Path]:
    """Write ``train``, ``val`` and ``test`` files (``.json`` or ``.jsonl``) into ``out_dir``.

    Returns the path of each split. Generated samples are in random order and their skeletons
    are unique, so an in-order split puts no skeleton in two splits.
    """
    if fmt not in ("json", "jsonl"):
        raise ValueError(f"fmt must be 'json' or 'jsonl', got {fmt!r}")
    paths = {}
    for name, part in split_samples(samples, fractions).items():
        paths[name] = write_samples(part, Path(out_dir) / f"{name}.{fmt}")
        logger.info("wrote %d samples to %s", len(part), paths[name])
    return paths
