"""Tidying fitted formulas on their data (chatsr.symbolic.simplify)."""

import numpy as np
import pytest
import sympy

from chatsr.symbolic.operators import ExpressionError
from chatsr.symbolic.simplify import (
    MAX_EXPANDED_TERMS,
    MAX_PRUNED,
    RELATIVE_CHANGE,
    expanded_terms,
    linearizations,
    prunings,
    rewrites,
)
from chatsr.symbolic.sympy_parsing import MAX_DEPTH

x1, x2, x3 = sympy.symbols("x1 x2 x3", real=True)
POSITIVE = np.random.default_rng(0).uniform(1.0, 3.0, size=(80, 3))


def test_abs_of_a_one_signed_argument_goes():
    assert rewrites(1.0 * x1 * x2 * sympy.Abs(x3), POSITIVE)[0] == x1 * x2 * x3
    assert rewrites(sympy.Abs(x1 - 5.0), POSITIVE)[0] == 5 - x1


def test_abs_of_an_argument_that_changes_sign_stays():
    X = np.random.default_rng(1).uniform(-1.0, 1.0, size=(80, 1))
    assert all(r.has(sympy.Abs) for r in rewrites(sympy.Abs(x1) + 1.5 * x1, X))


def test_negligible_constants_go_and_significant_ones_stay():
    formula = 0.5 * x1 * x2**2 + 2.7e-11 * x1 + 3.9e-11
    assert x1 * x2**2 / 2 in rewrites(formula, POSITIVE)
    # 1e-3 is small but changes the values by far more than RELATIVE_CHANGE
    assert all(r.has(sympy.Float(1e-3)) for r in rewrites(0.5 * x1 * x2**2 + 1e-3 * x1, POSITIVE))


def test_rewrites_agree_with_the_formula_on_the_data():
    formula = 1.437 * sympy.Abs(1 + (0.696 * x1 - x2 + 1.6e-11) / x2)
    f = sympy.lambdify([x1, x2, x3], formula)
    reference = f(*POSITIVE.T)
    found = rewrites(formula, POSITIVE)
    assert sympy.simplify(found[-1] - 1.000152 * x1 / x2) == 0
    for candidate in found:
        values = sympy.lambdify([x1, x2, x3], candidate)(*POSITIVE.T)
        change = np.sqrt(np.mean((values - reference) ** 2) / np.mean(reference**2))
        assert change < 10 * RELATIVE_CHANGE, candidate


def test_a_short_formula_that_multiplies_out_to_many_terms_is_not_expanded():
    # short, but its powers of sums are thousands of terms (sympy took 15 s on such a formula)
    x4, x5 = sympy.symbols("x4 x5", real=True)
    sums = [0.7 * x1 - 2.3 * x3 + 0.2 * x4 - 0.1 * x5, 1.1 * x1 + 2.4 * x3 - 8.6 * x5 + 0.2]
    formula = 0.43 * x4**2 * sums[0] ** 4 * sums[1] ** 2 / (0.7 * x1 + 3.3 * x5 + 0.9) ** 2
    assert expanded_terms(formula) > MAX_EXPANDED_TERMS
    X = np.random.default_rng(0).uniform(1.0, 3.0, size=(40, 5))
    assert all(len(sympy.Add.make_args(r)) < 10 for r in rewrites(formula, X))
    # a small power of a sum is still multiplied out
    assert 2 * x1**2 + 4 * x1 * x2 + 2 * x2**2 in rewrites(2 * (x1 + x2) ** 2, POSITIVE)


def test_a_formula_with_zoo_is_never_evaluated_or_returned():
    # dropping a constant can leave 1/0, which sympy writes zoo and lambdify cannot print
    formula = x2 + sympy.Float(2e-12) * sympy.Pow(x1 - x1 + sympy.Float(1e-9), -1,
                                                   evaluate=False)
    assert all(not r.has(sympy.zoo) for r in rewrites(formula, POSITIVE))
    assert all(not r.has(sympy.zoo) for r in rewrites(x2 + 1 / (x1 - sympy.Float(1.0) * x1
                                                                + 1e-9), POSITIVE))


