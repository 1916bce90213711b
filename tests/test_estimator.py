"""ChatSRRegressor: the scikit-learn contract, results, exports and bad input (tiny model)."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sympy
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

import chatsr.estimator
from chatsr.estimator import ChatSRRegressor
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.tokenizer import load_tokenizer
from chatsr.pipeline import read_units, unit_monomials
from chatsr.search.refine import search
from chatsr.search.selection import penalized_loss
from chatsr.symbolic.expressions import Expression


def tiny_model(max_dims: int = 3):
    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    return ChatSRForCausalLM(ChatSRConfig.tiny(tokenizer, max_dims)).eval(), tokenizer


TINY = tiny_model()
WIDE = tiny_model(max_dims=10)  # sklearn's checks use up to 10 columns


def make(**options) -> ChatSRRegressor:
    # no clock: results depend on the seed only, however busy the machine
    values = dict(model=TINY, num_candidates=8, time_budget=None, max_rounds=3, random_state=0)
    return ChatSRRegressor(**(values | options))


# Checks that cannot apply, and why.
EXPECTED_FAILED = {
    # joblib.hash(copy.deepcopy(module)) != joblib.hash(module) for an unchanged torch module;
    # test_fit_leaves_the_model_unchanged checks the parameters and state instead
    "check_estimators_overwrite_params": "a deep copy of a torch model hashes differently",
    # 30 columns, more than the model reads; and the model reads the points themselves, so
    # repeating a row changes what it proposes where a weight does not
    "check_sample_weight_equivalence_on_dense_data": "X has 30 columns; repeated rows are "
                                                     "new points to the model",
}


# no clock: a seed gives one result, so sklearn also checks that fitting is idempotent
@parametrize_with_checks([make(model=WIDE, time_budget=None, max_rounds=1, num_candidates=4)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_returns_self_and_finds_an_affine_law():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 10, size=(60, 1))
    y = 3.0 * X[:, 0] + 2.0
    est = make()
    assert est.fit(X, y) is est
    assert est.score(X, y) > 0.999999
    table = est.equations_
    assert {"complexity", "loss", "r2", "score", "equation"} <= set(table.columns)
    assert table["complexity"].is_monotonic_increasing
    assert table["loss"].is_monotonic_decreasing
    assert est.best_["loss"] <= 1.5 * table["loss"].min() or est.model_selection != "best"
    assert est.predict(X).shape == (60,)


def test_fit_leaves_the_model_unchanged():
    model, _ = WIDE
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = np.random.default_rng(2).uniform(1, 2, size=(30, 2))
    make(model=WIDE).fit(X, X[:, 0] * X[:, 1])
    assert not model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_variable_names_from_dataframe_and_exports():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.uniform(1, 4, 50), "b": rng.uniform(1, 4, 50)})
    y = 2.0 * frame["a"].to_numpy() + 0.5
    est = make().fit(frame, y)
    formula = est.sympy()
    assert {s.name for s in formula.free_symbols} <= {"a", "b"}
    assert est.latex() == sympy.latex(formula)
    X = frame.to_numpy()
    np.testing.assert_allclose(est.numpy()(X), est.predict(frame), rtol=1e-10)
    torch_out = est.pytorch()(torch.tensor(X, dtype=torch.float64)).detach().numpy()
    np.testing.assert_allclose(np.broadcast_to(torch_out, (50,)), est.predict(frame), rtol=1e-8)
    est2 = make().fit(X, y, variable_names=["u", "v"])
    assert {s.name for s in est2.sympy().free_symbols} <= {"u", "v"}


@pytest.mark.parametrize("X, y, message", [
    (np.ones((10, 1)), np.full(10, np.nan), "NaN"),
    (np.array([[1.0], [np.inf], [2.0], [3.0], [4.0], [5.0]]), np.arange(6.0), "infinity"),
    (np.ones((10, 1)), np.arange(9.0), "inconsistent numbers of samples"),
    (np.arange(4.0).reshape(-1, 1) + 1, np.arange(4.0), "at least 5"),
    (np.arange(10.0).reshape(-1, 1) + 1, np.full(10, 2.0), "y is constant"),
    (np.ones((10, 0)), np.arange(10.0), "0 feature"),
    (np.ones((10, 4)) + np.arange(10)[:, None], np.arange(10.0), "at most 3"),
    (np.c_[np.arange(10.0) + 1, np.zeros(10)], np.arange(10.0), "all zero"),
])
def test_bad_input_is_a_clear_value_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        make().fit(X, y)


def test_non_numeric_column_is_named():
    frame = pd.DataFrame({"t": np.arange(10.0), "label": list("abcdefghij")})
    with pytest.raises(ValueError, match="label"):
        make().fit(frame, np.arange(10.0))


def test_predict_before_fit_and_wrong_columns():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make().predict(np.ones((3, 1)))
    est = make().fit(np.arange(1.0, 11.0).reshape(-1, 1), np.arange(10.0) * 2)
    with pytest.raises(ValueError, match="features"):
        est.predict(np.ones((3, 2)))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chatsr model"):
        ChatSRRegressor(model=tmp_path, time_budget=1).fit(np.ones((6, 1)) * np.arange(6)[:, None],
                                                            np.arange(6.0))


def test_operator_constraints_hold_for_every_reported_formula():
    # without add and mul allowed, neither the search's wrappers nor the conversion back
    # from rescaled units may bring them in
    X = np.random.default_rng(3).uniform(0.5, 3.0, size=(40, 1))
    y = np.sin(X[:, 0]) + 0.0
    est = make(operators=["sin", "cos", "exp", "add"], exclude=["add"]).fit(X, y)
    for expression in est.equations_["expression"]:
        assert set(expression.names) & {"add", "mul", "sub", "div"} == set(), expression.names


def test_exclusions_hold_through_the_engine_and_tidying():
    X = np.random.default_rng(4).uniform(-3.0, 3.0, size=(60, 2))
    y = np.sin(X[:, 0]) * X[:, 1]
    est = make(exclude=["sin", "cos"]).fit(X, y)
    for expression in est.equations_["expression"]:
        assert not {"sin", "cos"} & set(expression.names), expression.names
    est = make(operators=["add", "mul", "sub"]).fit(X, y)
    for expression in est.equations_["expression"]:
        assert set(expression.names) <= {"add", "mul", "sub", "C", "x1", "x2"} | {
            f"const_{k}" for k in range(1, 6)}, expression.names


def test_operators_the_prompt_names_rule_the_proposals_and_the_front():
    X = np.random.default_rng(5).uniform(0.5, 3.0, size=(60, 2))
    y = 2.0 * np.sin(X[:, 0]) * X[:, 1]
    est = make(num_candidates=8).fit(X, y, prompt="A bench test. It contains exp.")
    assert len(est.proposals_) and all("exp" in tokens for tokens in est.proposals_["tokens"])
    est = make(num_candidates=8).fit(X, y, prompt="There is no sin in the formula")
    for expression in est.equations_["expression"]:
        assert "sin" not in expression.names, expression.names
    with pytest.raises(ValueError, match="contains cos, which operators or exclude"):
        make(exclude=["cos"]).fit(X, y, prompt="It contains cos.")


def test_without_a_model_no_model_is_loaded(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("model=False must not load a model")

    monkeypatch.setattr("chatsr.model.pretrained.resolve_model", refuse)
    X = np.random.default_rng(5).uniform(1, 3, size=(60, 2))
    y = X[:, 0] * X[:, 1] + 1.0
    est = ChatSRRegressor(model=False, time_budget=None, max_rounds=5, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.9999
    assert set(est.equations_["source"]) <= {"engine", "enumeration", "polynomial"}


def test_without_a_model_torch_is_not_imported():
    # importing torch and transformers takes seconds, which a time budget would pay for
    code = ("import sys, numpy as np; from chatsr import ChatSRRegressor; "
            "X = np.random.default_rng(0).uniform(1, 2, (50, 2)); "
            "est = ChatSRRegressor(model=False, time_budget=None, max_rounds=1); "
            "est.fit(X, X[:, 0] * X[:, 1]); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('torch', 'transformers')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_the_chosen_formula_is_finite_on_the_data_box_and_predict_warns_outside():
    X = np.random.default_rng(6).uniform(1.0, 4.0, size=(60, 1))
    y = np.log(X[:, 0])
    est = make().fit(X, y)
    inside = np.linspace(1.0, 4.0, 500).reshape(-1, 1)
    assert np.isfinite(est.predict(inside)).all()
    for expression in est.equations_["expression"]:
        assert np.isfinite(expression(inside)).all(), expression.infix()
    est.expression_ = Expression.parse("log x1")  # as if chosen: outside its domain, a warning
    with pytest.warns(RuntimeWarning, match="not finite on 1 of 2 rows"):
        est.predict(np.array([[-1.0], [2.0]]))


def test_loss_auto_is_log_for_one_signed_data_spanning_decades():
    X = np.geomspace(0.4, 30.0, 12).reshape(-1, 1)
    assert make().fit(X, X[:, 0] ** 1.5).loss_ == "log"
    assert make().fit(X, -(X[:, 0] ** 1.5)).loss_ == "mse"  # log needs positive y
    assert make().fit(X, np.log(X[:, 0]) + 3).loss_ == "mse"  # one decade only
    assert make(loss="mse").fit(X, X[:, 0] ** 1.5).loss_ == "mse"
    y = X[:, 0] + 1
    est = make(loss="log").fit(X, y)
    row = est.best_
    yhat = row["expression"](X)
    log_mse = np.mean((np.log(yhat) - np.log(y)) ** 2)
    k = row["expression"].n_constants
    assert np.isclose(row["loss"], penalized_loss(log_mse, k, len(y)), rtol=1e-6, atol=1e-30)
    assert np.isclose(row["mse"], np.mean((yhat - y) ** 2))


@pytest.mark.parametrize(("options", "weight", "message"), [
    ({"loss": "log"}, None, "must be positive"),
    ({"loss": "cubic"}, None, "'loss' parameter"),
    ({}, np.zeros(10), "non-zero"),
    ({}, -np.ones(10), "(?i)negative"),
])
def test_bad_loss_and_weights_are_clear_errors(options, weight, message):
    X = np.arange(1.0, 11.0).reshape(-1, 1)
    with pytest.raises(ValueError, match=message):
        make(**options).fit(X, X[:, 0] - 5, sample_weight=weight)



def test_proposals_are_a_table_of_the_first_round():
    X = np.random.default_rng(7).uniform(1, 3, size=(30, 1))
    est = make(num_candidates=6).fit(pd.DataFrame({"t": X[:, 0]}), 2.0 * X[:, 0])
    table = est.proposals_
    assert list(table.columns) == ["equation", "log_prob", "tokens"]
    assert 1 <= len(table) <= 6 and all(isinstance(e, str) for e in table["equation"])
    assert table["log_prob"].is_monotonic_decreasing and (table["log_prob"] <= 0).all()
    assert all("x2" not in e for e in table["equation"])  # in the variable names: t
    assert ChatSRRegressor(model=False, time_budget=None, max_rounds=1).fit(
        X, X[:, 0]).proposals_.empty


def test_units_keep_the_front_dimensionally_consistent():
    X = np.random.default_rng(8).uniform(1, 3, size=(60, 2))
    distance = X[:, 0] * X[:, 1]
    est = ChatSRRegressor(model=False, time_budget=None, max_rounds=3, random_state=0).fit(
        X, distance, X_units=["m/s", "s"], y_units="m")
    assert est.equations_["consistent"].all()
    assert est.score(X, distance) > 0.9999
    assert "units" in set(est.equations_["source"])  # C*x1*x2 seeded by dimensional analysis
    with pytest.warns(UserWarning, match="no formula found that is dimensionally consistent"):
        est.fit(X, X[:, 0] + X[:, 1], X_units=["m", "s"], y_units="m")
    # the consistent C*x1 leaves a third of the variance: the accurate sum is reported
    assert not est.best_["consistent"] and est.score(X, X[:, 0] + X[:, 1]) > 0.9999


def test_units_search_the_dimensionless_groups_first_and_seed_with_what_it_finds(monkeypatch):
    rng = np.random.default_rng(4)
    X = rng.uniform([1, 1, 1], [2, 2, 2], size=(60, 3))  # q1, q2, r
    force = X[:, 0] * X[:, 1] / X[:, 2] ** 2
    calls = []

    def spy(proposer, X, y, **options):
        calls.append((X.shape[1], len(options["seeds"])))
        return search(proposer, X, y, **options)

    monkeypatch.setattr(chatsr.estimator, "search", spy)
    units = dict(X_units=["C", "C", "m"], y_units="C^2/m^2")
    est = ChatSRRegressor(model=False, time_budget=None, max_rounds=2, random_state=0).fit(
        X, force, **units)
    monomials = unit_monomials(X, force, read_units(units["X_units"], units["y_units"], 3))
    # the groups (q2/q1) first, without seeds; then the columns, seeded by both
    assert calls[0] == (1, 0) and calls[1][0] == 3 and calls[1][1] > len(monomials)
    assert est.best_["consistent"] and est.score(X, force) > 0.9999
    calls.clear()
    ChatSRRegressor(model=False, time_budget=None, max_rounds=2, random_state=0).fit(X, force)
    assert calls == [(3, 0)]  # without units: one search


@pytest.mark.parametrize("units, message", [
    (dict(X_units=["furlongz"], y_units="m"), r"X_units\[0\]"),
    (dict(X_units=["m"], y_units="parsec^^2"), "y_units"),
    (dict(X_units=["m", "s"], y_units="m"), "one unit per column"),
    (dict(X_units=["m"]), "give both X_units and y_units"),
])
def test_bad_units_are_named(units, message):
    X = np.random.default_rng(9).uniform(1, 3, size=(20, 1))
    with pytest.raises(ValueError, match=message):
        ChatSRRegressor(model=False, time_budget=None, max_rounds=1).fit(X, X[:, 0], **units)
