"""The ``chatsr`` command: subcommands, and user errors as one line with exit status 2."""

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from chatsr.cli.arguments import (
    non_negative_float,
    non_negative_int,
    number_type,
    positive_float,
    positive_int,
)
from chatsr.cli.main import COMMANDS, build_parser, main
from chatsr.data.prompts import check_fact, parse_prompt
from chatsr.data.records import read_samples, sample_xy
from chatsr.symbolic.expressions import Expression


def one_line_error(capsys, argv):
    """Run ``chatsr argv``: it must exit with status 2 and print exactly one line on stderr,
    no traceback; returns that line."""
    try:
        status = main(argv)
    except SystemExit as exit_info:  # argparse's own errors
        status = exit_info.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"u": rng.uniform(1, 5, 20)})
    frame["w"] = 3.0 * frame["u"] + 1.0
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


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
    line = one_line_error(capsys, ["generate", "--num-samples", "100", "--out", str(tmp_path),
                                   "--operators", "mul", "--max-vars", "1", "--max-length", "3",
                                   "--quiet"])
    assert line.startswith("chatsr generate: error: ") and "only" in line


def test_every_command_is_registered_with_help():
    parser = build_parser()
    help_text = parser.format_help()
    for command in COMMANDS:
        assert command.name in help_text and command.help
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0


