"""The stages of `ChatSRRegressor.fit` called one by one (tiny untrained model, no clock)."""

import numpy as np
import pytest
import sympy
import torch

from chatsr.estimator import ChatSRRegressor
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.tokenizer import load_tokenizer
from chatsr.pipeline import (
    Problem,
    consistent,
    defined_on_box,
    make_proposer,
    prepare,
    read_units,
    reduce_by_units,
    result_row,
    select,
    shortlist,
    stated_operators,
    to_user_units,
    unit_monomials,
)
from chatsr.results import front_table
from chatsr.search.refine import Equation, search
from chatsr.search.selection import penalized_loss
from chatsr.search.tidy import polish, polynomials, tidy
from chatsr.symbolic.expressions import Expression, sympify_real
from chatsr.symbolic.fitting import fit_constants
from chatsr.symbolic.metrics import r2


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    return ChatSRForCausalLM(ChatSRConfig.tiny(tokenizer)).eval(), tokenizer


def test_the_stages_by_hand_give_the_estimators_front(tiny):
    model, tokenizer = tiny
    data = np.random.default_rng(0)
    X = data.uniform(20.0, 50.0, size=(300, 2))  # rescaled, and more rows than the model reads
    y = 0.5 * X[:, 0] * X[:, 1] + 3.0
    options = dict(num_candidates=8, time_budget=None, max_rounds=2, random_state=0,
                   max_points=100)
    est = ChatSRRegressor(tiny, **options).fit(X, y)

    rng = np.random.default_rng(0)
    problem = prepare(X, y, max_points=100, max_dims=model.config.max_dims, rng=rng)
    assert problem.x_scale.tolist() != [1.0, 1.0] and problem.y_scale != 1.0
    proposer = make_proposer(model, tokenizer, problem.points, num_variables=2)
    found = search(proposer, problem.X_scaled, problem.y_scaled, time_budget=None,
                   max_rounds=2, num_candidates=8, operators=problem.operators,
                   random_state=rng, loss=problem.loss)
    # the estimator's order: the most accurate first, then the least-squares polynomial
    candidates = [(to_user_units(e, problem), e.source)
                  for e in sorted(shortlist(found), key=lambda e: e.fit.loss)]
    candidates += [(p, "polynomial") for p in polynomials(problem.X, problem.y)]
    rows = []
    for expression, source in candidates:
        fit = polish(expression, problem.X, problem.y, random_state=rng, loss=problem.loss)
        if fit.success:
            fit = tidy(fit, problem.X, problem.y, random_state=rng, loss=problem.loss)
            rows.append(result_row(fit, source, problem, rng))
    front, best = select([row for row in rows if row is not None])
    front = front_table(front, problem.variable_names)

    np.testing.assert_array_equal(problem.points, est.model_points_)
    columns = ["complexity", "loss", "equation", "source"]
    assert front[columns].astype(str).values.tolist() == \
        est.equations_[columns].astype(str).values.tolist()
    assert front.loc[best.name, "equation"] == est.best_["equation"]


def test_prepare_rescales_columns_far_from_order_one_unless_mul_is_excluded():
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(1, 3, 40), rng.uniform(1e3, 3e3, 40)]
    y = X[:, 0] * X[:, 1]
    problem = prepare(X, y, max_points=10, max_dims=3, rng=rng)
    assert problem.x_scale[0] == 1.0 and problem.x_scale[1] > 1e3 and problem.y_scale > 1e3
    np.testing.assert_allclose(problem.X_scaled * problem.x_scale, X)
    assert problem.points.shape == (10, 4) and (problem.points[:, 2] == 0).all()
    kept = prepare(X, y, exclude=["mul"], max_dims=3, rng=rng)
    assert kept.y_scale == 1.0 and (kept.x_scale == 1.0).all() and "mul" not in kept.operators


def test_to_user_units_computes_the_same_values_in_the_users_units():
    X = np.linspace(100.0, 300.0, 20).reshape(-1, 1)
    problem = prepare(X, 1e-3 * X[:, 0] ** 2, max_dims=1, rng=np.random.default_rng(0))
    scaled = fit_constants(Expression.parse("* C pow2 x1"), problem.X_scaled, problem.y_scaled,
                           random_state=0)
    user = to_user_units(Equation(("C",), scaled, "model", 0.0), problem)
    np.testing.assert_allclose(user(X), problem.y_scale * scaled.expression(problem.X_scaled),
                               rtol=1e-10)


def test_polish_ignores_constants_that_overflowed():
    X = np.linspace(1.0, 2.0, 20).reshape(-1, 1)
    overflowed = Expression.parse("* C x1").with_constants([float("inf")])
    fit = polish(overflowed, X, 3.0 * X[:, 0], random_state=0)
    assert np.isclose(fit.constants[0], 3.0)


