import dataclasses
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.fitting import FitResult, fit_constants


def uniform(low, high, n, columns=1, seed=0):
    return np.random.default_rng(seed).uniform(low, high, size=(n, columns))


def test_recovers_sine_with_offset_despite_frequency_local_minima():
    X = uniform(-3.0, 3.0, 200)
    y = 2.5 * np.sin(1.3 * X[:, 0]) + 0.7
    result = fit_constants(Expression.parse("+ * C sin * C x1 C"), X, y, random_state=0)
    amplitude, frequency, offset = result.constants
    # (A, w) and (-A, -w) are the same function: compare up to that symmetry.
    assert np.sign(amplitude) == np.sign(frequency)
    np.testing.assert_allclose(np.abs(result.constants), [2.5, 1.3, 0.7], rtol=1e-6)
    np.testing.assert_allclose(result.expression(X), y, rtol=1e-6, atol=1e-9)
    assert result.success and result.r2 > 1 - 1e-12 and not result.timed_out
    # The zero start is a saddle (amplitude 0): a later restart finds the fit, then the
    # search stops because the data are reproduced exactly.
    assert 1 < result.n_restarts_run < 8


def test_recovers_linear_skeleton():
    X = uniform(-2.0, 2.0, 50, columns=2)
    y = 3.0 * X[:, 0] - 0.5 * X[:, 1] + 1.25
    result = fit_constants(Expression.parse("+ + * C x1 * C x2 C"), X, y, random_state=0)
    np.testing.assert_allclose(result.constants, [3.0, -0.5, 1.25], rtol=1e-9)
    assert result.n_restarts_run == 1  # exact at the first restart: early stop


def test_recovers_exponential_skeleton():
    X = uniform(-2.0, 2.0, 100)
    y = 1.7 * np.exp(-0.9 * X[:, 0])
    result = fit_constants(Expression.parse("* C exp * C x1"), X, y, random_state=1)
    np.testing.assert_allclose(result.constants, [1.7, -0.9], rtol=1e-8)
    assert result.expression.constants == tuple(result.constants)


def test_noisy_data_runs_every_restart_and_reaches_the_least_squares_optimum():
    X = uniform(-2.0, 2.0, 100)
    rng = np.random.default_rng(3)
    y = 2.0 * X[:, 0] + 1.0 + 0.1 * rng.normal(size=100)
    result = fit_constants(Expression.parse("+ * C x1 C"), X, y, restarts=5, random_state=0)
    assert result.n_restarts_run == 5
    slope, intercept = np.polyfit(X[:, 0], y, 1)
    np.testing.assert_allclose(result.constants, [slope, intercept], rtol=1e-7)


def test_skeleton_without_constants_is_only_evaluated():
    X = np.array([[0.0, 1.0], [np.pi / 2, 2.0]])
    y = np.array([1.0, 2.0])  # sin(x1) + x2 = [1, 3]: one error of 1
    result = fit_constants(Expression.parse("+ sin x1 x2"), X, y)
    assert result.n_restarts_run == 0 and result.constants.shape == (0,)
    assert result.mse == pytest.approx(0.5)  # (0² + 1²) / 2
    assert result.r2 == pytest.approx(1 - 0.5 / 0.25)  # var(y) = 0.25
    assert result.success


