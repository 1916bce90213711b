"""The notebook explorer without a browser: set widgets, click Discover, read the result widgets."""

from __future__ import annotations

import base64
import datetime
import html
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import chatsr.model.pretrained
from chatsr.data.datasets import DATASETS
from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.tokenizer import load_tokenizer
from chatsr.symbolic.operators import OPERATORS
from chatsr.widgets import STAGES, Explorer, read_csv


def tiny_model():
    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    return ChatSRForCausalLM(ChatSRConfig.tiny(tokenizer)).eval(), tokenizer


TINY = tiny_model()


def make(**options) -> Explorer:
    # no clock: the results depend on the seed, not on how busy the machine is
    explorer = Explorer(**({"model": TINY, "random_state": 0, "top_k": 5, "max_rounds": 3}
                           | options))
    explorer.num_candidates.value = 8
    return explorer


def upload(explorer: Explorer, content: bytes, name: str = "data.csv") -> None:
    explorer.upload.value = ({"name": name, "type": "text/csv", "size": len(content),
                              "content": memoryview(content),
                              "last_modified": datetime.datetime.now()},)


def linear_csv() -> bytes:
    speed = np.random.default_rng(0).uniform(1, 10, 40)
    rows = "\n".join(f"{s},{3.0 * s + 2.0}" for s in speed)
    return f"speed,distance\n{rows}\n".encode()


@pytest.fixture(scope="module")
def linear() -> Explorer:
    """An explorer that discovered a formula for distance = 3 speed + 2."""
    explorer = make()
    upload(explorer, linear_csv(), "linear.csv")
    explorer.discover_button.click()
    return explorer


def test_starts_on_the_first_data_set_with_its_target_prompt_and_all_operators():
    explorer = make()
    kepler = DATASETS["kepler"]
    assert explorer.dataset.value == "kepler"
    assert "Kepler" in explorer.description.value
    assert explorer.target.value == kepler.target
    assert explorer.features.value == ("a",)  # the label column "planet" is not offered
    assert explorer.prompt.value == kepler.prompt
    assert "It contains sin." in explorer.prompt.placeholder
    assert "x1 = a" in explorer.variables.value
    assert set(explorer.operator_boxes) == set(OPERATORS)
    assert explorer.allowed_operators is None
    assert explorer.tabs.titles == ("Formula", "Pareto", "Plot", "Debug")
    assert explorer.estimator is None and explorer.formula.value == ""


def test_shows_itself_in_a_notebook():
    bundle = make()._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"]


def test_the_model_is_loaded_on_discover_only(monkeypatch):
    calls = []

    def load(path):
        calls.append(path)
        return TINY

    monkeypatch.setattr(chatsr.model.pretrained, "load_pretrained", load)
    explorer = make(model="somewhere")
    assert calls == []
    explorer.discover_button.click()
    explorer.discover_button.click()
    assert calls == ["somewhere"]
    assert explorer.estimator is not None


def test_a_missing_model_is_an_error_message(tmp_path):
    explorer = make(model=tmp_path / "missing")
    explorer.discover_button.click()
    assert "FileNotFoundError" in explorer.message.value
    assert "does not exist" in explorer.message.value  # names the folder and what is wrong
    assert explorer.progress.bar_style == "danger"
    assert not explorer.discover_button.disabled
    assert explorer.formula.value == ""


def test_an_upload_becomes_the_chosen_data_with_the_last_column_as_target():
    explorer = make()
    upload(explorer, b"# measured\nu,v,w\n1,2,3\n4,5,7\n2,2,2\n", "mine.csv")
    assert explorer.dataset.value == "mine.csv (uploaded)"
    assert explorer.dataset.options == (*DATASETS, "mine.csv (uploaded)")
    assert explorer.target.value == "w"
    assert explorer.features.value == ("u", "v")
    assert explorer.prompt.value == ""
    assert explorer.upload.value == ()  # so that the same file can be uploaded again
    explorer.target.value = "u"
    assert explorer.features.options == ("v", "w")
    assert explorer.features.value == ("v", "w")


@pytest.mark.parametrize(("content", "reason"), [
    (b"\xff\xfe\x00\x81binary", "not UTF-8"),
    (b"", "empty"),
    (b"name,planet\nMars,red\n", "0 numeric column"),
    (b"x\n1\n2\n", "1 numeric column"),
    (b"x,y\n", "no rows"),
    (b'x,y\n1,2\n3,"4\n', "not a valid CSV"),
])
def test_a_bad_upload_is_an_error_message_and_keeps_the_data(content, reason):
    explorer = make()
    upload(explorer, content, "bad.csv")
    assert "cannot read bad.csv" in explorer.message.value
    assert reason in explorer.message.value
    assert "Traceback" not in explorer.message.value
    assert explorer.dataset.value == "kepler"
    assert explorer.dataset.options == tuple(DATASETS)