def test_tidy_prunes_an_offset_the_data_do_not_need():
    # a power law in measurements with 0.1 % noise, fitted with a spurious offset
    rng = np.random.default_rng(0)
    X = rng.uniform(0.4, 30.0, size=(30, 1))
    y = X[:, 0] ** 1.5 * (1 + rng.normal(0, 1e-3, 30))
    fit = fit_constants(Expression.parse("+ * C pow x1 C C"), X, y, loss="log", random_state=0)
    tidied = tidy(fit, X, y, random_state=rng, loss="log")
    assert tidied.expression.complexity < fit.expression.complexity
    assert sympy.Float(1.5, 3) in {sympy.Float(c, 3) for c in tidied.constants}
    assert penalized_loss(tidied.loss, 1, 30) <= penalized_loss(fit.loss, 3, 30) * 1.0001


@pytest.mark.parametrize("truth, d", [
    ("x1**6 + x1**5 + x1**4 + x1**3 + x1**2 + x1", 1),  # 6 terms on 20 points
    ("x1**4 - x1**3 + x2**2/2 - x2", 2),  # 4 of the 15 monomials of degree 4 in 2 variables
])
def test_sparse_polynomials_come_out_as_the_polynomials_they_are(truth, d):
    X = np.random.default_rng(1).uniform(0.0, 1.0, size=(20, d))
    formula = sympify_real(truth)
    y = sympy.lambdify(sympy.symbols(f"x1:{d + 1}", real=True), formula)(*X.T)
    [polynomial] = polynomials(X, y)
    tidied = tidy(polish(polynomial, X, y, random_state=0), X, y, random_state=0)
    assert sympy.simplify(tidied.expression.to_sympy() - formula) == 0, tidied.expression


def test_polynomials_leave_data_that_are_no_polynomial_to_the_search():
    X = np.random.default_rng(2).uniform(0.0, 1.0, size=(20, 1))
    y = np.exp(3 * X[:, 0])
    [polynomial] = polynomials(X, y)
    assert len(polynomial.names) > 3  # a Taylor-like fit with several terms, not one law
    assert polynomials(np.ones((30, 4)), np.ones(30)) == []  # 4 columns: none offered


def test_tidy_rounds_a_constant_to_the_simple_number_that_noisy_data_support():
    rng = np.random.default_rng(3)
    X = rng.uniform(0.5, 2.0, size=(200, 1))
    y = np.exp(-X[:, 0] / 2) * (1 + 0.01 * rng.standard_normal(200))
    fit = polish(Expression.parse("mul C exp mul C x1"), X, y, random_state=0)
    assert abs(fit.constants[1] + 0.5) > 1e-4  # the noise moved it
    tidied = tidy(fit, X, y, random_state=0)
    assert sympy.simplify(tidied.expression.to_sympy() - sympify_real("exp(-x1/2)")) == 0


def test_result_row_rejects_operators_the_problem_does_not_allow():
    X = np.linspace(1.0, 2.0, 20).reshape(-1, 1)
    problem: Problem = prepare(X, np.sin(X[:, 0]), operators=["sin", "mul"], max_dims=1,
                               rng=np.random.default_rng(0))
    fit = polish(Expression.parse("+ sin x1 C"), X, problem.y, random_state=0)
    assert result_row(fit, "model", problem) is None
    row = result_row(polish(Expression.parse("sin x1"), X, problem.y), "model", problem)
    assert row["loss"] < 1e-20 and row["complexity"] == 2


def test_select_needs_a_row():
    with pytest.raises(RuntimeError, match="no formula could be fitted"):
        select([])


@pytest.mark.parametrize("prompt, operators, exclude, message", [
    ("It contains sin.", None, ["sin"], "contains sin, which operators or exclude"),
    ("It contains sin.", ["add", "cos"], (), "contains sin, which operators or exclude"),
    ("It contains sin. There is no sin in the formula.", None, (), "both contains and lacks"),
])
def test_stated_operators_that_cannot_hold_are_named(prompt, operators, exclude, message):
    with pytest.raises(ValueError, match=message):
        stated_operators(prompt, operators, exclude)


def test_unit_monomials_put_the_law_first_and_skip_roots_of_negative_columns():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.uniform(1, 3, 80), rng.uniform(-2, 2, 80), rng.uniform(1, 3, 80)])
    y = 3.0 * X[:, 0] * X[:, 1] ** 2 / X[:, 2]
    units = read_units(["kg", "m", "s"], "kg*m^2/s", 3)
    seeds = unit_monomials(X, y, units)
    assert Expression.parse(seeds[0]).names == ("div", "mul", "mul", "C", "x1", "pow2", "x2",
                                                 "x3")
    assert not any("sqrt" in s for s in seeds)  # x2 holds negative values: no root of it
    found = search(None, X, y, max_rounds=0, time_budget=None, seeds=seeds[:1], random_state=0)
    assert found[0].source == "units" and found[0].nmse < 1e-12
    ruled_out = search(None, X, y, max_rounds=0, time_budget=None, seeds=seeds[:1],
                       operators=["add", "mul", "pow2"], random_state=0)
    assert ruled_out == []  # the seed divides: operators leave it out


