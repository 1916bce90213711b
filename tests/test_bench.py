"""The benchmark runner: runs in their own processes, timeouts, summaries, the CLI (tiny model)."""

import math

import numpy as np
import pandas as pd
import pytest
import sympy
import torch

from chatsr.bench import (
    RESULT_COLUMNS,
    gplearn_to_sympy,
    run_benchmark,
    select_problems,
    summarize,
    summary_markdown,
)
from chatsr.bench.methods import BUILDERS, MODEL_METHODS, fit_options
from chatsr.bench.runner import _data
from chatsr.cli.main import main
from chatsr.data.benchmarks import FEYNMAN, NGUYEN
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.tokenizer import load_tokenizer
from chatsr.symbolic.units import is_consistent


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """An untrained tiny model saved as a directory: fits run in other processes."""
    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    path = tmp_path_factory.mktemp("tiny")
    ChatSRForCausalLM(ChatSRConfig.tiny(tokenizer, 3)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_select_problems_by_suite_limit_and_name():
    feynman = select_problems("feynman", max_vars=3)
    assert len(feynman) == 52 and all(p.n_variables <= 3 for p in feynman)
    assert len(select_problems("feynman")) == 100  # by default all, up to 9 variables
    assert [p.name for p in select_problems("nguyen")] == [f"Nguyen-{i}" for i in range(1, 13)]
    assert [p.name for p in select_problems(names=["I.12.1", "Nguyen-3"])] == [
        "Feynman-I.12.1", "Nguyen-3"]
    assert select_problems(names=["Feynman-I.9.18"])[0].n_variables == 9  # names bypass max_vars
    with pytest.raises(ValueError, match="unknown problem"):
        select_problems(names=["Nguyen-13"])
    with pytest.raises(ValueError, match="suite"):
        select_problems("srbench")


def test_one_problem_one_method(tiny_model_dir, tmp_path):
    results = run_benchmark(["Nguyen-8"], ["chatsr"], [0.0, 0.01], seed=3, max_rounds=1,
                            timeout=120, out_dir=tmp_path, model=tiny_model_dir, n_test=50,
                            progress=False)
    assert list(results.columns) == RESULT_COLUMNS
    assert results["noise"].tolist() == [0.0, 0.01]
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert (results["fit_time"] > 0).all()
    _, _, X_test, y_test, _ = _data(NGUYEN["Nguyen-8"], 3, 50)
    np.testing.assert_allclose(y_test, np.sqrt(X_test[:, 0]))
    for row in results.itertuples():
        # the found formula, evaluated on the test points, gives the reported test R²
        f = sympy.lambdify(sympy.Symbol("x1"), sympy.sympify(row.found), "numpy")
        with np.errstate(all="ignore"):
            yhat = np.broadcast_to(f(X_test[:, 0]), y_test.shape)
        r2 = 1 - np.sum((y_test - yhat) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
        assert row.r2 == pytest.approx(r2, rel=1e-6, abs=1e-9)
        assert row.r2_gt_099 == (row.r2 > 0.99) and row.r2_gt_0999 == (row.r2 > 0.999)
    saved = pd.read_csv(tmp_path / "results.csv")
    assert len(saved) == 2 and saved["found"].tolist() == results["found"].tolist()
    assert (tmp_path / "summary.md").read_text().count("| nguyen |") == 2
    assert (tmp_path / "bench.png").stat().st_size > 1000


def test_the_ablations_and_the_peer_run_as_methods(tiny_model_dir, tmp_path):
    methods = ["chatsr-oneshot", "chatsr-nomodel", "pyoperon-budget"]
    results = run_benchmark(["Nguyen-1"], methods, [0.0], seed=0, time_budget=1, max_rounds=1,
                            timeout=120, out_dir=tmp_path, model=tiny_model_dir, n_test=50,
                            progress=False)
    assert results["method"].tolist() == methods
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert (results["r2"] > 0.9).all()  # Nguyen-1 is a cubic polynomial: all get close


def test_the_units_method_gets_the_problems_units_and_every_row_says_if_it_is_consistent(
        tiny_model_dir):
    results = run_benchmark(["Feynman-I.12.1", "Nguyen-1"], ["chatsr-units", "chatsr"], [0.0],
                            seed=0, time_budget=2, timeout=120, model=tiny_model_dir, n_test=50,
                            progress=False)
    assert (results["status"] == "ok").all(), results["error"].tolist()
    feynman = results[results["suite"] == "feynman"].set_index("method")
    # told that y and x2 are forces and x1 is a pure number, only C*x1*x2-like formulas are
    # kept; without units, consistency is measured but not asked for
    assert feynman.loc["chatsr-units", "consistent"] == True  # noqa: E712 (numpy bool)
    assert feynman["consistent"].map(type).isin([bool, np.bool_]).all()
    assert results.loc[results["suite"] == "nguyen", "consistent"].isna().all()  # no units


def test_feynman_units_make_every_formula_consistent_and_a_wrong_unit_does_not():
    for problem in FEYNMAN.values():
        names = problem.expression().names
        assert len(problem.x_units) == problem.n_variables, problem.name
        assert is_consistent(names, problem.x_units, problem.y_units), problem.name
    problem = FEYNMAN["I.14.3"]  # m*g*z
    assert not is_consistent(problem.expression().names, ("kg", "m/s^2", "s"), problem.y_units)
    assert all(b.y_units is None and not b.x_units for b in NGUYEN.values())


def test_every_model_method_uses_the_given_model(tiny_model_dir):
    options = fit_options(["chatsr-oneshot"], seed=0, time_budget=None, model=tiny_model_dir)
    assert options["model"] == str(tiny_model_dir.resolve())  # not None: the shipped model
    for method in MODEL_METHODS:
        estimator, _ = BUILDERS[method](1, options)
        model, _ = estimator.model
        assert model.config.text_config.hidden_size == 32  # the tiny one, not the shipped
    estimator, _ = BUILDERS["chatsr-nomodel"](1, options)
    assert estimator.model is False


def test_data_are_fixed_by_seed_and_problem():
    problem = NGUYEN["Nguyen-9"]
    first, again = _data(problem, 0, 40), _data(problem, 0, 40)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    X, y, X_test, y_test, noise = first
    assert X.shape == (20, 2) and X_test.shape == (40, 2) and noise.shape == (20,)
    np.testing.assert_allclose(y_test, np.sin(X_test[:, 0]) + np.sin(X_test[:, 1] ** 2))
    assert not np.isin(X_test, X).any()  # held-out points, not a resample of the training ones
    assert not np.array_equal(_data(problem, 1, 40)[0], X)
    assert not np.array_equal(_data(NGUYEN["Nguyen-10"], 0, 40)[0], X)


def test_a_fit_over_the_timeout_is_recorded_and_the_run_goes_on(tiny_model_dir):
    results = run_benchmark(["Nguyen-1", "Nguyen-2"], ["chatsr"], [0.0], time_budget=30,
                            timeout=0.5, model=tiny_model_dir, progress=False)
    assert results["status"].tolist() == ["timeout", "timeout"]
    assert results["r2"].isna().all() and not results["recovered"].any()
    assert not results["r2_gt_099"].any()
    assert results["fit_time"].between(0.5, 5).all()
    assert results["error"].str.contains("more than 0.5 s").all()


def test_a_crashing_fit_is_recorded_as_an_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # passes the up-front check, fails to load
    results = run_benchmark(["Nguyen-1"], ["chatsr"], [0.0], model=tmp_path, progress=False)
    assert results["status"].tolist() == ["error"]
    assert results["error"].iloc[0] and math.isnan(results["r2"].iloc[0])


def test_missing_model_fails_before_any_fit(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        run_benchmark(["Nguyen-1"], ["chatsr"], [0.0], model=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        run_benchmark(["Nguyen-1"], ["pysr"], [0.0], progress=False)


def test_summary_numbers_from_a_hand_built_frame():
    results = pd.DataFrame({
        "suite": ["nguyen"] * 4 + ["feynman"] * 2 + ["nguyen"],
        "noise": [0.0] * 6 + [0.01],
        "method": ["chatsr", "chatsr", "chatsr", "gplearn", "chatsr", "chatsr", "chatsr"],
        "status": ["ok", "ok", "timeout", "ok", "ok", "crashed", "ok"],
        "recovered": [True, False, False, True, True, False, False],
        "r2_gt_099": [True, True, False, True, True, False, True],
        "r2_gt_0999": [True, False, False, False, True, False, True],
        "fit_time": [1.0, 2.0, 9.0, 5.0, 4.0, 3.0, 7.0],
    })
    summary = summarize(results)
    assert summary[["suite", "noise", "method"]].values.tolist() == [
        ["nguyen", 0.0, "chatsr"], ["nguyen", 0.0, "gplearn"], ["feynman", 0.0, "chatsr"],
        ["nguyen", 0.01, "chatsr"]]
    first = summary.iloc[0]
    assert first["runs"] == 3 and first["failed"] == 1
    assert first["recovery"] == pytest.approx(100 / 3)
    assert first["r2_gt_099"] == pytest.approx(200 / 3)
    assert first["r2_gt_0999"] == pytest.approx(100 / 3)
    assert first["median_fit_time"] == 2.0
    feynman = summary.iloc[2]
    assert (feynman["runs"], feynman["recovery"], feynman["failed"]) == (2, 50.0, 1)
    assert feynman["median_fit_time"] == 3.5
    table = summary_markdown(summary).splitlines()
    assert len(table) == 2 + 4
    assert table[2] == "| nguyen | 0 | chatsr | 3 | 33.3 | 66.7 | 33.3 | 2 | 1 |"


def test_gplearn_programs_become_sympy():
    gplearn = pytest.importorskip("gplearn.functions")
    x1, x2 = sympy.symbols("x1 x2", real=True)
    program = [gplearn.add2, gplearn.mul2, 0, 1, gplearn.div2, gplearn.sqrt1, 1, 2.5]
    assert gplearn_to_sympy(program, 2) == x1 * x2 + sympy.sqrt(x2) / sympy.Float(2.5)
    assert gplearn_to_sympy([gplearn.log1, gplearn.sub2, 0, 1], 2) == sympy.log(x1 - x2)


@pytest.mark.slow
def test_gplearn_runs_side_by_side():
    pytest.importorskip("gplearn")
    results = run_benchmark(["Nguyen-1"], ["gplearn"], [0.0], timeout=300, n_test=100,
                            progress=False)
    row = results.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert np.isfinite(row["r2"]) and row["found"]
    assert sympy.sympify(row["found"]).free_symbols <= {sympy.Symbol("x1")}


def test_cli_end_to_end(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--problems", "Nguyen-1", "--methods", "chatsr", "--noise", "0",
                 "--model", str(tiny_model_dir), "--time-budget", "0.3", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| nguyen | 0 | chatsr | 1 |" in printed
    results = pd.read_csv(out / "results.csv")
    assert results[["problem", "method", "status"]].values.tolist() == [
        ["Nguyen-1", "chatsr", "ok"]]
    assert (out / "summary.md").read_text().strip() in printed
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["bench", "--out", "x", "--noise", "0,-1"], "--noise: expected levels >= 0"),
    (["bench", "--out", "x", "--problems", "Nguyen-99"], "unknown problem"),
    (["bench", "--out", "x", "--methods", "pysr"], "unknown method"),
    (["bench", "--out", "x", "--timeout", "0"], "--timeout: expected a positive number"),
    (["bench"], "required: --out"),
])
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
