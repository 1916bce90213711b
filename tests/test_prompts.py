"""Tests of chatsr.data.prompts: every fact a prompt states is true and parses back."""

import numpy as np
import pytest

from chatsr.data.prompts import (
    _TEMPLATES,
    REQUESTS,
    Fact,
    _render,
    check_fact,
    make_prompt,
    parse_prompt,
)

FACTS = [Fact("variables", ("x1",)), Fact("variables", ("x1", "x2", "x3")),
         Fact("n_variables", 1), Fact("n_variables", 3), Fact("contains", ("pow2",)),
         Fact("contains", ("sin", "add", "div")), Fact("excludes", ("log",)),
         Fact("excludes", ("pow", "pow3", "sub")), Fact("n_constants", 0),
         Fact("n_constants", 1), Fact("n_constants", 2), Fact("positive", "x2"),
         Fact("negative", "x10")]


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