def test_read_csv_raises_value_error_only():
    assert read_csv(b"a,b\n1,2\n").shape == (1, 2)
    with pytest.raises(ValueError, match="numeric"):
        read_csv(b"a\nx\n")


def test_discover_shows_the_formula_with_r2_and_mse(linear):
    est = linear.estimator
    assert est.score(linear.frame[["speed"]], linear.frame["distance"]) > 0.999999
    formula = linear.formula.value
    assert formula.count("$") == 2
    assert "distance =" in formula and "speed" in formula
    assert "R² = 1.000000" in formula and "MSE" in formula
    assert linear.message.value == ""
    assert not linear.discover_button.disabled
    assert linear.progress.value == len(STAGES) and linear.progress.bar_style == "success"
    assert linear.status.value.startswith("done in")


def test_the_status_follows_the_search_rounds():
    explorer = make()
    explorer.dataset.value = "kepler"
    seen = []
    explorer.status.observe(lambda change: seen.append(change["new"]), names="value")
    explorer.discover_button.click()
    assert any(text.startswith("searching: round 1, best NMSE") for text in seen), seen
    assert "tidying the formulas…" in seen


def test_the_pareto_tab_lists_the_rows_of_equations(linear):
    table = linear.estimator.equations_
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", linear.pareto.value)[1:]  # after the header
    assert len(rows) == len(table)
    complexities = [int(re.search(r"<td>(\d+)</td>", row).group(1)) for row in rows]
    assert complexities == table["complexity"].astype(int).tolist()
    bold = [i for i, row in enumerate(re.findall(r"<tr[^>]*>", linear.pareto.value)[1:])
            if "bold" in row]
    assert bold == [table.index.get_loc(linear.estimator.best_.name)]


def test_the_plot_tab_holds_a_png_and_no_figure_stays_open(linear):
    open_before = plt.get_fignums()  # other tests' figures may be open
    linear.discover()
    (output,) = linear.plot.outputs
    png = base64.b64decode(output["data"]["image/png"])
    assert png.startswith(b"\x89PNG")
    assert plt.get_fignums() == open_before


def test_the_debug_tab_lists_sorted_first_token_probabilities(linear):
    first = linear.report.first_token
    assert len(first) == 5
    probabilities = [p for _, p in first]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-6
    for token, p in first:
        assert f"{p:.4f}" in linear.debug.value
        assert html.escape(token) in linear.debug.value


def test_options_reach_the_regressor():
    explorer = make()
    upload(explorer, linear_csv())
    for name in ("sin", "cos", "exp"):
        explorer.operator_boxes[name].value = False
    explorer.prompt.value = "There is no exp in the formula."
    explorer.num_candidates.value = 3
    explorer.discover_button.click()
    est = explorer.estimator
    assert explorer.allowed_operators == [n for n in OPERATORS if n not in ("sin", "cos", "exp")]
    assert est.operators == explorer.allowed_operators
    assert est.num_candidates == 3 and est.random_state == 0
    assert est.time_budget is None and est.max_rounds == 3  # the explorer's clock-free setting
    assert f"19 of {len(OPERATORS)}" in explorer.operators_panel.get_title(0)


def test_errors_from_fit_are_messages_and_clear_old_results():
    explorer = make()
    upload(explorer, linear_csv())
    explorer.discover_button.click()
    assert explorer.formula.value
    upload(explorer, b"x,y\n1,5\n2,5\n3,5\n4,5\n5,5\n6,5\n", "flat.csv")
    explorer.discover_button.click()
    assert "ValueError: y is constant" in explorer.message.value
    assert explorer.formula.value == explorer.pareto.value == explorer.debug.value == ""
    assert explorer.plot.outputs == () and explorer.estimator is None
    assert not explorer.discover_button.disabled


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: setattr(e.features, "value", ()), "choose at least one feature"),
    (lambda e: [setattr(box, "value", False) for box in e.operator_boxes.values()],
     "tick at least one operator"),
])
def test_impossible_choices_are_messages(change, message):
    explorer = make()
    change(explorer)
    explorer.discover_button.click()
    assert message in explorer.message.value
    assert explorer.status.value == "failed"


def test_the_button_is_disabled_while_discovering(monkeypatch):
    explorer = make()
    seen = []
    monkeypatch.setattr(explorer, "_discover", lambda: seen.append(
        explorer.discover_button.disabled))
    explorer.discover_button.click()
    assert seen == [True]
    assert not explorer.discover_button.disabled


def test_without_data_sets_only_an_upload_offers_data():
    explorer = make(datasets={})
    assert explorer.dataset.value is None
    upload(explorer, linear_csv(), "linear.csv")
    assert explorer.dataset.value == "linear.csv (uploaded)"
    assert explorer.target.value == "distance"
