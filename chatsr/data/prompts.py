"""The human turn of a sample: the ``<data>`` placeholder, a request and true facts.

The prompt may carry facts about the target that a model can learn to use as priors: which
variables it uses, which operators it contains or lacks, how many constants it has, which inputs
(or the target) are always positive or negative, and the SI units of the variables and the
target. Every fact is true for its sample, and :func:`parse_prompt` and :func:`check_fact`
recover and verify them, so tests and users can audit a data set. Each fact has several
wordings, the ones users write ("It contains sin.", "There is no exp in the formula.",
"x1 is a length in m."); a prompt names as many operators the formula lacks as operators it
contains and one or two more, so that "There is no sin in the formula." is about as frequent
as "It contains sin.".

>>> parse_prompt("<data>\\nIt contains sin. Find the formula that generated these data.")
[Fact(kind='contains', value=('sin',))]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from chatsr.symbolic.operators import CONSTANT, OPERATORS, canonical_name
from chatsr.symbolic.units import parse_unit, quantity_name

__all__ = ["DATA", "OPERATOR_WORDS", "REFERENCE_REQUEST", "REQUESTS", "Fact", "check_fact",
           "make_prompt", "parse_prompt", "stated_facts", "unit_fact_sentence"]

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
                   "positive", "negative", "unit"]


class Fact(NamedTuple):
    """A machine-checkable statement about a sample's target.

    ``value`` is a tuple of names (``variables``: ``("x1", "x2")``; ``contains``/``excludes``:
    canonical operator names), a count (``n_variables``, ``n_constants``), one variable name or
    ``y`` (``positive``, ``negative``), or a variable (or ``y``) and its unit (``unit``:
    ``("x1", "m/s")``, ``"1"`` when dimensionless).
    """

    kind: FactKind
    value: Any


# Several phrasings per fact; "{v}" is the rendered value. Each sentence ends with a period.
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "variables": ("The formula depends on {v}.", "y is a function of {v}.",
                  "The inputs that matter are {v}.", "It depends only on {v}."),
    "n_variables": ("The formula uses {v}.", "It is a formula in {v}."),
    "contains": ("It contains {v}.", "The expression involves {v}.", "Expect {v} in the answer.",
                 "The formula has {v} in it.", "Use {v}."),
    "excludes": ("It does not contain {v}.", "There is no {v} in the formula.",
                 "The expression avoids {v}.", "Do not use {v}.", "The formula has no {v}.",
                 "No {v}."),
    "n_constants": ("It has {v} to fit.", "The skeleton needs {v}.", "It needs {v}."),
    "positive": ("{v} is always positive.", "All values of {v} are positive.", "{v} > 0."),
    "negative": ("{v} is always negative.", "All values of {v} are negative.", "{v} < 0."),
}
# Units: {v} the variable, {u} its unit, {q} the quantity ("a length"); the first wording only
# for named quantities, the last three only for dimensionless ones
_UNIT_TEMPLATES = ("{v} is {q} in {u}.", "{v} is measured in {u}.", "The unit of {v} is {u}.",
                   "{v} has units of {u}.", "{v} is in {u}.")
_DIMENSIONLESS_TEMPLATES = ("{v} is dimensionless.", "{v} has no units.",
                            "{v} is a pure number.")


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
    "positive": r"x\d+|y",
    "negative": r"x\d+|y",
}
_WORDS = "|".join(sorted(map(re.escape, _OPERATOR_BY_WORD), key=len, reverse=True))
_PATTERNS = [
    (kind, re.compile(re.escape(template).replace(
        re.escape("{v}"), f"(?P<v>{_VALUE_PATTERNS[kind].replace('{w}', _WORDS)})")))
    for kind, templates in _TEMPLATES.items() for template in templates
]
_VARIABLE = r"(?P<var>x\d+|y)"
_UNIT_PATTERNS = [re.compile(re.escape(t).replace(re.escape("{v}"), _VARIABLE)
                             .replace(re.escape("{q}"), r"(?P<q>an? [a-z ]+?)")
                             .replace(re.escape("{u}"), r"(?P<u>\S+)"))
                  for t in _UNIT_TEMPLATES + _DIMENSIONLESS_TEMPLATES]


def unit_fact_sentence(fact: Fact, rng: np.random.Generator) -> str:
    """One wording, drawn with ``rng``, of a ``unit`` fact.

    >>> unit_fact_sentence(Fact("unit", ("x1", "1")), np.random.default_rng(0))
    'x1 is a pure number.'
    """
    variable, unit = fact.value
    dimension = parse_unit(unit)
    named = quantity_name(dimension)
    templates = _DIMENSIONLESS_TEMPLATES if dimension.dimensionless else \
        _UNIT_TEMPLATES if named else _UNIT_TEMPLATES[1:]
    template = templates[rng.integers(len(templates))]
    return template.format(v=variable, u=unit, q=named[0] if named else "")


def make_prompt(names: Sequence[str], X: np.ndarray,
                operators: Mapping[str, float] | Iterable[str], rng: np.random.Generator, *,
                fact_prob: float = 0.7, units: Mapping[str, str] | None = None,
                y: np.ndarray | None = None) -> str:
    """The human turn for a formula: ``<data>``, a request and, w.p. ``fact_prob``, true facts.

    Facts are a random subset of: the variables ``names`` uses (as a list or a count),
    operators it contains, one or two more operators among ``operators`` it does not contain
    (drawn by the weights when ``operators`` maps names to weights), its number of ``C``,
    and variables whose every value in ``X`` (column ``i-1`` is ``x_i``), or every target in
    ``y``, is positive or negative. With ``units`` (``{"x1": "m", …, "y": "J"}``) every unit is
    stated. Without facts or units, half the prompts are the reference's exact request.

    >>> prompt = make_prompt(["sin", "x1"], np.ones((5, 1)), ["sin", "cos"],
    ...                      np.random.default_rng(1), fact_prob=1.0)
    >>> prompt.startswith("<data>\\n"), all(check_fact(f, {"expression_tokens": ["sin", "x1"],
    ...     "data_points": [[1.0, 0.0]] * 5}) for f in parse_prompt(prompt))
    (True, True)
    >>> make_prompt(["x1"], np.ones((3, 1)), [], np.random.default_rng(0), fact_prob=0.0,
    ...             units={"x1": "m", "y": "m"})
    '<data>\\nFind the formula that generated these data. The unit of x1 is m. y is measured in m.'
    """
    unit_facts = [Fact("unit", (v, u)) for v, u in units.items()] if units else []
    with_facts = rng.random() < fact_prob
    if not with_facts and not unit_facts:
        request = REFERENCE_REQUEST if rng.random() < 0.5 else REQUESTS[rng.integers(len(REQUESTS))]
        return f"{DATA}\n{request}"
    sentences = [unit_fact_sentence(f, rng) for f in unit_facts]
    if with_facts:
        facts = _candidate_facts(list(names), X, operators, rng, y)
        keep = rng.random(len(facts)) < 0.5
        keep[rng.integers(len(facts))] = True  # at least one fact
        for i in rng.permutation(len(facts)):
            if keep[i]:
                templates = _TEMPLATES[facts[i].kind]
                sentences.append(templates[rng.integers(len(templates))]
                                 .replace("{v}", _render(facts[i])))
    request = REQUESTS[rng.integers(len(REQUESTS))]
    sentences.insert(0 if rng.random() < 0.5 else len(sentences), request)
    return f"{DATA}\n{' '.join(sentences)}"


def _subset(items: Sequence[str], rng: np.random.Generator, size: int,
            weights: Sequence[float] | None = None) -> tuple[str, ...]:
    """``size`` of ``items`` (by ``weights``, without repeats), in their order."""
    p = None if weights is None else np.asarray(weights, dtype=float) / sum(weights)
    chosen = rng.choice(len(items), min(size, len(items)), replace=False, p=p)
    return tuple(items[i] for i in sorted(chosen))


def _candidate_facts(names: list[str], X: np.ndarray,
                     operators: Mapping[str, float] | Iterable[str], rng: np.random.Generator,
                     y: np.ndarray | None = None) -> list[Fact]:
    weights = dict(operators) if isinstance(operators, Mapping) else dict.fromkeys(operators, 1.0)
    used = sorted({n for n in names if n[0] == "x"}, key=lambda n: int(n[1:]))
    facts = [Fact("variables", tuple(used)) if rng.random() < 0.5
             else Fact("n_variables", len(used)),
             Fact("n_constants", names.count(CONSTANT))]
    present = sorted({n for n in names if n in OPERATORS})
    absent = sorted(n for n in set(weights) - set(present) if weights[n] > 0)
    # one sentence each, and the absent list one or two longer: an operator is absent far more
    # often than present, so it must be named more often when absent for "There is no sin"
    # to be stated about as often as "It contains sin"
    size = int(rng.integers(1, min(3, len(present)) + 1)) if present else 0
    if present:
        facts.append(Fact("contains", _subset(present, rng, size)))
    if absent:
        facts.append(Fact("excludes", _subset(absent, rng, size + int(rng.integers(1, 3)),
                                              [weights[n] for n in absent])))
    columns = [(var, X[:, int(var[1:]) - 1]) for var in used]
    if y is not None:
        columns.append(("y", np.asarray(y)))
    # signs of two columns at most: eight "x_i > 0." would crowd out every other fact
    for j in sorted(rng.permutation(len(columns))[:2]):
        var, column = columns[j]
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
        if (fact := _sentence_fact(sentence)) is None:
            raise ValueError(f"unrecognised sentence in prompt: {sentence!r}")
        facts.append(fact)
    return facts


def stated_facts(context: str) -> list[Fact]:
    """The facts a user's sentences of context state in the wordings training prompts use.

    Unlike :func:`parse_prompt`, other sentences are skipped (a user writes what they like), a
    sentence may lack its final period and start in lower case.

    >>> stated_facts("Data from a pendulum. it contains sin. There is no exp in the formula")
    [Fact(kind='contains', value=('sin',)), Fact(kind='excludes', value=('exp',))]
    """
    facts = []
    for sentence in re.split(r"(?<=[.?!])\s+", context.strip()):
        sentence = sentence if sentence.endswith((".", "?", "!")) else f"{sentence}."
        for spelling in dict.fromkeys((sentence, sentence[:1].upper() + sentence[1:])):
            try:
                fact = _sentence_fact(spelling)
            except ValueError:  # a unit sentence naming the wrong quantity states nothing sure
                fact = None
            if fact is not None:
                facts.append(fact)
                break
    return facts


def _sentence_fact(sentence: str) -> Fact | None:
    """The fact one sentence in a training wording states; None for any other sentence."""
    if unit := _parse_unit_sentence(sentence):
        return unit
    for kind, pattern in _PATTERNS:
        if match := pattern.fullmatch(sentence):
            return Fact(kind, _parse_value(kind, match["v"]))
    return None


def _parse_unit_sentence(sentence: str) -> Fact | None:
    for pattern in _UNIT_PATTERNS:
        if match := pattern.fullmatch(sentence):
            unit = match.groupdict().get("u") or "1"
            try:
                named = quantity_name(parse_unit(unit))
            except ValueError:
                return None
            quantity = match.groupdict().get("q")
            if quantity is not None and (named is None or named[0] != quantity):
                raise ValueError(f"unit sentence {sentence!r}: {unit} is not {quantity}")
            return Fact("unit", (match["var"], unit))
    return None


def check_fact(fact: Fact, record: dict) -> bool:
    """Whether ``fact`` holds for a sample (its ``expression_tokens`` and ``data_points``, and
    ``units`` for a unit fact).

    >>> check_fact(Fact("unit", ("y", "N*m")), {"expression_tokens": ["x1"],
    ...            "units": {"x1": "J", "y": "J"}})
    True
    """
    if fact.kind == "unit":
        units = record.get("units") or {}
        variable, unit = fact.value
        return variable in units and parse_unit(units[variable]) == parse_unit(unit)
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
    points = np.asarray(record["data_points"], dtype=float)
    column = points[:, -1] if fact.value == "y" else points[:, int(fact.value[1:]) - 1]
    return bool(column.min() > 0) if fact.kind == "positive" else bool(column.max() < 0)
