"""Tests of chatsr.data.records: the JSON sample format, reading, writing and splits."""

import json

import numpy as np
import pytest

from chatsr.data.prompts import REFERENCE_REQUEST
from chatsr.data.records import (
    make_record,
    read_samples,
    sample_xy,
    split_samples,
    write_samples,
    write_splits,
)

SPEC_FIELDS = ["id", "conversations", "data_points", "expression_tokens", "standard_tokens",
               "expression_length", "num_features", "num_points", "used_variables"]

# The reference's format as SPEC.md shows it; the second record lacks the derived fields and has
# one we do not know.
REFERENCE = [
    {"id": "sr_0",
     "conversations": [
         {"from": "human", "value": "<data>\nPlease derive the expression that fits these data."},
         {"from": "gpt", "value": "Based on the data, the derived formula is: "
                                  "<|math_add|>,<|math_x1|>,<|math_x2|>"}],
     "data_points": [[0.12, -1.3, 0.0, -1.18], [1.0, 2.0, 0.0, 3.0]],
     "expression_tokens": ["<|math_add|>", "<|math_x1|>", "<|math_x2|>"],
     "standard_tokens": ["+", "x1", "x2"],
     "expression_length": 3, "num_features": 2, "num_points": 2,
     "used_variables": ["x1", "x2"]},
    {"conversations": [
        {"from": "human", "value": "<data>\nPlease derive the expression that fits these data."},
        {"from": "gpt", "value": "Based on the data, the derived formula is: "
                                 "<|math_mul|>,<|math_const_2|>,<|math_sin|>,<|math_x1|>"}],
     "data_points": [[0.5, 0.0, 0.0, 0.9589]],
     "skeleton": "2*sin(x1)"},
]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_reads_reference_files(tmp_path, suffix):
    path = tmp_path / f"ref{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(REFERENCE, indent=2))
    else:
        path.write_text("\n".join(json.dumps(r) for r in REFERENCE) + "\n")
    first, second = read_samples(path)
    assert first == {**REFERENCE[0], "constants": None, "units": None}
    assert second["id"] == "sr_1"
    assert second["expression_tokens"] == ["<|math_mul|>", "<|math_const_2|>", "<|math_sin|>",
                                           "<|math_x1|>"]
    assert second["standard_tokens"] == ["*", "const_2", "sin", "x1"]
    assert (second["expression_length"], second["num_features"], second["num_points"]) == \
        (4, 1, 1)
    assert second["used_variables"] == ["x1"] and second["skeleton"] == "2*sin(x1)"


def test_reads_a_single_object_json(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(REFERENCE[0]))
    assert len(read_samples(path)) == 1


def test_reader_names_missing_fields(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "x", "data_points": []}) + "\n")
    with pytest.raises(ValueError, match=r"sample 0 lacks \['conversations'\]"):
        read_samples(path)


def test_suffix_decides_the_format(tmp_path):
    with pytest.raises(ValueError, match=r"\.json .* or \.jsonl"):
        write_samples([], tmp_path / "samples.txt")
    with pytest.raises(ValueError, match="suffix '.csv'"):
        read_samples(tmp_path / "samples.csv")


def make_sample(i=0):
    X = np.array([[0.5, -2.0], [1.5, -1.0]])
    return make_record(["add", "mul", "C", "x1", "x2"], [2.5], X, 2.5 * X[:, 0] + X[:, 1],
                       max_dims=3, prompt=f"<data>\n{REFERENCE_REQUEST}", sample_id=f"sr_{i}")


def test_record_has_the_spec_fields_then_constants_and_units():
    record = make_sample()
    assert list(record) == SPEC_FIELDS + ["constants", "units"]
    assert record["units"] is None
    assert record["data_points"] == [[0.5, -2.0, 0.0, -0.75], [1.5, -1.0, 0.0, 2.75]]
    assert record["expression_tokens"] == ["<|math_add|>", "<|math_mul|>", "<|math_C|>",
                                           "<|math_x1|>", "<|math_x2|>"]
    assert record["standard_tokens"] == ["+", "*", "C", "x1", "x2"]
    assert (record["expression_length"], record["num_features"], record["num_points"]) == \
        (5, 2, 2)
    assert record["used_variables"] == ["x1", "x2"] and record["constants"] == [2.5]
    assert record["conversations"] == [
        {"from": "human", "value": "<data>\nPlease derive the expression that fits these data."},
        {"from": "gpt", "value": "Based on the data, the derived formula is: <|math_add|>,"
                                 "<|math_mul|>,<|math_C|>,<|math_x1|>,<|math_x2|>"}]
    X, y = sample_xy(record)
    assert X.shape == (2, 3) and y.tolist() == [-0.75, 2.75]


def test_array_points_for_transport():
    X = np.ones((3, 1))
    record = make_record(["x1"], [], X, X[:, 0], max_dims=2, prompt="<data>", lists=False)
    assert isinstance(record["data_points"], np.ndarray) and record["data_points"].shape == (3, 3)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_write_read_round_trip(tmp_path, fmt):
    samples = [make_sample(i) for i in range(5)]
    path = write_samples(samples, tmp_path / f"s.{fmt}")
    assert read_samples(path) == samples
    text = path.read_text()
    assert text.startswith("[") == (fmt == "json")


def test_splits(tmp_path):
    assert {k: len(v) for k, v in split_samples(list(range(10))).items()} == \
        {"train": 8, "val": 1, "test": 1}
    with pytest.raises(ValueError, match="summing to 1"):
        split_samples([], (0.5, 0.1, 0.1))
    samples = [make_sample(i) for i in range(20)]
    paths = write_splits(samples, tmp_path / "out", fmt="json")
    assert {k: p.name for k, p in paths.items()} == \
        {"train": "train.json", "val": "val.json", "test": "test.json"}
    assert [r["id"] for k in ("train", "val", "test") for r in read_samples(paths[k])] == \
        [f"sr_{i}" for i in range(20)]


# prompts ----------------------------------------------------------------------------------------


def test_units_are_kept_and_read_back(tmp_path):
    X = np.ones((2, 1))
    record = make_record(["x1"], [], X, X[:, 0], max_dims=1, prompt="<data>",
                         units={"x1": "m", "y": "m"})
    assert record["units"] == {"x1": "m", "y": "m"}
    assert read_samples(write_samples([record], tmp_path / "u.jsonl"))[0]["units"] == \
        {"x1": "m", "y": "m"}
