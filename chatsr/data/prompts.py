"""The human turn of a sample: the ``<data>`` placeholder, a request and true facts.

The prompt may carry facts about the target that a model can learn to use as priors: which
variables it uses, which operators it contains or lacks, how many constants it has, which inputs
are always positive or negative. Every fact is true for its sample, and :func:`parse_prompt` and
:func:`check_fact` recover and verify them, so tests and users can audit a data set.

>>> parse_prompt("<data>\\nIt contains sin. Find the formula that generated these data.")
[Fact(kind='contains', value=('sin',))]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from chatsr.symbolic.operators import CONSTANT, OPERATORS, canonical_name

__all__ = ["DATA", "OPERATOR_WORDS", "REFERENCE_REQUEST", "REQUESTS", "Fact", "check_fact",
           "make_prompt", "parse_prompt"]

DATA = "<data>"
REFERENCE_REQUEST = "Please derive the expression that fits these data."
REQUESTS = (
    REFERENCE_REQUEST,
    "Find the formula that generated these data.",
    "Which expression describes these data?",
    "Derive a symbolic formula for y from these points.",
    "Recover the equation behind this data set.",
    "What formula maps the inputs to y?",
)
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