def test_time_limit_bounds_a_long_fit_and_keeps_the_best_point():
    X = uniform(-2.0, 2.0, 20_000, columns=3)
    y = 1.3 * np.exp(0.4 * X[:, 0]) + np.sin(2.1 * X[:, 1]) * X[:, 2]
    y += 0.1 * np.random.default_rng(1).normal(size=y.size)
    expr = Expression.parse("+ * C exp * C x1 * C * sin * C x2 * C x3")
    start = time.perf_counter()
    result = fit_constants(expr, X, y, time_limit=0.05, random_state=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05 + 0.5  # one evaluation here takes a few milliseconds
    assert result.timed_out and result.success and 1 <= result.n_restarts_run < 8
    assert result.time <= elapsed
    at_first_start = np.mean((expr(X, np.zeros(5)) - y) ** 2)
    assert result.mse <= at_first_start


def test_time_limit_none_means_no_limit():
    X = uniform(-1.0, 1.0, 20)
    result = fit_constants(Expression.parse("* C x1"), X, 2.0 * X[:, 0], time_limit=None)
    assert result.success and not result.timed_out


def test_log_of_mixed_sign_data_fails_cleanly():
    X = uniform(-2.0, 2.0, 50)  # C*x1 < 0 somewhere for every C: log is NaN there
    y = np.log(np.abs(X[:, 0]))
    result = fit_constants(Expression.parse("log * C x1"), X, y, random_state=0)
    assert not result.success and result.n_restarts_run == 8
    assert result.mse == np.inf and result.r2 == -np.inf
    assert np.isfinite(result.constants).all()


def test_sqrt_with_infeasible_starts_finds_the_feasible_region():
    X = uniform(-2.0, 0.5, 60)
    y = np.sqrt(2.5 - X[:, 0])
    # C = 0 and C = -1 make sqrt(C - x1) NaN somewhere; C = 1 is feasible and BFGS must not
    # step out of the feasible region on its way to 2.5.
    result = fit_constants(Expression.parse("sqrt - C x1"), X, y, random_state=0)
    assert result.success
    np.testing.assert_allclose(result.constants, [2.5], rtol=1e-8)


@pytest.mark.parametrize(("text", "truth", "constants"),
                         [("* C pow x1 C", lambda x: 1.5 * x**2.3, [1.5, 2.3]),
                          ("sqrt * C x1", lambda x: np.sqrt(2.2 * x), [2.2])])
def test_indeterminate_derivatives_at_zero_do_not_block_the_fit(text, truth, constants):
    # At x1 = 0 the Jacobian holds 0·inf = NaN (d/dC 0**C = 0*log(0)) though the values are
    # finite and the true derivative is 0.
    X = np.linspace(0.0, 2.0, 41).reshape(-1, 1)
    result = fit_constants(Expression.parse(text), X, truth(X[:, 0]), random_state=0)
    np.testing.assert_allclose(result.constants, constants, rtol=1e-8)


def test_overflowing_steps_are_walled_off():
    X = uniform(0.0, 100.0, 80)
    y = 2.0 * np.exp(0.05 * X[:, 0])  # exp(C*x1) overflows for C > 7
    result = fit_constants(Expression.parse("* C exp * C x1"), X, y, random_state=0)
    np.testing.assert_allclose(result.constants, [2.0, 0.05], rtol=1e-7)


SKELETONS = ["log * C x1", "sqrt - C x1", "/ C + x1 C", "pow x1 C", "* C exp * C pow2 x1",
             "+ * C tan * C x1 C", "asin * C x1"]


@settings(max_examples=30, deadline=None)
@given(text=st.sampled_from(SKELETONS), seed=st.integers(0, 2**16),
       scale=st.sampled_from([0.5, 3.0, 50.0]))
def test_no_nan_ever_reaches_the_result(text, seed, scale):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-scale, scale, size=(30, 1))
    y = rng.normal(size=30)
    result = fit_constants(Expression.parse(text), X, y, restarts=4, time_limit=0.5,
                           random_state=seed)
    assert not np.isnan(result.constants).any()
    assert not np.isnan(result.mse) and not np.isnan(result.r2)
    assert result.success == np.isfinite(result.mse)


def test_same_random_state_same_result():
    X = uniform(-3.0, 3.0, 60)
    y = np.sin(2.2 * X[:, 0]) + 0.1 * np.random.default_rng(2).normal(size=60)
    expr = Expression.parse("* C sin * C x1")
    first = fit_constants(expr, X, y, random_state=7)
    second = fit_constants(expr, X, y, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(first.constants, second.constants)


def test_result_is_immutable():
    X = uniform(-1.0, 1.0, 10)
    result = fit_constants(Expression.parse("* C x1"), X, X[:, 0])
    assert isinstance(result, FitResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.mse = 0.0
    with pytest.raises(ValueError, match="read-only"):
        result.constants[0] = 2.0


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros(5), np.zeros(5), "X must be a 2-D array"),
        (np.zeros((5, 1)), np.zeros((5, 1)), "y must be a 1-D array"),
        (np.zeros((5, 1)), np.zeros(4), "same number of points, got 5 rows in X and 4"),
        (np.zeros((0, 1)), np.zeros(0), "at least 1 point"),
        (np.array([[0.0], [np.nan]]), np.zeros(2), "X must be finite, but 1 of its 2"),
        (np.zeros((2, 1)), np.array([0.0, np.inf]), "y must be finite"),
    ],
)
def test_bad_data_is_rejected(X, y, message):
    with pytest.raises(ValueError, match=message):
        fit_constants(Expression.parse("* C x1"), X, y)


