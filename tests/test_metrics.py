import logging
import multiprocessing
import time

import numpy as np
import pytest
import sympy

from chatsr.symbolic.expressions import Expression, sympify_real
from chatsr.symbolic.metrics import accuracy_to_tolerance, mse, nmse, r2, symbolic_recovery
from chatsr.symbolic.operators import ExpressionError
from chatsr.symbolic.sympy_parsing import MAX_DEPTH

Y = np.array([1.0, 2.0, 3.0])  # mean 2, var 2/3


def test_hand_computed_errors():
    yhat = np.array([2.0, 2.0, 5.0])  # residuals 1, 0, 2: SS_res = 5
    assert mse(Y, yhat) == pytest.approx(5 / 3)
    assert nmse(Y, yhat) == pytest.approx((5 / 3) / (2 / 3))  # 2.5
    assert r2(Y, yhat) == pytest.approx(1 - 5 / 2)  # SS_tot = 2: R² = -1.5


def test_perfect_and_mean_predictions():
    assert (mse(Y, Y), nmse(Y, Y), r2(Y, Y)) == (0.0, 0.0, 1.0)
    assert r2(Y, np.full(3, 2.0)) == pytest.approx(0.0)


def test_lists_are_accepted():
    assert mse([0.0, 0.0], [3.0, 4.0]) == pytest.approx(12.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_predictions_are_infinitely_bad_not_nan(bad):
    yhat = np.array([1.0, bad, 3.0])
    assert mse(Y, yhat) == np.inf
    assert nmse(Y, yhat) == np.inf
    assert r2(Y, yhat) == -np.inf


def test_overflowing_predictions_give_inf():
    assert mse(Y, np.array([1e300, 0.0, 0.0])) == np.inf


def test_constant_target():
    y = np.full(4, 5.0)
    assert (nmse(y, y), r2(y, y)) == (0.0, 1.0)
    close = y + 1e-9  # within 1e-12 + 1e-8 * 5
    assert (nmse(y, close), r2(y, close)) == (0.0, 1.0)
    off = y + np.array([0.0, 0.0, 0.0, 0.1])
    assert (nmse(y, off), r2(y, off)) == (np.inf, -np.inf)
    assert mse(y, off) == pytest.approx(0.01 / 4)  # MSE itself stays defined
    zero = np.zeros(3)
    assert r2(zero, zero) == 1.0 and r2(zero, zero + 1e-6) == -np.inf
    assert r2(y, np.full(4, np.nan)) == -np.inf


def test_float_noise_is_not_mistaken_for_a_constant_target():
    y = np.array([0.1, 0.1 + 2e-17 * 4, 0.1])  # not constant: the variance, however small, counts
    assert np.ptp(y) > 0
    assert r2(y, y) == 1.0


@pytest.mark.parametrize(
    ("y", "yhat", "message"),
    [([1.0, 2.0], [1.0], r"yhat must have the shape of y \(2,\), got \(1,\)"),
     ([[1.0], [2.0]], [[1.0], [2.0]], "y must be a 1-D array"),
     ([], [], "at least 1 point"),
     ([1.0, np.nan], [1.0, 2.0], "y must be finite, but 1 of its 2")],
)
def test_bad_metric_inputs(y, yhat, message):
    for metric in (mse, nmse, r2, accuracy_to_tolerance):
        with pytest.raises(ValueError, match=message):
            metric(y, yhat)


def test_accuracy_to_tolerance_hand_computed():
    y = np.array([1.0, 2.0, 4.0, 10.0])
    yhat = np.array([1.04, 2.2, 4.0, 9.6])  # relative errors 0.04, 0.1, 0, 0.04: 3 of 4 pass
    assert accuracy_to_tolerance(y, yhat, fraction=0.75)
    assert not accuracy_to_tolerance(y, yhat, fraction=0.8)
    assert accuracy_to_tolerance(y, yhat, tol=0.11, fraction=1.0)
    assert not accuracy_to_tolerance(y, yhat, tol=0.03, fraction=0.5)  # only 1 of 4


def test_accuracy_to_tolerance_at_zero_targets_and_non_finite_predictions():
    y = np.array([0.0, 1.0])
    assert accuracy_to_tolerance(y, np.array([0.0, 1.0]), fraction=1.0)
    assert not accuracy_to_tolerance(y, np.array([1e-9, 1.0]), fraction=1.0)  # 0 needs exact
    assert accuracy_to_tolerance(y, np.array([1e-9, 1.0]), fraction=0.5)
    assert not accuracy_to_tolerance(y, np.array([0.0, np.nan]), fraction=0.6)


@pytest.mark.parametrize(("options", "message"),
                         [({"tol": -0.1}, "tol must be"), ({"fraction": 0.0}, "fraction must"),
                          ({"fraction": 1.5}, "fraction must")])
def test_accuracy_to_tolerance_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        accuracy_to_tolerance(Y, Y, **options)


# symbolic recovery -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("truth", "model"),
    [("2*x1", "x1*2.0001"),  # 2.0001 rounds to 2.00
     ("sin(x1)", "sin(x1) + 0.5"),  # constant difference
     ("x1**2", "3.0*x1**2"),  # constant ratio
     ("sin(2*x1)", "sin(2.0001*x1)"),  # rounding inside a function
     ("x1/(x2 + 1)", "x1/(1.00001 + x2)"),
     ("(x1 + 1)**2", "x1**2 + 2.0*x1 + 1.0"),  # needs expand
     ("(x1**2 - 1)/(x1 - 1)", "x1 + 1"),  # needs cancel
     ("sin(x1)**2 + cos(x1)**2 + x2", "x2 - 3.3"),  # needs simplify
     ("pi*x1", "3.14159*x1")],  # pi/3.14 is a constant ratio
)
def test_symbolic_recovery_positives(truth, model):
    assert symbolic_recovery(truth, model)


