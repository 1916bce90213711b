"""Tests of chatsr.symbolic.units: unit strings parse with pint, bad ones are clear errors, the
consistency rules, and generated unit-carrying samples are dimensionally consistent."""

import re
from fractions import Fraction

import numpy as np
import pytest

from chatsr.data.generator import generate_samples
from chatsr.data.prompts import check_fact, parse_prompt
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.units import (
    Dimension,
    dimension_of,
    dimensionless_groups,
    is_consistent,
    linear_dimensions,
    monomial_exponents,
    parse_unit,
    quantity_name,
    unit_sentence,
)


@pytest.mark.parametrize(("text", "si"), [
    ("kg", "kg"), ("m/s^2", "m/s^2"), ("J*s", "kg*m^2/s"), ("N", "kg*m/s^2"),
    ("F/m", "s^4*A^2/(m^3*kg)"), ("1", "1"), ("", "1"), ("rad", "1"), ("km/h", "m/s"),
    ("m**3", "m^3"), ("K", "K"), ("mol/m^3", "mol/m^3"),
])
def test_unit_strings_parse_to_si_dimensions(text, si):
    assert str(parse_unit(text)) == si
    assert parse_unit(si) == parse_unit(text)


@pytest.mark.parametrize("bad", ["kgg", "m/s^", "3 m", "kg^^2"])
def test_bad_unit_strings_are_clear_errors(bad):
    with pytest.raises(ValueError, match=re.escape(f"unit {bad!r} is not a unit pint can read")):
        parse_unit(bad)


def test_a_unit_must_be_a_string():
    with pytest.raises(ValueError, match="a unit must be a string"):
        parse_unit(3)


def names(text: str) -> tuple[str, ...]:
    return Expression.from_sympy(text).names


M, S, KG, ONE = (parse_unit(u) for u in ("m", "s", "kg", "1"))


@pytest.mark.parametrize(("formula", "dims", "expected"), [
    ("x1 + x2", [M, M], M),
    ("x1 + x2", [M, S], None),  # unlike quantities
    ("x1/x2**2", [M, S], parse_unit("m/s^2")),
    ("exp(-x1/x2)", [M, M], ONE),
    ("sin(x1)", [M], None),  # a function of a length
    ("log(x1)", [ONE], ONE),
    ("sqrt(x1)", [parse_unit("m^2")], M),
    ("sqrt(x1)", [M], Dimension((Fraction(1, 2),) + (Fraction(0),) * 6)),
    ("x1**3", [M], parse_unit("m^3")),
    ("2.5*x1", [M], M),  # numbers are dimensionless
    ("x1 + 1", [M], None),
    ("x1*x2**2", [KG, parse_unit("m/s")], parse_unit("J")),
    ("x1/sqrt(1 - x2**2/x3**2)", [KG, parse_unit("m/s"), parse_unit("m/s")], KG),
    ("x1**x2", [M, ONE], None),  # the exponent's value is not known
    ("x1**x2", [ONE, ONE], ONE),
    ("abs(x1) - x1", [M], M),
])
def test_dimension_rules(formula, dims, expected):
    assert dimension_of(names(formula), dims) == expected


def test_a_c_exponent_scales_by_its_value_when_given():
    skeleton = ["pow", "x1", "C"]
    assert dimension_of(skeleton, ["m"]) is None
    assert dimension_of(skeleton, ["m"], constants=[1.5]) == parse_unit("m^3") ** Fraction(1, 2)
    assert is_consistent(["pow", "x1", "const_2"], {"x1": "m/s"}, "m^2/s^2")


def test_consistency_of_physics_formulas():
    assert is_consistent(names("x1*x2**2"), ["kg", "m/s"], "J")  # E = m c^2
    assert not is_consistent(names("x1*x2"), ["kg", "m/s"], "J")
    assert is_consistent(names("x1*x2*x3/x4**2"), ["m^3/(kg*s^2)", "kg", "kg", "m"], "N")
    assert is_consistent(names("x1*exp(-x2/(x3*x4))"), ["1/s", "J", "J/K", "K"], "Hz")