def test_prunings_drop_each_constant_and_set_each_factor_to_one():
    options = prunings(1.0005 * x1**1.4987 - 0.00042)
    assert 1.0005 * x1**1.4987 in options  # the offset dropped
    assert x1**1.4987 - 0.00042 in options  # the factor set to 1
    assert all(o.free_symbols <= {x1} for o in options)
    many = sum(sympy.Float(k + 0.5) * x1**k for k in range(MAX_PRUNED + 1))
    assert prunings(many) == []


def test_a_number_to_a_power_folds_into_a_power_law():
    a = sympy.Symbol("x1", real=True)
    X = np.geomspace(0.4, 30.0, 8).reshape(-1, 1)
    options = rewrites(sympy.Float(4.477) ** sympy.log(a), X)
    assert any(o.is_Pow and o.base == a and abs(float(o.exp) - np.log(4.477)) < 1e-12
               for o in options)


def test_powers_of_powers_flatten():
    a = sympy.Symbol("x1", real=True)
    X = np.geomspace(0.4, 30.0, 8).reshape(-1, 1)
    assert a ** sympy.Float(1.499) in rewrites((1 / a) ** sympy.Float(-1.499), X)


def test_constants_next_to_simple_numbers_snap_to_them():
    X = np.random.default_rng(2).uniform(0.5, 3.0, size=(60, 3))
    phase = sympy.Float(1.5707963267949 + 3e-9)
    assert x1 * x2 * sympy.sin(x3) in rewrites(x1 * x2 * sympy.cos(x3 - phase), X)
    assert x2 * sympy.exp(-x1) in rewrites(x2 ** sympy.Float(1.0000000002) * sympy.exp(
        -sympy.Float(0.9999999998) * x1), X)
    # a constant that is merely close (1e-4) is a measurement, not 3/2
    assert all(r.has(sympy.Float(1.4999)) for r in rewrites(x1 ** sympy.Float(1.4999), X))


def test_phases_are_taken_modulo_two_pi_and_then_snap():
    X = np.random.default_rng(2).uniform(0.5, 3.0, size=(60, 3))
    found = rewrites(sympy.cos(x1 * x2 - sympy.Float(13 * np.pi / 2)) ** 2, X)
    assert sympy.sin(x1 * x2) ** 2 in found
    phase = rewrites(x3 * sympy.sin(x1 + sympy.Float(7.0)), X)[0].atoms(sympy.Float)
    assert len(phase) == 1 and abs(float(phase.pop()) - (7.0 - 2 * np.pi)) < 1e-12


def test_functions_of_tiny_arguments_become_their_taylor_polynomials():
    from chatsr.symbolic.simplify import linearizations

    X = np.random.default_rng(3).uniform(0.0, 3.0, size=(60, 2))
    tanh = x2 * sympy.exp(-104.37 * sympy.tanh(0.009582 * x1))
    assert x2 * sympy.exp(-104.37 * 0.009582 * x1) in [sympy.expand(o) for o in
                                                         linearizations(tanh, X)]
    # an argument that is not small on the data stays
    assert linearizations(x2 * sympy.exp(-sympy.tanh(2.0 * x1)), X) == []


def test_a_number_to_the_power_x_becomes_an_exponential():
    X = np.random.default_rng(4).uniform(0.0, 3.0, size=(60, 2))
    assert x2 * sympy.exp(-x1) in rewrites(sympy.Float(float(np.exp(-1.0))) ** x1 * x2, X)


def test_a_constant_part_that_overflows_is_undefined_not_fatal():
    # lambdify computes the constant part in Python floats, which raise instead of giving inf
    formula = 763.49 * (sympy.E - sympy.Float(0.00033)) ** sympy.Float(18713.1) * x1
    assert all(isinstance(r, sympy.Expr) for r in rewrites(formula, POSITIVE))


def test_formulas_past_max_depth_are_refused_before_sympy_recurses():
    deep = 0.5 * x1
    for _ in range(MAX_DEPTH + 20):
        deep = sympy.sin(deep)
    for tidy in (lambda: rewrites(deep, POSITIVE), lambda: prunings(deep),
                 lambda: linearizations(deep, POSITIVE)):
        with pytest.raises(ExpressionError, match=f"MAX_DEPTH = {MAX_DEPTH}"):
            tidy()
    at_limit = 0.5 * x1
    for _ in range(MAX_DEPTH - 1):
        at_limit = sympy.sin(at_limit)
    small = POSITIVE[:, :1] * 0.01
    assert linearizations(at_limit, small)  # sin(u) -> u at this depth too
