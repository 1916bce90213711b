import numpy as np
import pytest

from chatsr.cli.main import COMMANDS, build_parser, main
from chatsr.data.prompts import check_fact, parse_prompt
from chatsr.data.records import read_samples, sample_xy
from chatsr.symbolic.expressions import Expression


def test_generate_writes_80_10_10_splits_of_valid_samples(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["generate", "--num-samples", "2000", "--max-vars", "3", "--out", str(out),
                 "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    splits = {name: read_samples(out / f"{name}.jsonl") for name in ("train", "val", "test")}
    assert {name: len(s) for name, s in splits.items()} == {"train": 1600, "val": 200, "test": 200}
    assert str(out / "train.jsonl") in printed
    ids = [r["id"] for s in splits.values() for r in s]
    assert ids == [f"sr_{i}" for i in range(2000)]
    for record in (r for s in splits.values() for r in s):
        X, y = sample_xy(record)
        assert X.shape[1] == 10 and 1 <= record["num_features"] <= 3
        expr = Expression.parse(record["expression_tokens"])
        np.testing.assert_allclose(expr(X, record["constants"]), y, rtol=1e-9, atol=0)
        assert all(check_fact(f, record) for f in parse_prompt(record["conversations"][0]["value"]))


def test_generate_json_format_and_options(tmp_path):
    assert main(["generate", "--num-samples", "20", "--out", str(tmp_path), "--format", "json",
                 "--num-points", "15", "--max-dims", "4", "--max-vars", "2", "--noise", "0.01",
                 "--operators", "add,mul,sin:0.5", "--seed", "3", "--quiet"]) == 0
    records = read_samples(tmp_path / "train.json")
    assert len(records) == 16
    assert all(len(r["data_points"]) == 15 and len(r["data_points"][0]) == 5 for r in records)
    tokens = {t for r in records for t in r["standard_tokens"]}
    assert tokens <= {"+", "*", "sin", "x1", "x2", "C", *(f"const_{i}" for i in range(1, 6))}


@pytest.mark.parametrize("argv, message", [
    (["generate", "--num-samples", "0", "--out", "x"], "--num-samples: expected a positive"),
    (["generate", "--num-samples", "ten", "--out", "x"], "--num-samples: expected a positive"),
    (["generate", "--num-samples", "5"], "required: --out"),
    (["generate", "--num-samples", "5", "--out", "x", "--num-points", "80-10"], "--num-points"),
    (["generate", "--num-samples", "5", "--out", "x", "--noise", "-1"], "--noise: expected"),
    (["generate", "--num-samples", "5", "--out", "x", "--format", "csv"], "invalid choice"),
    (["generate", "--num-samples", "5", "--out", "x", "--min-length", "9", "--max-length", "4"],
     "--min-length (9) must not exceed --max-length (4)"),
    (["generate", "--num-samples", "5", "--out", "x", "--max-vars", "4", "--max-length", "5"],
     "--max-vars=4 needs formulas of at least 7 tokens"),
    (["generate", "--num-samples", "5", "--out", "x", "--operators", "add,nope"],
     "'nope' is not an operator"),
    (["generate", "--num-samples", "5", "--out", "x", "--operators", "add:heavy"], "NAME:WEIGHT"),
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_too_few_formulas_is_a_clean_error(tmp_path, capsys):
    status = main(["generate", "--num-samples", "100", "--out", str(tmp_path), "--operators",
                   "mul", "--max-vars", "1", "--max-length", "3", "--quiet"])
    assert status == 1
    assert "only" in capsys.readouterr().err


def test_every_command_is_registered_with_help():
    parser = build_parser()
    help_text = parser.format_help()
    for command in COMMANDS:
        assert command.name in help_text and command.help
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0