def test_a_formula_found_for_the_groups_comes_back_in_the_columns_consistent():
    rng = np.random.default_rng(2)
    X = rng.uniform([1, 1, 3], [3, 3, 4], size=(80, 3))  # m, v, c
    y = X[:, 0] * X[:, 1] ** 2 / np.sqrt(1 - X[:, 1] ** 2 / X[:, 2] ** 2)
    units = read_units(["kg", "m/s", "m/s"], "J", 3)
    reduction = reduce_by_units(X, y, units, max_dims=3, rng=rng)
    x1, x2, x3 = sympy.symbols("x1:4", real=True)
    assert reduction.scale == x1 * x2 ** 2 and reduction.groups == (x3 / x2,)
    assert reduction.problem.X.shape == (80, 1)
    # the law in the group c/v: 1/sqrt(1 - 1/π²)
    found = search(None, reduction.problem.X_scaled, reduction.problem.y_scaled, max_rounds=0,
                   time_budget=None, seeds=[("div", "C", "sqrt", "sub", "const_1", "mul", "C",
                                             "inv", "pow2", "x1")], random_state=0)
    assert found[0].nmse < 1e-12
    expression = reduction.in_columns(found[0])
    assert consistent(expression, units)
    # its constants come along, so that the refit starts from the law
    assert r2(y, expression(X)) > 1 - 1e-9
    assert fit_constants(Expression(expression.names), X, y).r2 > 1 - 1e-9
    # and seed the search on the columns as they are
    seeded = search(None, X, y, max_rounds=0, time_budget=None, seeds=[expression],
                    random_state=0)
    assert seeded[0].nmse < 1e-12 and seeded[0].source == "units"


def test_no_reduction_where_the_groups_would_not_be_fewer_columns_or_real():
    rng = np.random.default_rng(3)
    X = rng.uniform(1, 2, size=(40, 2))
    # dimensionless columns: as many groups as columns
    assert reduce_by_units(X, X[:, 0] * X[:, 1], read_units(["1", "1"], "1", 2), max_dims=2,
                           rng=rng) is None
    # y = sqrt(x1) * f(x2) needs a root of x1: not of a column holding negative values
    units = read_units(["m^2", "1"], "m", 2)
    assert reduce_by_units(X, np.sqrt(X[:, 0]) * X[:, 1], units, max_dims=2, rng=rng).groups == (
        sympy.Symbol("x2", real=True),)
    negative = X * [-1, 1]
    assert reduce_by_units(negative, X[:, 1], units, max_dims=2, rng=rng) is None
    # the target in the groups is constant: nothing to search
    assert reduce_by_units(X, 2.0 * np.sqrt(X[:, 0]), units, max_dims=2, rng=rng) is None


def test_a_pole_between_the_points_leaves_the_formula_undefined_on_the_box():
    X = np.linspace(0.0, 10.0, 40).reshape(-1, 1)
    rng = np.random.default_rng(0)
    # 1/(2178.67 - 911.16*x1) is finite at every point but has a pole at x1 = 2.391
    pole = Expression.parse("mul C exp mul x1 add C inv sub C mul C x1").with_constants(
        [0.8, -0.3, 2178.67, 911.16])
    assert np.isfinite(pole(X)).all()
    assert not defined_on_box(pole, X, rng)
    safe = Expression.parse("mul C exp mul x1 add C inv add C mul C x1").with_constants(
        [0.8, -0.3, 2178.67, 911.16])
    assert defined_on_box(safe, X, rng)


@pytest.mark.parametrize("tokens, constants, defined", [
    # negative only in a disc of radius 0.001 around (2, 2): 4,096 random points rarely hit it
    ("sqrt sub add pow2 sub x1 C pow2 sub x2 C C", [2.0, 2.0, 1e-6], False),
    ("log sub add pow2 sub x1 C pow2 sub x2 C C", [2.0, 2.0, 1e-6], False),
    ("pow sub add pow2 sub x1 C pow2 sub x2 C C C", [2.0, 2.0, 1e-6, 1.5], False),
    # the same, zero at most: defined; a pole at its zero
    ("sqrt add pow2 sub x1 C pow2 sub x2 C", [2.0, 2.0], True),
    ("inv add pow2 sub x1 C add pow2 sub x2 C C", [2.0, 2.0, -1e-6], False),
    # zero on the box's edge (x1 = 1) is inside sqrt's domain
    ("sqrt sub x1 const_1", None, True),
])
def test_a_narrow_dip_out_of_the_domain_is_found(tokens, constants, defined):
    rng = np.random.default_rng(0)
    X = np.vstack([[1.0, 1.0], [3.0, 3.0], rng.uniform(1.0, 3.0, size=(48, 2))])
    expression = Expression.parse(tokens)
    if constants:
        expression = expression.with_constants(constants)
    assert np.isfinite(expression(X)).all()
    assert defined_on_box(expression, X, rng) is defined
