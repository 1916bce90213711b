"""Tidying fitted formulas on their data (chatsr.simplify) and in the regressor's results."""

import numpy as np
import sympy

from chatsr.simplify import RELATIVE_CHANGE, rewrites

x1, x2, x3 = sympy.symbols("x1 x2 x3", real=True)
POSITIVE = np.random.default_rng(0).uniform(1.0, 3.0, size=(80, 3))


def test_abs_of_a_one_signed_argument_goes():
    assert rewrites(1.0 * x1 * x2 * sympy.Abs(x3), POSITIVE)[0] == 1.0 * x1 * x2 * x3
    assert rewrites(sympy.Abs(x1 - 5.0), POSITIVE)[0] == 5.0 - x1


def test_abs_of_an_argument_that_changes_sign_stays():
    X = np.random.default_rng(1).uniform(-1.0, 1.0, size=(80, 1))
    assert all(r.has(sympy.Abs) for r in rewrites(sympy.Abs(x1) + 1.5 * x1, X))


def test_negligible_constants_go_and_significant_ones_stay():
    formula = 0.5 * x1 * x2**2 + 2.7e-11 * x1 + 3.9e-11
    assert 0.5 * x1 * x2**2 in rewrites(formula, POSITIVE)
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


def test_a_formula_with_zoo_is_never_evaluated_or_returned():
    # dropping a constant can leave 1/0, which sympy writes zoo and lambdify cannot print
    formula = x2 + sympy.Float(2e-12) * sympy.Pow(x1 - x1 + sympy.Float(1e-9), -1,
                                                   evaluate=False)
    assert all(not r.has(sympy.zoo) for r in rewrites(formula, POSITIVE))
    assert all(not r.has(sympy.zoo) for r in rewrites(x2 + 1 / (x1 - sympy.Float(1.0) * x1
                                                                + 1e-9), POSITIVE))