@pytest.mark.parametrize(
    ("truth", "model"),
    [("x1**2", "x1**3"),
     ("exp(x1)", "x1"),
     ("x1", "Abs(x1)"),  # equal for x1 > 0 only
     ("x1", "0"),  # the ratio is not a nonzero constant
     ("sin(2.0001*x1)", "sin(2*x1)"),  # floats in the truth are exact
     ("x1 + 1e-7*x2", "x1"),
     ("(x1 + x2 + x3)**12*sin(x1 + x2)**4", "(x1 + x2 + x3)**12*sin(x1 + x2)**4 + 0.001*x3")],
)
def test_symbolic_recovery_negatives(truth, model):
    assert not symbolic_recovery(truth, model)


def test_digits_controls_rounding():
    assert symbolic_recovery("x1**2", "x1**2.0001", digits=3)
    assert not symbolic_recovery("x1**2", "x1**2.0001", digits=6)


def test_positive_variables_take_the_root_of_their_square():
    # II.24.17 as found with units: the same law where omega, c and d are positive
    truth, found = "sqrt(x1**2/x2**2 - pi**2/x3**2)", "x1*sqrt(1 - pi**2*x2**2/(x1**2*x3**2))/x2"
    assert not symbolic_recovery(truth, found)
    assert symbolic_recovery(truth, found, positive=["x1", "x2", "x3"])
    assert not symbolic_recovery("x1 - x2", "sqrt((x1 - x2)**2)", positive=["x1", "x2"])
    with pytest.raises(TypeError, match="positive must be a collection of variable names"):
        symbolic_recovery("x1", "x1", positive="x1")


def test_symbolic_recovery_accepts_expressions_and_sympy():
    model = Expression.parse("* C pow2 x1").with_constants([3.0001])
    assert symbolic_recovery("x1**2", model)
    assert symbolic_recovery(Expression.parse("sin x1"), "sin(x1) + 1.5")
    x1 = sympy.Symbol("x1")  # not declared real: converted
    assert symbolic_recovery(sympy.sqrt(x1**2), "Abs(x1)")
    assert symbolic_recovery(sympify_real("exp(x1)*exp(x2)"), Expression.parse("exp + x1 x2"))


