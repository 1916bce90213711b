"""A fit's results: shown, saved as JSON and loaded without the model; bad settings and
indices are clear errors (no model: the engine alone, clock-free)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from chatsr.estimator import ChatSRRegressor


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).uniform(1, 3, size=(60, 2))
    y = 2.0 * X[:, 0] * X[:, 1]
    est = ChatSRRegressor(model=False, time_budget=None, max_rounds=3, random_state=0)
    return est.fit(pd.DataFrame(X, columns=["m", "a"]), y), X, y


def test_the_front_shows_itself_with_the_chosen_row_marked(fitted):
    est, _, _ = fitted
    text = repr(est)
    assert text.startswith("ChatSRRegressor(")
    marked = [line for line in text.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and str(est.best_["equation"]) in marked[0]
    html = est._repr_html_()
    assert "<table>" in html and html.count("font-weight: bold") == 1
    assert repr(ChatSRRegressor(model=False)) == "ChatSRRegressor(model=False)"  # unfitted


def test_equations_hold_plain_strings_that_csv_writes(fitted, tmp_path):
    est, _, _ = fitted
    assert all(isinstance(e, str) for e in est.equations_["equation"])
    est.equations_.to_csv(tmp_path / "front.csv")
    saved = pd.read_csv(tmp_path / "front.csv")
    assert saved["equation"].tolist() == est.equations_["equation"].tolist()
    assert "m" in saved["equation"].iloc[-1]  # in the column names


def test_a_saved_fit_loads_and_predicts_the_same(fitted, tmp_path):
    est, X, _ = fitted
    path = est.save(tmp_path / "fit.json")
    document = json.loads(path.read_text())
    assert document["format"] == "chatsr-fit" and document["params"]["model"] is False
    assert {"chatsr", "numpy", "sympy"} <= set(document["versions"])
    loaded = ChatSRRegressor.load(path)
    assert loaded.equations_["equation"].tolist() == est.equations_["equation"].tolist()
    assert loaded.best_.name == est.best_.name and loaded.variable_names_ == ["m", "a"]
    frame = pd.DataFrame(X, columns=["m", "a"])
    np.testing.assert_array_equal(loaded.predict(frame), est.predict(frame))
    assert loaded.latex() == est.latex()


def test_predicting_with_a_loaded_fit_imports_no_torch(fitted, tmp_path):
    est, X, _ = fitted
    path = est.save(tmp_path / "fit.json")
    np.save(tmp_path / "X.npy", X)
    code = (f"import sys, numpy as np, pandas as pd; from chatsr import ChatSRRegressor; "
            f"est = ChatSRRegressor.load({str(path)!r}); "
            f"X = pd.DataFrame(np.load({str(tmp_path / 'X.npy')!r}), columns=['m', 'a']); "
            f"assert np.isfinite(est.predict(X)).all(); "
            f"assert 'torch' not in sys.modules and 'transformers' not in sys.modules, "
            f"sorted(m for m in sys.modules if m.startswith(('torch', 'transformers')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"format": "other"}', "not a saved chatsr fit"),
    ('{"format": "chatsr-fit", "version": 99}', "version 99"),
])
def test_files_that_are_not_fits_are_named(tmp_path, content, message):
    path = tmp_path / "fit.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        ChatSRRegressor.load(path)
    with pytest.raises(FileNotFoundError, match="no saved fit"):
        ChatSRRegressor.load(tmp_path / "missing.json")


def test_a_hostile_fit_file_runs_nothing(fitted, tmp_path):
    est, _, _ = fitted
    path = est.save(tmp_path / "fit.json")
    document = json.loads(path.read_text())
    marker = tmp_path / "pwned"
    document["front"][0]["tokens"] = [f"__import__('os').system('touch {marker}')"]
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="damaged"):
        ChatSRRegressor.load(path)
    assert not marker.exists()


def test_rows_by_index_and_bad_indices(fitted):
    est, X, _ = fitted
    frame = pd.DataFrame(X, columns=["m", "a"])
    first = est.equations_.index[0]
    assert est.predict(frame, index=first).shape == (len(X),)
    assert est.sympy(first) == est.equations_.loc[first, "sympy"]
    for bad in (999, -1, "0", 1.5, True):
        with pytest.raises(IndexError, match="index must be a row of equations_"):
            est.sympy(bad)
    with pytest.raises(IndexError, match="got 999"):
        est.latex(999)


@pytest.mark.parametrize("options, error, match", [
    (dict(operators=123), InvalidParameterError, "'operators' parameter"),
    (dict(time_budget="abc"), InvalidParameterError, "'time_budget' parameter"),
    (dict(max_points=0), InvalidParameterError, "'max_points' parameter"),
    (dict(max_points=-1), InvalidParameterError, "'max_points' parameter"),
    (dict(max_points=2.5), InvalidParameterError, "'max_points' parameter"),
    (dict(n_jobs=0), InvalidParameterError, "'n_jobs' parameter"),
    (dict(model=("a", "b")), TypeError, "model must be"),
    (dict(model=123), InvalidParameterError, "'model' parameter"),
    (dict(operators=["sinn"]), ValueError, "operators holds 'sinn'"),
    (dict(exclude=["x1"]), ValueError, "exclude holds 'x1'"),
])
def test_bad_settings_are_named_at_the_start_of_fit(options, error, match):
    X = np.random.default_rng(0).uniform(1, 2, size=(20, 1))
    with pytest.raises(error, match=match):
        ChatSRRegressor(**({"time_budget": None, "max_rounds": 1} | options)).fit(X, X[:, 0])


def test_one_operator_name_as_a_string_is_one_name():
    X = np.random.default_rng(1).uniform(-2, 2, size=(40, 1))
    est = ChatSRRegressor(model=False, exclude="sin", operators=None, time_budget=None,
                          max_rounds=2, random_state=0).fit(X, np.sin(X[:, 0]))
    assert not any("sin" in e.names for e in est.equations_["expression"])


def test_progress_bar_and_callback_follow_the_fit(capsys):
    # three columns: on one, the enumeration of short formulas solves it before any round
    X = np.random.default_rng(2).uniform(1, 2, size=(30, 3))
    seen = []
    ChatSRRegressor(model=False, time_budget=None, max_rounds=2, random_state=0, verbosity=1,
                    callback=seen.append).fit(X, 3.0 * X[:, 0] ** 2)
    stages = [info["stage"] for info in seen]
    assert stages[0] == "search" and stages[-2:] == ["tidy", "done"]
    rounds = [info for info in seen if info["stage"] == "search"]
    assert [info["round"] for info in rounds] == list(range(1, len(rounds) + 1))
    assert all(np.isfinite(info["nmse"]) for info in rounds)
    assert "chatsr fit" in capsys.readouterr().err


def test_repeated_column_names_are_an_error():
    frame = pd.DataFrame(np.ones((10, 2)) * np.arange(10)[:, None], columns=["a", "a"])
    with pytest.raises(ValueError, match=r"repeated column names \['a'\]"):
        ChatSRRegressor(model=False, time_budget=None, max_rounds=1).fit(frame, np.arange(10.0))


@pytest.mark.parametrize("scale_X, y_of, message", [
    (1.0, lambda X: np.array(["a"] * len(X)), "y must hold numbers, got text such as 'a'"),
    (1.0, lambda X: 1e300 * X[:, 0], r"y reaches \S+e\+300"),
    (1.0, lambda X: 1e-300 * X[:, 0], "y is at most .*e-300"),
    (1e200, lambda X: X[:, 0], "X reaches"),
])
def test_values_out_of_float_range_are_named(scale_X, y_of, message):
    X = np.random.default_rng(0).uniform(1, 3, size=(30, 2))
    with pytest.raises(ValueError, match=message):
        ChatSRRegressor(model=False, time_budget=None, max_rounds=1).fit(X * scale_X, y_of(X))


def test_tiny_columns_are_rescaled_not_called_infinite():
    X = np.random.default_rng(0).uniform(1, 3, size=(30, 1))
    est = ChatSRRegressor(model=False, time_budget=None, max_rounds=2, random_state=0)
    est.fit(X * 1e-300, X[:, 0])
    assert est.score(X * 1e-300, X[:, 0]) > 0.9999


def test_dates_are_refused_even_with_variable_names():
    frame = pd.DataFrame({"t": pd.date_range("2020", periods=10), "v": np.arange(10.0)})
    with pytest.raises(ValueError, match=r"\['t'\] of X are not numeric"):
        ChatSRRegressor(model=False, time_budget=None, max_rounds=1).fit(
            frame, np.arange(10.0), variable_names=["a", "b"])
