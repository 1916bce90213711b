"""Tests of chatsr.data.prompts: every fact a prompt states is true and parses back."""

from collections import Counter

import numpy as np
import pytest

from chatsr.data.prompts import (
    _DIMENSIONLESS_TEMPLATES,
    _TEMPLATES,
    _UNIT_TEMPLATES,
    REQUESTS,
    Fact,
    _render,
    check_fact,
    make_prompt,
    parse_prompt,
    stated_facts,
    unit_fact_sentence,
)

FACTS = [Fact("variables", ("x1",)), Fact("variables", ("x1", "x2", "x3")),
         Fact("n_variables", 1), Fact("n_variables", 3), Fact("contains", ("pow2",)),
         Fact("contains", ("sin", "add", "div")), Fact("excludes", ("log",)),
         Fact("excludes", ("pow", "pow3", "sub")), Fact("n_constants", 0),
         Fact("n_constants", 1), Fact("n_constants", 2), Fact("positive", "x2"),
         Fact("negative", "x10"), Fact("positive", "y"), Fact("negative", "y")]


@pytest.mark.parametrize("fact", FACTS)
def test_every_phrasing_parses_back(fact):
    for template in _TEMPLATES[fact.kind]:
        sentence = template.replace("{v}", _render(fact))
        for request in REQUESTS:
            assert parse_prompt(f"<data>\n{sentence} {request}") == [fact]
            assert parse_prompt(f"<data>\n{request} {sentence}") == [fact]


def test_requests_state_no_facts():
    for request in REQUESTS:
        assert parse_prompt(f"<data>\n{request}") == []


def test_unknown_sentences_are_reported():
    with pytest.raises(ValueError, match="unrecognised sentence"):
        parse_prompt("<data>\nThe answer is 42. Please derive the expression that fits these data.")
    with pytest.raises(ValueError, match="starts with"):
        parse_prompt("Please derive the expression that fits these data.")


def test_check_fact_detects_false_statements():
    record = {"expression_tokens": ["<|math_add|>", "<|math_sin|>", "<|math_x1|>", "<|math_C|>"],
              "data_points": [[1.0, -2.0, 0.3], [2.0, -1.0, 0.1]]}
    assert check_fact(Fact("contains", ("sin", "add")), record)
    assert not check_fact(Fact("contains", ("cos",)), record)
    assert check_fact(Fact("excludes", ("cos", "mul")), record)
    assert not check_fact(Fact("excludes", ("sin",)), record)
    assert check_fact(Fact("n_constants", 1), record)
    assert not check_fact(Fact("n_variables", 2), record)
    assert check_fact(Fact("variables", ("x1",)), record)
    assert check_fact(Fact("positive", "x1"), record)
    assert not check_fact(Fact("positive", "x2"), record)
    assert check_fact(Fact("negative", "x2"), record)


def test_make_prompt_only_states_true_facts():
    rng = np.random.default_rng(0)
    names = ["mul", "x1", "log", "x2"]
    X = np.column_stack([rng.uniform(-1, 1, 30), rng.uniform(1, 5, 30)])
    record = {"expression_tokens": names,
              "data_points": np.column_stack([X, np.zeros(30)]).tolist()}
    seen = set()
    for _ in range(300):
        prompt = make_prompt(names, X, ["mul", "log", "sin", "exp"], rng, fact_prob=0.8)
        assert prompt.startswith("<data>\n")
        for fact in parse_prompt(prompt):
            assert check_fact(fact, record), (fact, prompt)
            seen.add(fact.kind)
    assert seen == {"variables", "n_variables", "contains", "excludes", "n_constants", "positive"}


@pytest.mark.parametrize(("fact", "templates"), [
    (Fact("unit", ("x1", "m")), _UNIT_TEMPLATES),  # a named quantity: every wording
    (Fact("unit", ("y", "kg*m^5")), _UNIT_TEMPLATES[1:]),  # no name: no "is a ... in"
    (Fact("unit", ("x3", "1")), _DIMENSIONLESS_TEMPLATES),
])
def test_every_unit_wording_parses_back(fact, templates):
    rng = np.random.default_rng(0)
    sentences = {unit_fact_sentence(fact, rng) for _ in range(200)}
    assert len(sentences) == len(templates)
    for sentence in sentences:
        assert parse_prompt(f"<data>\n{sentence} {REQUESTS[1]}") == [fact]


def test_unit_sentences_are_checked():
    record = {"expression_tokens": ["x1"], "units": {"x1": "m/s", "y": "m/s"}}
    assert check_fact(Fact("unit", ("x1", "km/h")), record)
    assert not check_fact(Fact("unit", ("y", "s")), record)
    assert not check_fact(Fact("unit", ("x1", "m/s")), {"expression_tokens": ["x1"]})
    with pytest.raises(ValueError, match="is not a length"):  # a wrong quantity is no fact
        parse_prompt("<data>\nx1 is a length in s.")


def test_units_are_all_stated():
    rng = np.random.default_rng(3)
    units = {"x1": "m", "x2": "s", "y": "m/s"}
    for _ in range(50):
        prompt = make_prompt(["div", "x1", "x2"], np.ones((4, 2)), ["sin"], rng, fact_prob=0.3,
                             units=units)
        stated = {f.value for f in parse_prompt(prompt) if f.kind == "unit"}
        assert stated == set(units.items())


def test_negative_facts_are_as_frequent_as_positive_ones():
    rng = np.random.default_rng(0)
    weights = {"add": 1.0, "mul": 1.0, "sin": 0.35, "cos": 0.35, "exp": 0.25, "log": 0.25,
               "sqrt": 0.3, "tan": 0.05}
    said = Counter()
    for i in range(600):
        names = ["sin", "x1"] if i % 2 else ["add", "x1", "x2"]
        for fact in parse_prompt(make_prompt(names, np.ones((3, 2)), weights, rng,
                                             fact_prob=1.0)):
            if fact.kind in ("contains", "excludes"):
                said[fact.kind] += 1
                said[fact.kind, "sin"] += "sin" in fact.value
    assert 0.7 < said["excludes"] / said["contains"] < 1.4  # sentences
    # sin is in half the formulas: said to be there and said to be absent, both often
    assert said["contains", "sin"] > 100 and said["excludes", "sin"] > 40


def test_target_signs_are_facts():
    rng = np.random.default_rng(0)
    record = {"expression_tokens": ["x1"], "data_points": [[2.0, 2.0], [3.0, 3.0]]}
    kinds = Counter()
    for _ in range(100):
        for fact in parse_prompt(make_prompt(["x1"], np.array([[2.0], [3.0]]), [], rng,
                                             fact_prob=1.0, y=np.array([2.0, 3.0]))):
            assert check_fact(fact, record)
            kinds[fact] += 1
    assert kinds[Fact("positive", "y")] > 10


def test_stated_facts_read_the_training_wordings_in_a_users_context():
    rng = np.random.default_rng(0)
    for fact in FACTS:
        for template in _TEMPLATES.get(fact.kind, ()):
            sentence = template.replace("{v}", _render(fact))
            context = f"Measured on a bench. {sentence[0].lower()}{sentence[1:-1]}"
            assert stated_facts(context) == [fact], context  # lower case, no period
    unit = Fact("unit", ("x1", "m"))
    assert stated_facts(f"Hello. {unit_fact_sentence(unit, rng)} Thanks!") == [unit]
    assert stated_facts("Nothing here states a fact. Fit it well.") == []