def test_missing_column_is_rejected():
    with pytest.raises(ValueError, match="X has 1 column.* uses x2"):
        fit_constants(Expression.parse("* C x2"), np.zeros((3, 1)), np.zeros(3))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"restarts": 0}, "restarts must be at least 1, got 0"),
     ({"maxiter": 0}, "maxiter must be at least 1"),
     ({"time_limit": 0.0}, "time_limit must be a positive"),
     ({"time_limit": -1}, "time_limit must be a positive")],
)
def test_bad_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        fit_constants(Expression.parse("* C x1"), np.ones((3, 1)), np.ones(3), **options)


def test_expression_must_be_an_expression():
    with pytest.raises(TypeError, match="expr must be an Expression"):
        fit_constants("C*x1", np.ones((3, 1)), np.ones(3))


def test_sample_weights_give_the_weighted_least_squares_line():
    X = uniform(0.0, 5.0, 40)
    y = 1.5 * X[:, 0] + np.random.default_rng(1).normal(0, 0.5, 40)
    weight = np.random.default_rng(2).uniform(0.1, 3.0, 40)
    result = fit_constants(Expression.parse("+ * C x1 C"), X, y, sample_weight=weight,
                           random_state=0)
    design = np.c_[X[:, 0], np.ones(40)] * np.sqrt(weight)[:, None]
    expected = np.linalg.lstsq(design, y * np.sqrt(weight), rcond=None)[0]
    assert np.allclose(result.constants, expected, rtol=1e-6)
    residual = result.expression(X) - y
    assert np.isclose(result.loss, np.average(residual**2, weights=weight))
    assert np.isclose(result.mse, np.mean(residual**2)) and result.loss != result.mse


def test_zero_weights_ignore_their_points_and_no_weights_mean_equal_ones():
    X = uniform(1.0, 2.0, 20)
    y = 3.0 * X[:, 0]
    y[:5] = 100.0  # outliers, weighted out
    weight = np.r_[np.zeros(5), np.ones(15)]
    skeleton = Expression.parse("* C x1")
    fitted = fit_constants(skeleton, X, y, sample_weight=weight, random_state=0)
    assert np.isclose(fitted.constants[0], 3.0) and fitted.loss < 1e-20 < fitted.mse
    plain = fit_constants(skeleton, X, y, random_state=0)
    ones = fit_constants(skeleton, X, y, sample_weight=np.ones(20), random_state=0)
    assert np.allclose(plain.constants, ones.constants) and plain.loss == plain.mse


@pytest.mark.parametrize("weight", [np.ones(4), -np.ones(5), np.zeros(5), np.full(5, np.nan)])
def test_bad_sample_weights_are_rejected(weight):
    with pytest.raises(ValueError, match="sample_weight"):
        fit_constants(Expression.parse("* C x1"), np.ones((5, 1)), np.ones(5),
                      sample_weight=weight)


def test_log_loss_fits_arrhenius_from_any_start():
    # k = A exp(-B / T) over four decades: on the log scale the constants are linear
    T = np.linspace(273.0, 338.0, 6).reshape(-1, 1)
    k = np.exp(31.0 - 12400.0 / T[:, 0])
    result = fit_constants(Expression.parse("exp + C / C x1"), T, k, loss="log", random_state=0)
    assert np.allclose(result.constants, [31.0, -12400.0], rtol=1e-6)
    assert result.loss < 1e-15 and result.success


def test_log_loss_walls_off_the_wrong_sign_and_needs_one_signed_y():
    X = uniform(1.0, 2.0, 20)
    y = -3.0 * X[:, 0] ** 2
    result = fit_constants(Expression.parse("* C pow2 x1"), X, y, loss="log", random_state=0)
    assert np.isclose(result.constants[0], -3.0) and result.loss < 1e-20
    wrong = fit_constants(Expression.parse("pow2 x1"), X, y, loss="log")
    assert not wrong.success and wrong.loss == float("inf") and np.isfinite(wrong.mse)
    with pytest.raises(ValueError, match="keep one sign"):
        fit_constants(Expression.parse("* C x1"), X, X[:, 0] - 1.5, loss="log")
    with pytest.raises(ValueError, match="loss must be"):
        fit_constants(Expression.parse("* C x1"), X, y, loss="l1")
