"""Tests of chatsr.symbolic.canonical: one spelling per formula, idempotent, and the same
function wherever the input is defined (property-based over random generator trees)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatsr.data.generator_config import GeneratorConfig
from chatsr.data.trees import _ScienceSampler, _structure_problem, _TreeSampler
from chatsr.symbolic.canonical import canonical
from chatsr.symbolic.evaluation import evaluate
from chatsr.symbolic.expressions import Expression

_TREES = _TreeSampler(GeneratorConfig(max_vars=3, max_length=20))
_SCIENCE = _ScienceSampler(GeneratorConfig(science_weight=1.0))


def _tree(seed: int, science: bool) -> tuple[list[str], list[float]]:
    rng = np.random.default_rng(seed)
    names, _ = (_SCIENCE if science else _TREES).tree(rng)
    return names, rng.uniform(-3, 3, names.count("C")).tolist()


def _values(names, X, constants):
    with np.errstate(all="ignore"):
        return np.broadcast_to(evaluate(names, X, constants), (len(X),))


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_canonical_form_is_idempotent(seed, science):
    names, constants = _tree(seed, science)
    written, values = canonical(names, constants)
    Expression(written, values)  # a valid preorder with one value per C
    again, same = canonical(written, values)
    assert again == written
    np.testing.assert_array_equal(same, values)  # NaN (log of a negative C) equals NaN here
    skeleton, none = canonical(names)
    assert none is None and canonical(skeleton) == (skeleton, None)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_canonical_form_is_the_same_function(seed, science):
    names, constants = _tree(seed, science)
    if not science and _structure_problem(names):  # x - x, x/x: cancellations to a constant
        return
    written, values = canonical(names, constants)
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.3, 1.5, (100, 8)) * (1 if science else rng.choice([-1, 1], (100, 8)))
    before, after = _values(names, X, constants), _values(written, X, values)
    nudged = _values(names, X * (1 + 1e-9), constants)
    # where the input is defined and well conditioned (sin of 1e9 is not), the values agree
    with np.errstate(invalid="ignore"):
        good = np.isfinite(before) & (np.abs(before) < 1e8) & \
            (np.abs(nudged - before) <= 1e-6 * (1 + np.abs(before)))
    np.testing.assert_allclose(after[good], before[good], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("spellings", [
    ["add x1 x2", "add x2 x1"],
    ["mul x1 sin x2", "mul sin x2 x1"],
    ["sub x1 x2", "add x1 neg x2", "add neg x2 x1", "neg sub x2 x1"],
    ["div x1 x2", "mul x1 inv x2", "mul inv x2 x1", "inv div x2 x1"],
    ["pow2 x1", "mul x1 x1", "pow x1 const_2", "pow2 neg x1"],
    ["sqrt x1", "pow x1 div const_1 const_2"],
    ["pow3 sqrt x1", "mul x1 sqrt x1", "sqrt pow3 x1"],
    ["mul const_2 x1", "add x1 x1", "div mul const_4 x1 const_2"],
    ["neg x1", "sub const_1 add const_1 x1", "mul neg const_1 x1"],
    ["add mul x1 x2 x3", "add x3 mul x2 x1"],
])
def test_one_spelling(spellings):
    forms = {canonical(Expression.parse(s).names)[0] for s in spellings}
    assert len(forms) == 1, forms


def test_constants_merge_with_their_values():
    assert canonical(["mul", "C", "mul", "x1", "C"], [2.0, -3.0]) == (("mul", "C", "x1"), (-6.0,))
    assert canonical(["add", "C", "sub", "x1", "C"], [2.0, 0.5]) == (("add", "C", "x1"), (1.5,))
    assert canonical(["neg", "mul", "C", "x1"], [2.0]) == (("mul", "C", "x1"), (-2.0,))
    assert canonical(["exp", "add", "C", "C"], [0.0, 1.0]) == (("C",), (np.e,))
    # without values the merged constant has none
    assert canonical(["mul", "C", "mul", "x1", "C"]) == (("mul", "C", "x1"), None)


def test_rewrites_that_would_change_the_function_are_not_made():
    assert canonical(["sqrt", "pow2", "x1"])[0] == ("sqrt", "pow2", "x1")  # |x1|, not x1
    assert canonical(["sqrt", "mul", "x1", "x2"])[0] == ("sqrt", "mul", "x1", "x2")
    assert canonical(["pow2", "add", "x1", "x2"])[0] == ("pow2", "add", "x1", "x2")  # no expansion
    # without values, two atoms holding C are different functions
    assert canonical(["add", "sin", "mul", "C", "x1", "sin", "mul", "C", "x1"])[0] == \
        ("add", "sin", "mul", "C", "x1", "sin", "mul", "C", "x1")


def test_deep_formulas_need_no_recursion():
    names = ["neg", "sin"] * 3000 + ["x1"]
    written, _ = canonical(names)
    assert written.count("sin") == 3000 and len(written) <= len(names)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="constants: the skeleton has 1 C"):
        canonical(["mul", "C", "x1"], [1.0, 2.0])
    with pytest.raises(ValueError, match="names:"):
        canonical(["add", "x1"])
