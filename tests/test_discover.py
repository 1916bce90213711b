"""`chatsr discover`, the shipped data sets and the plots (tiny untrained model)."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from chatsr.cli.main import main
from chatsr.data.datasets import DATASETS, load_dataset
from chatsr.estimator import ChatSRRegressor
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.tokenizer import load_tokenizer
from chatsr.plots import plot_fit, plot_pareto

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    path = tmp_path_factory.mktemp("tiny")
    ChatSRForCausalLM(ChatSRConfig.tiny(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"name": [f"s{i}" for i in range(40)], "u": rng.uniform(1, 5, 40)})
    frame["w"] = 3.0 * frame["u"] + 1.0
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def discover(*args):
    return main(["discover", *map(str, args), "--time-budget", "5",  # stops once exact
                 "--num-candidates", "4"])


def test_csv_to_formula_table_and_plot(csv, model_dir, tmp_path, capsys):
    png = tmp_path / "fit.png"
    assert discover(csv, "--target", "w", "--model", model_dir, "--plot", png) == 0
    out, err = capsys.readouterr()
    assert "ignoring non-numeric column(s) ['name']" in err
    first = out.splitlines()[0]
    assert first.startswith("w = ") and "u" in first
    assert "R² = 1.000000" in out  # an affine law: the search's wrapper finds it exactly
    assert "Pareto front" in out
    assert png.stat().st_size > 10_000


def test_json_output_is_one_object_with_the_pareto_rows(csv, model_dir, capsys):
    assert discover(csv, "--model", model_dir, "--json") == 0  # target: the last column
    result = json.loads(capsys.readouterr().out)
    assert result["target"] == "w" and result["variables"] == ["u"]
    assert result["best"] in result["equations"]
    assert result["best"]["r2"] > 0.999999 and result["best"]["mse"] >= 0
    assert result["loss"] in ("mse", "log")
    complexities = [row["complexity"] for row in result["equations"]]
    assert complexities == sorted(complexities)


@pytest.mark.parametrize("args, message", [
    (["missing.csv"], "no such file, nor a shipped data set"),
    (["{csv}", "--target", "v"], "no column 'v'"),
])
def test_bad_input_names_the_problem(args, message, csv, model_dir, capsys):
    args = [a.format(csv=csv) for a in args]
    assert main(["discover", *args, "--model", str(model_dir)]) == 2
    assert message in capsys.readouterr().err


def test_bad_options_exit_with_usage(csv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["discover", str(csv), "--time-budget", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive number, got '0'" in capsys.readouterr().err


def test_shipped_data_sets_load_with_their_target():
    for name, dataset in DATASETS.items():
        X, y = load_dataset(name)
        assert y.name == dataset.target and len(X) == len(y) >= 5
        assert all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns)
        assert "Source:" in dataset.describe()
    with pytest.raises(ValueError, match="no shipped data set 'mars'; the data sets are: "
                                         "kepler, n2o5_arrhenius"):
        load_dataset("mars")


def test_plots_use_names_log_axes_and_the_front(model_dir):
    X, y = load_dataset("kepler")
    est = ChatSRRegressor(str(model_dir), num_candidates=4, time_budget=None, max_rounds=1,
                          random_state=0).fit(X, y)
    ax = plot_fit(est, X, y)
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "period"
    assert ax.get_xscale() == "log"  # 0.39 to 30 AU: two decades
    assert "period" in ax.get_title()
    ax = plot_pareto(est.equations_)
    assert len(ax.collections[0].get_offsets()) == len(est.equations_)
    two = np.column_stack([X["a"], X["a"] ** 2])
    est2 = ChatSRRegressor(str(model_dir), num_candidates=4, time_budget=None, max_rounds=1,
                           random_state=0).fit(two, y.to_numpy())
    assert plot_fit(est2, two, y.to_numpy()).get_xlabel() == "observed y"
