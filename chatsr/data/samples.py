"""ChatSR's JSON sample format: records, prompts that state true facts, reading and writing.

A sample is one JSON object (see SPEC.md, "Sample format"): a two-turn conversation whose human
turn holds the ``<data>`` placeholder and whose answer is the comma-joined preorder formula, the
data points ``[x1, …, x_maxdims, y]`` with unused columns zero, and the formula's tokens. We add
one field, ``constants``: the values of the formula's ``C`` placeholders in preorder, ``None``
when unknown (files written by the reference). With them, ``Expression.parse(tokens)`` evaluated
on the x columns gives ``y`` back (before noise).

The prompt may carry facts about the target that a model can learn to use as priors: which
variables it uses, which operators it contains or lacks, how many constants it has, which inputs
are always positive or negative. Every fact is true for its sample, and :func:`parse_prompt` and
:func:`check_fact` recover and verify them, so tests and users can audit a data set.

>>> import numpy as np
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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import CONSTANT, OPERATORS, canonical_name, math_token

__all__ = [
    "ANSWER_PREFIX",
    "DATA",
    "REFERENCE_REQUEST",
    "REQUESTS",
    "Fact",
    "check_fact",
    "make_prompt",
    "make_record",
    "parse_prompt",
    "read_samples",
    "sample_xy",
    "split_samples",
    "write_samples",
    "write_splits",
]

logger = logging.getLogger(__name__)

DATA = "<data>"
REFERENCE_REQUEST = "Please derive the expression that fits these data."
ANSWER_PREFIX = "Based on the data, the derived formula is: "
REQUESTS = (
    REFERENCE_REQUEST,
    "Find the formula that generated these data.",
    "Which expression describes these data?",
    "Derive a symbolic formula for y from these points.",
    "Recover the equation behind this data set.",
    "What formula maps the inputs to y?",
)
_DERIVED = {"id", "expression_tokens", "standard_tokens", "expression_length", "num_features",
            "num_points", "used_variables"}

# How facts name operators: words for arithmetic, the token name for functions. None contains
# " and ", " or " or a comma, so lists of them parse back.
OPERATOR_WORDS = {name: name for name in OPERATORS} | {
    "add": "addition", "sub": "subtraction", "mul": "multiplication", "div": "division",
    "neg": "negation"}
_OPERATOR_BY_WORD = {word: name for name, word in OPERATOR_WORDS.items()}

FactKind = Literal["variables", "n_variables", "contains", "excludes", "n_constants",
                   "positive", "negative"]


class Fact(NamedTuple):
    """A machine-checkable statement about a sample's target.

    ``value`` is a tuple of names (``variables``: ``("x1", "x2")``; ``contains``/``excludes``:
    canonical operator names), a count (``n_variables``, ``n_constants``) or one variable name
    (``positive``, ``negative``).
    """

    kind: FactKind
    value: Any


# Several phrasings per fact; "{v}" is the rendered value. Each sentence ends with a period.
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "variables": ("The formula depends on {v}.", "y is a function of {v}.",
                  "The inputs that matter are {v}."),
    "n_variables": ("The formula uses {v}.", "It is a formula in {v}."),
    "contains": ("It contains {v}.", "The expression involves {v}.", "Expect {v} in the answer."),
    "excludes": ("It does not contain {v}.", "There is no {v} in the formula.",
                 "The expression avoids {v}."),
    "n_constants": ("It has {v} to fit.", "The skeleton needs {v}."),
    "positive": ("{v} is always positive.", "All values of {v} are positive."),
    "negative": ("{v} is always negative.", "All values of {v} are negative."),
}


def _join(items: Sequence[str], last: str) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _split(text: str) -> tuple[str, ...]:
    return tuple(re.split(r", | and | or ", text))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _render(fact: Fact) -> str:
    if fact.kind == "variables":
        return _join(fact.value, "and")
    if fact.kind == "n_variables":
        return _count(fact.value, "variable")
    if fact.kind in ("contains", "excludes"):
        return _join([OPERATOR_WORDS[n] for n in fact.value],
                     "and" if fact.kind == "contains" else "or")
    if fact.kind == "n_constants":
        return _count(fact.value, "constant") if fact.value else "no constants"
    return fact.value


def _parse_value(kind: str, text: str) -> Any:
    if kind == "variables":
        return _split(text)
    if kind in ("contains", "excludes"):
        return tuple(_OPERATOR_BY_WORD[w] for w in _split(text))
    if kind in ("n_variables", "n_constants"):
        return 0 if text == "no constants" else int(text.split()[0])
    return text


_VALUE_PATTERNS = {
    "variables": r"x\d+(?:(?:, | and )x\d+)*",
    "n_variables": r"\d+ variables?",
    "contains": "(?:{w})(?:(?:, | and )(?:{w}))*",
    "excludes": "(?:{w})(?:(?:, | or )(?:{w}))*",
    "n_constants": r"\d+ constants?|no constants",
    "positive": r"x\d+",
    "negative": r"x\d+",
}
_WORDS = "|".join(sorted(map(re.escape, _OPERATOR_BY_WORD), key=len, reverse=True))
_PATTERNS = [
    (kind, re.compile(re.escape(template).replace(
        re.escape("{v}"), f"(?P<v>{_VALUE_PATTERNS[kind].replace('{w}', _WORDS)})")))
    for kind, templates in _TEMPLATES.items() for template in templates
]


def make_prompt(names: Sequence[str], X: np.ndarray, operators: Iterable[str],
                rng: np.random.Generator, *, fact_prob: float = 0.7) -> str:
    """The human turn for a formula: ``<data>``, a request and, w.p. ``fact_prob``, true facts.

    Facts are a random subset of: the variables ``names`` uses (as a list or a count),
    operators it contains, operators among ``operators`` it does not contain, its number of
    ``C`` placeholders, and variables whose every value in ``X`` (column ``i-1`` is ``x_i``) is
    positive or negative. Without facts, half the prompts are the reference's exact request.

    >>> prompt = make_prompt(["sin", "x1"], np.ones((5, 1)), ["sin", "cos"],
    ...                      np.random.default_rng(1), fact_prob=1.0)
    >>> prompt.startswith("<data>\\n"), all(check_fact(f, {"expression_tokens": ["sin", "x1"],
    ...     "data_points": [[1.0, 0.0]] * 5}) for f in parse_prompt(prompt))
    (True, True)
    """
    if rng.random() >= fact_prob:
        request = REFERENCE_REQUEST if rng.random() < 0.5 else REQUESTS[rng.integers(len(REQUESTS))]
        return f"{DATA}\n{request}"
    facts = _candidate_facts(list(names), X, operators, rng)
    keep = rng.random(len(facts)) < 0.5
    keep[rng.integers(len(facts))] = True  # at least one fact
    chosen = [facts[i] for i in rng.permutation(len(facts)) if keep[i]]
    sentences = []
    for fact in chosen:
        templates = _TEMPLATES[fact.kind]
        sentences.append(templates[rng.integers(len(templates))].replace("{v}", _render(fact)))
    request = REQUESTS[rng.integers(len(REQUESTS))]
    sentences.insert(0 if rng.random() < 0.5 else len(sentences), request)
    return f"{DATA}\n{' '.join(sentences)}"


def _subset(items: Sequence[str], rng: np.random.Generator, most: int = 3) -> tuple[str, ...]:
    size = int(rng.integers(1, min(most, len(items)) + 1))
    return tuple(items[i] for i in sorted(rng.permutation(len(items))[:size]))


def _candidate_facts(names: list[str], X: np.ndarray, operators: Iterable[str],
                     rng: np.random.Generator) -> list[Fact]:
    used = sorted({n for n in names if n[0] == "x"}, key=lambda n: int(n[1:]))
    facts = [Fact("variables", tuple(used)) if rng.random() < 0.5
             else Fact("n_variables", len(used)),
             Fact("n_constants", names.count(CONSTANT))]
    present = sorted({n for n in names if n in OPERATORS})
    absent = sorted(set(operators) - set(present))
    if present:
        facts.append(Fact("contains", _subset(present, rng)))
    if absent:
        facts.append(Fact("excludes", _subset(absent, rng)))
    for var in used:
        column = X[:, int(var[1:]) - 1]
        if column.min() > 0:
            facts.append(Fact("positive", var))
        elif column.max() < 0:
            facts.append(Fact("negative", var))
    return facts


def parse_prompt(text: str) -> list[Fact]:
    """The facts stated in a human turn written by :func:`make_prompt`.

    Raises ``ValueError`` on a sentence that is neither a request nor a known fact, so that a
    check over a data set cannot miss a statement.

    >>> parse_prompt("<data>\\nIt contains sin and division. What formula maps the inputs to y?")
    [Fact(kind='contains', value=('sin', 'div'))]
    """
    if not text.startswith(f"{DATA}\n"):
        raise ValueError(f"a prompt starts with {DATA!r} and a newline, got {text[:20]!r}")
    facts = []
    for sentence in re.split(r"(?<=[.?])\s+", text[len(DATA) + 1:].strip()):
        if sentence in REQUESTS:
            continue
        for kind, pattern in _PATTERNS:
            if match := pattern.fullmatch(sentence):
                facts.append(Fact(kind, _parse_value(kind, match["v"])))
                break
        else:
            raise ValueError(f"unrecognised sentence in prompt: {sentence!r}")
    return facts


def check_fact(fact: Fact, record: dict) -> bool:
    """Whether ``fact`` holds for a sample (its ``expression_tokens`` and ``data_points``)."""
    names = [canonical_name(t) for t in record["expression_tokens"]]
    used = sorted({n for n in names if re.fullmatch(r"x\d+", n)}, key=lambda n: int(n[1:]))
    if fact.kind == "variables":
        return tuple(used) == tuple(fact.value)
    if fact.kind == "n_variables":
        return len(used) == fact.value
    if fact.kind == "contains":
        return set(fact.value) <= set(names)
    if fact.kind == "excludes":
        return not set(fact.value) & set(names)
    if fact.kind == "n_constants":
        return names.count(CONSTANT) == fact.value
    column = np.asarray(record["data_points"], dtype=float)[:, int(fact.value[1:]) - 1]
    return bool(column.min() > 0) if fact.kind == "positive" else bool(column.max() < 0)


def make_record(names: Sequence[str], constants: Sequence[float], X: np.ndarray, y: np.ndarray,
                *, max_dims: int, prompt: str, sample_id: str = "", lists: bool = True) -> dict:
    """One sample in ChatSR's format, plus ``constants``.

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
    ``num_features``, ``num_points``, ``used_variables``, ``id``); ``constants`` is ``None`` where
    unknown; fields we do not know are kept.

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