@pytest.mark.parametrize("parse, good, bad", [
    (positive_int, {"3": 3, " 7 ": 7}, ["0", "-2", "2.5", "ten", "", "1e3"]),
    (non_negative_int, {"0": 0, "12": 12}, ["-1", "0.5", "x"]),
    (positive_float, {"2.5": 2.5, "1e-3": 1e-3}, ["0", "-1", "nan", "inf", "abc", "-0"]),
    (non_negative_float, {"0": 0.0, "0.01": 0.01}, ["-0.1", "nan", "inf", "-inf", "a"]),
])
def test_number_types_accept_finite_numbers_in_range(parse, good, bad):
    for text, value in good.items():
        assert parse(text) == value and type(parse(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=rf"expected .*, got {text!r}"):
            parse(text)
    assert parse.__name__ == number_type(type(next(iter(good.values()))),
                                         positive=parse in (positive_int, positive_float)
                                         ).__name__


def write(tmp_path, name, content):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return str(path)


@pytest.mark.parametrize("data, message", [
    (lambda t: write(t, "header.csv", "u,w\n"), r"has a header row \(u, w\) but no data rows"),
    (lambda t: write(t, "empty.csv", ""), "is empty"),
    (lambda t: str(t), "is a folder, not a CSV file"),
    (lambda t: write(t, "data.json", json.dumps({"u": [1, 2], "w": [3, 4]})), "looks like JSON"),
    (lambda t: write(t, "records.json", '\n  [{"u": 1}]'), "looks like JSON"),
    (lambda t: str(t / "missing.csv"), "no such file, nor a shipped data set"),
    (lambda t: write(t, "image.png", bytes(range(256)) * 8), "is a binary file, not a CSV"),
    (lambda t: write(t, "text.csv", "name,w\na,b\nc,d\n"), "target column 'w' .* is not numeric"),
    (lambda t: write(t, "labels.csv", "name,w\na,1\nc,2\n"),
     "no numeric column besides the target 'w'"),
    (lambda t: write(t, "ragged.csv", "u,w\n1,2\n1,2,3,4\n"), "not a readable CSV file"),
])
def test_discover_names_unusable_data_in_one_line(tmp_path, capsys, data, message):
    line = one_line_error(capsys, ["discover", data(tmp_path)])
    assert line.startswith("chatsr discover: error: ")
    assert re.search(message, line), line


@pytest.mark.parametrize("options, message", [
    (["--target", "v"], "no column 'v'"),
    (["--time-budget", "abc"], "argument --time-budget: expected a positive number, got 'abc'"),
    (["--time-budget", "-1"], "--time-budget: expected a positive number"),
    (["--time-budget", "nan"], "--time-budget: expected a positive number"),
    (["--num-candidates", "2.5"], "--num-candidates: expected a positive integer"),
    (["--seed", "-1"], "--seed: expected an integer >= 0"),
    (["--plot", "{tmp}/no/such/folder/fit.png"], "the folder '.*folder' does not exist"),
    (["--plot", "{tmp}"], "is a folder; give a file name"),
    (["--plot", "{tmp}/fit.xyz"], "must end in a format matplotlib writes: .*png"),
    (["--prompt", "x" * 5000], "prompt has 5,000 characters, more than the 1,000 allowed"),
    (["--prompt", "\U0001F600" * 900], "prompt is .* tokens long"),
    (["--model", "{tmp}/nowhere"], "no chatsr model folder .*nowhere: it does not exist"),
    (["--model", "{tmp}"], "config.json missing"),
    (["--model", "{tmp}/data.csv"], "is a file, not a chatsr model folder"),
])
def test_discover_names_bad_options_before_the_fit(tmp_path, csv, capsys, options, message):
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    line = one_line_error(capsys, ["discover", str(csv), *options])
    assert re.search(message, line), line
    assert capsys.readouterr().out == ""  # no fit ran, nothing was printed


def test_a_model_folder_with_garbage_is_one_line(tmp_path, csv, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("not json")
    line = one_line_error(capsys, ["discover", str(csv), "--model", str(tmp_path / "model")])
    assert re.search(r"config.json is not a JSON file", line), line


def test_library_errors_during_the_fit_are_one_line(tmp_path, capsys):
    data = write(tmp_path, "holes.csv", "u,w\n1,2\n2,\n3,4\n4,5\n")  # a NaN in w
    line = one_line_error(capsys, ["discover", data])
    assert line.startswith("chatsr discover: error: ")


def test_verbose_shows_the_traceback_instead(tmp_path):
    with pytest.raises(ValueError, match="no such file, nor a shipped data set"):
        main(["discover", str(tmp_path / "missing.csv"), "-v"])


@pytest.mark.parametrize("argv, message", [
    (["generate", "--num-samples", "5", "--out", "{file}"], "--out '.*' is a file, not a folder"),
    (["bench", "--out", "{file}"], "--out '.*' is a file, not a folder"),
    (["bench", "--out", "{tmp}/b", "--model", "{tmp}/nowhere"], "--model: no chatsr model "
                                                                "folder"),
    (["train", "--train-file", "{tmp}/missing.jsonl"], "--train-file '.*missing.jsonl': no such "
                                                       "file"),
    (["train", "--val-file", "{tmp}"], "--val-file '.*': a folder, not a file"),
    (["train", "--output-dir", "{file}"], "--output-dir '.*' is a file, not a folder"),
    (["train", "--init-from", "{tmp}"], r"--init-from: no chatsr model in .* \(config.json "
                                        r"missing\)"),
    (["train", "--lr", "-1"], "--lr: expected a positive number"),
    (["train", "--config", "{tmp}/missing.json"], "missing.json: No such file or directory"),
    (["train", "--config", "{file}"], "chatsr train: error: "),
    (["debug", "{tmp}", "{tmp}/missing.jsonl"], "cannot read SAMPLES_FILE"),
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_other_commands_name_bad_paths_in_one_line(tmp_path, capsys, argv, message):
    file = write(tmp_path, "file.txt", "not json, not a folder")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{file}", file) for a in argv]
    line = one_line_error(capsys, argv)
    assert re.search(message, line), line
    assert (tmp_path / "b").exists() is False  # nothing ran


def run_cli(cwd, *args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "chatsr.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["discover", "header.csv"], "has a header row (u, w) but no data rows"),
    (["discover", "data.json"], "looks like JSON"),
    (["discover", "good.csv", "--plot", "missing/fit.png"], "the folder 'missing' does not exist"),
])
def test_the_installed_command_prints_one_line_and_exits_2(tmp_path, args, message):
    write(tmp_path, "header.csv", "u,w\n")
    write(tmp_path, "data.json", "{}")
    write(tmp_path, "good.csv", "u,w\n1,2\n2,3\n3,4\n")
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("chatsr discover: error: ") and message in result.stderr
    assert result.stdout == ""