def test_symbolic_recovery_rejects_unusable_input():
    with pytest.raises(ValueError, match="model has 1 unfitted constant"):
        symbolic_recovery("x1", Expression.parse("* C x1"))
    with pytest.raises(ValueError, match="truth .* is not a readable formula"):
        symbolic_recovery("x1 +* )", "x1")
    with pytest.raises(ValueError, match="unexpected character '>' at position 3"):
        symbolic_recovery("x1", "x1 > 2")
    with pytest.raises(ValueError, match="is a StrictGreaterThan, not a formula"):
        symbolic_recovery("x1", sympy.Symbol("x1") > 2)
    with pytest.raises(TypeError, match="model must be a str"):
        symbolic_recovery("x1", 2.0)
    with pytest.raises(ValueError, match="timeout must be"):
        symbolic_recovery("x1", "x1", timeout=0)
    with pytest.raises(ValueError, match="digits must be"):
        symbolic_recovery("x1", "x1", digits=0)


def test_symbolic_recovery_is_fast_in_the_common_case():
    symbolic_recovery("x1", "x1")  # the worker process starts once
    start = time.perf_counter()
    for truth, model in [("x1**2 + x2", "1.0*x1**2 + x2"), ("exp(x1)", "exp(x2)"),
                         ("sin(x1)*x2", "cos(x1)*x2")]:
        symbolic_recovery(truth, model)
    assert time.perf_counter() - start < 1.0


def test_pathological_case_obeys_the_timeout(caplog):
    # sympy evaluates 5**(5**3125) while parsing and would not finish for hours.
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="chatsr.symbolic.metrics"):
        assert not symbolic_recovery("5**5**5**5*x1", "x1", timeout=0.5)
    assert time.perf_counter() - start < 0.5 + 1.5
    assert "did not finish within 0.5 s" in caplog.text
    assert not symbolic_recovery("x1", "x1*5**5**5**5", timeout=0.3)
    assert symbolic_recovery("x1", "2.0*x1")  # a fresh worker took over


def test_symbolic_recovery_inside_a_pool_worker():
    # Pool workers are daemonic and may not start processes: sympy then runs in-process.
    with multiprocessing.get_context().Pool(1) as pool:
        assert pool.apply(symbolic_recovery, ("x1", "2.0*x1"))


def _recover_in_child(conn):
    conn.send(symbolic_recovery("sin(x1)", "sin(x1) + 1.0"))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_child_starts_its_own_worker():
    assert symbolic_recovery("x1", "x1")  # the parent's worker exists before the fork
    context = multiprocessing.get_context("fork")
    parent_conn, child_conn = context.Pipe()
    child = context.Process(target=_recover_in_child, args=(child_conn,))
    child.start()
    assert parent_conn.poll(30) and parent_conn.recv() is True
    child.join(30)
    assert child.exitcode == 0
    assert symbolic_recovery("x1", "x1 + 2.0")  # and the parent's still works


@pytest.mark.parametrize("hostile", [
    "__import__('os').system('touch {path}')",
    "open('{path}', 'w')",
    "exec(\"open('{path}', 'w')\")",
    "(lambda: open('{path}', 'w'))()",
    "().__class__.__bases__[0].__subclasses__()",
])
def test_symbolic_recovery_never_runs_formula_text(hostile, tmp_path):
    path = tmp_path / "pwned"
    with pytest.raises(ExpressionError, match="is not a readable formula: cannot read formula"):
        symbolic_recovery(hostile.format(path=path), "x1")
    assert not path.exists()


def test_symbolic_recovery_refuses_deep_formulas_by_a_stated_limit():
    deep = 100_000
    with pytest.raises(ValueError, match=f"truth .* is not a readable formula.*MAX_DEPTH = "
                                         f"{MAX_DEPTH}"):
        symbolic_recovery("sin(" * deep + "x1" + ")" * deep, "x1")
    with pytest.raises(ValueError, match="model .* is not a readable formula.*MAX_DEPTH"):
        symbolic_recovery("x1", Expression.parse(["exp"] * deep + ["x1"]))