def test_missing_units_name_the_variable():
    with pytest.raises(ValueError, match="no unit for x2"):
        dimension_of(names("x1 + x2"), {"x1": "m"})


def test_linear_forms_state_the_rules_once():
    form, conditions = linear_dimensions(names("x1*sin(x2/x3)"))
    assert form == {"x1": 1}
    assert conditions == [{"x2": 1, "x3": -1}]


def test_sentences_name_quantities():
    assert unit_sentence("x1", "m") == "x1 is a length in m."
    assert unit_sentence("y", "kg*m^2/s^2") == "y is an energy in kg*m^2/s^2."
    assert unit_sentence("y", parse_unit("J")) == "y is an energy in J."
    assert unit_sentence("x2", "1") == "x2 is dimensionless."
    assert quantity_name(parse_unit("N*m")) == ("an energy", "J")


def test_generated_samples_with_units_are_consistent():
    samples = generate_samples(150, max_vars=3, num_points=(10, 30), science_weight=0.5,
                               units_prob=0.7, seed=3, progress=False)
    with_units = [s for s in samples if s["units"]]
    assert 0.3 * len(samples) < len(with_units) < 0.9 * len(samples)
    for s in with_units:
        tokens = Expression.parse(s["expression_tokens"]).names
        x_units = {v: u for v, u in s["units"].items() if v != "y"}
        assert set(x_units) == set(s["used_variables"]) | set(x_units)
        assert is_consistent(tokens, x_units, s["units"]["y"], s["constants"]), s
        stated = [f for f in parse_prompt(s["conversations"][0]["value"]) if f.kind == "unit"]
        assert {f.value[0] for f in stated} == set(s["units"])  # every unit in the prompt
        assert all(check_fact(f, s) for f in stated)


def test_monomial_exponents_are_every_product_of_powers_with_the_targets_dimension():
    dims = [parse_unit("m"), parse_unit("s"), parse_unit("kg")]
    found = monomial_exponents(dims, parse_unit("N"))
    assert found == [(Fraction(1), Fraction(-2), Fraction(1))]
    # a dimensionless column is free: each of its grid exponents gives one monomial
    free = monomial_exponents([parse_unit("m"), parse_unit("1")], parse_unit("m"))
    assert [a[0] for a in free] == [1] * 9 and sorted(a[1] for a in free) == [
        Fraction(k, 2) for k in range(-4, 5)]
    for exponents in free + found:
        assert all((a * 2).denominator == 1 and abs(a) <= 2 for a in exponents)
    assert monomial_exponents([parse_unit("m")], parse_unit("s")) == []  # no power of m is s


@pytest.mark.parametrize(("x_units", "y_unit", "count"), [
    (["C", "C", "F/m", "m"], "N", 1),  # Coulomb: q2/q1
    (["kg", "m/s", "m/s"], "J", 1),  # relativistic energy: v/c
    (["m", "m", "m", "1"], "m^2", 3),  # two length ratios and a dimensionless column
    (["m", "s", "m/s^2"], "m", 1),  # free fall: three columns of two dimensions
])
def test_dimensionless_groups_scale_to_the_target_and_are_dimensionless(x_units, y_unit, count):
    dims = [parse_unit(u) for u in x_units]
    scale, groups = dimensionless_groups(dims, parse_unit(y_unit))

    def dimension(exponents):
        result = parse_unit("1")
        for d, a in zip(dims, exponents, strict=True):
            result = result * d ** a
        return result

    assert dimension(scale) == parse_unit(y_unit)
    assert len(groups) == count and np.linalg.matrix_rank(np.array(groups)) == count
    assert all(dimension(g).dimensionless for g in groups)
    assert all(isinstance(a, int) for g in groups for a in g)
    assert dimensionless_groups([parse_unit("m")], parse_unit("s")) is None
