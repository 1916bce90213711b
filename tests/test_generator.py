import ast
import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from chatsr.data.benchmarks import benchmark_exclusions
from chatsr.data.generator import CHUNK_SIZE, GeneratorConfig, generate_samples, iter_samples
from chatsr.data.prompts import check_fact, parse_prompt
from chatsr.data.records import sample_xy
from chatsr.data.trees import _structure_problem, _TreeSampler
from chatsr.symbolic.canonical import canonical
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import CONSTANT
from chatsr.symbolic.operators import OPERATORS as OPERATOR_NAMES
from chatsr.symbolic.skeletons import skeleton_key

SETTINGS = dict(max_vars=3, max_length=15, num_points=(10, 60))


@pytest.fixture(scope="module")
def samples():
    return generate_samples(400, seed=1, progress=False, **SETTINGS)


def names_of(record):
    return Expression.parse(record["expression_tokens"]).names


# every record is a valid, self-consistent sample --------------------------------------------------
def test_records_reproduce_their_targets(samples):
    for record in samples:
        X, y = sample_xy(record)
        expr = Expression.parse(record["expression_tokens"])
        assert expr.n_constants == len(record["constants"])
        np.testing.assert_allclose(expr(X, record["constants"]), y, rtol=1e-9, atol=0)


def test_the_data_layer_builds_no_code_from_strings():
    # formulas are evaluated by chatsr.symbolic.evaluation, from the one operator table
    import chatsr.data

    for path in Path(chatsr.data.__file__).parent.glob("*.py"):
        calls = [node.func.id for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
        assert not {"eval", "exec", "compile"} & set(calls), path


def test_fields_padding_and_counts(samples):
    for record in samples:
        expr = Expression.parse(record["expression_tokens"])
        points = np.asarray(record["data_points"])
        k = record["num_features"]
        assert points.shape == (record["num_points"], 10 + 1)
        assert record["used_variables"] == [f"x{i}" for i in range(1, k + 1)]
        assert expr.variables == list(range(1, k + 1))  # each of x1..xk appears
        assert np.all(points[:, k:-1] == 0.0)  # unused columns are zero
        assert np.all(np.isfinite(points))
        assert 1 <= k <= 3 and 1 <= record["expression_length"] <= 15
        assert record["expression_length"] == len(record["expression_tokens"])
        assert record["standard_tokens"] == expr.to_tokens("symbol")
        assert 10 <= record["num_points"] <= 60
        assert record["conversations"][1]["value"] == (
            "Based on the data, the derived formula is: " + ",".join(record["expression_tokens"]))


def test_targets_are_usable(samples):
    for record in samples:
        _, y = sample_xy(record)
        assert np.abs(y).max() <= 1e6
        assert y.std() > 1e-3 * abs(y.mean())


def test_ids_are_sequential(samples):
    assert [r["id"] for r in samples] == [f"sr_{i}" for i in range(len(samples))]


def test_skeletons_are_unique_and_pass_the_guards(samples):
    keys = [skeleton_key(names_of(r)) for r in samples]
    assert len(set(keys)) == len(keys)
    for record, key in zip(samples, keys, strict=True):
        names = list(names_of(record))
        assert _structure_problem(names) == ""
        assert key.count("C") >= names.count(CONSTANT)  # no redundant constant


def test_distribution_is_varied(samples):
    assert set(Counter(r["num_features"] for r in samples)) == {1, 2, 3}
    assert len({r["expression_length"] for r in samples}) >= 12
    ops = Counter(t for r in samples for t in names_of(r))
    assert {"add", "mul", "sin", "exp", "log", "C"} <= set(ops)
    assert 0 < sum(t.startswith("const_") for t in ops.elements()) < 0.05 * sum(ops.values())
    # supports: positive, negative and symmetric ranges over several orders of magnitude
    columns = [sample_xy(r)[0][:, j] for r in samples for j in range(r["num_features"])]
    assert any(c.min() > 0 for c in columns) and any(c.max() < 0 for c in columns)
    assert any(c.min() < 0 < c.max() for c in columns)
    scales = np.log10([np.abs(c).max() for c in columns])
    assert scales.max() - scales.min() > 3


def test_constants_are_drawn_per_sample():
    raw = generate_samples(300, seed=1, progress=False, canonical=False, **SETTINGS)
    values = np.array([c for r in raw for c in r["constants"]])
    assert (values < 0).any() and (values > 0).any()
    magnitudes = np.abs(values)
    assert magnitudes.min() >= 0.1 and magnitudes.max() <= 10
    assert np.isclose(magnitudes, np.round(magnitudes)).mean() > 0.1  # some small integers


# prompts ------------------------------------------------------------------------------------------
def test_every_stated_fact_is_true(samples):
    kinds = Counter()
    plain = 0
    for record in samples:
        facts = parse_prompt(record["conversations"][0]["value"])
        plain += not facts
        for fact in facts:
            kinds[fact.kind] += 1
            assert check_fact(fact, record), (fact, record["expression_tokens"])
    assert 0.15 * len(samples) < plain < 0.5 * len(samples)
    assert set(kinds) == {"variables", "n_variables", "contains", "excludes", "n_constants",
                          "positive", "negative"}


def test_plain_reference_prompt_appears(samples):
    prompts = Counter(r["conversations"][0]["value"] for r in samples)
    assert prompts["<data>\nPlease derive the expression that fits these data."] > 10


# determinism --------------------------------------------------------------------------------------
def test_same_seed_same_output_and_workers_do_not_matter():
    one = generate_samples(80, seed=7, workers=1, progress=False, **SETTINGS)
    two = generate_samples(80, seed=7, workers=2, progress=False, **SETTINGS)
    assert one == two
    again = generate_samples(80, seed=7, progress=False, **SETTINGS)
    assert again == one
    other = generate_samples(80, seed=8, progress=False, **SETTINGS)
    assert [r["expression_tokens"] for r in other] != [r["expression_tokens"] for r in one]


def test_noise_is_relative_to_std_y():
    noisy = generate_samples(60, seed=3, noise=0.05, progress=False, **SETTINGS)
    ratios = []
    for record in noisy:
        X, y = sample_xy(record)
        clean = Expression.parse(record["expression_tokens"])(X, record["constants"])
        ratio = (y - clean).std() / clean.std()
        assert 0.01 < ratio < 0.15
        ratios.append(ratio)
    assert 0.04 < np.mean(ratios) < 0.06


def test_fixed_number_of_points_and_dims():
    records = generate_samples(20, max_vars=2, max_dims=4, num_points=33, seed=0, progress=False)
    assert {len(r["data_points"]) for r in records} == {33}
    assert {len(r["data_points"][0]) for r in records} == {5}


def test_iter_samples_is_deterministic_and_shards_partition_the_stream():
    options = dict(max_vars=2, num_points=(10, 20))
    stream = list(itertools.islice(iter_samples(5, **options), 2 * CHUNK_SIZE))
    assert stream == list(itertools.islice(iter_samples(5, **options), 2 * CHUNK_SIZE))
    shard0 = list(itertools.islice(iter_samples(5, shard=(0, 2), **options), CHUNK_SIZE))
    shard1 = list(itertools.islice(iter_samples(5, shard=(1, 2), **options), CHUNK_SIZE))
    assert shard0 + shard1 == stream
    assert [r["id"] for r in stream] == [f"sr_{i}" for i in range(2 * CHUNK_SIZE)]


# tree shapes --------------------------------------------------------------------------------------
def motzkin_shapes(m, min_leaves):
    """Every preorder arity sequence of a unary-binary tree with m nodes and >= min_leaves."""
    out = []
    for arities in itertools.product((0, 1, 2), repeat=m):
        open_slots = 1
        for i, a in enumerate(arities):
            open_slots += a - 1
            if open_slots == 0 and i < m - 1:
                break
        else:
            if open_slots == 0 and arities.count(0) >= min_leaves:
                out.append(arities)
    return out


@pytest.mark.parametrize("k", [1, 2])
def test_shapes_are_uniform(k):
    config = GeneratorConfig(min_length=6, max_length=6, max_vars=k, operators=["add", "sin"],
                             exclude=None)
    sampler = _TreeSampler(config)
    rng = np.random.default_rng(0)
    shapes = Counter()
    for _ in range(6000):
        names, n_vars = sampler.tree(rng)
        if n_vars == k:
            shapes[tuple({"add": 2, "sin": 1}.get(n, 0) for n in names)] += 1
    expected = motzkin_shapes(6, k)
    assert set(shapes) == set(expected)
    mean = sum(shapes.values()) / len(expected)
    assert all(abs(count - mean) < 0.25 * mean for count in shapes.values()), shapes


def test_operator_weights_are_respected():
    config = GeneratorConfig(operators={"add": 3.0, "mul": 1.0, "sin": 1.0}, exclude=None)
    sampler = _TreeSampler(config)
    rng = np.random.default_rng(0)
    ops = Counter(n for _ in range(3000) for n in sampler.tree(rng)[0])
    assert 2.5 < ops["add"] / ops["mul"] < 3.5
    assert not set(ops) - {"add", "mul", "sin", "x1", "x2", "x3", "C", *(
        f"const_{i}" for i in range(1, 6))}


# canonical targets and the science-shaped prior -------------------------------------------------
def test_targets_are_canonical_by_default(samples):
    for record in samples:
        names = names_of(record)
        assert canonical(names, record["constants"]) == (names, tuple(record["constants"]))


def test_raw_targets_on_request():
    raw = generate_samples(200, seed=1, progress=False, canonical=False, **SETTINGS)
    rewritten = [r for r in raw if canonical(names_of(r))[0] != names_of(r)]
    assert len(rewritten) > 20  # random trees are often spelled otherwise


def test_targets_use_only_the_enabled_operators():
    allowed = {"add", "mul", "sin"}
    records = generate_samples(100, operators=sorted(allowed), max_vars=2, num_points=10,
                               science_weight=0.3, seed=0, progress=False)
    used = {n for r in records for n in names_of(r) if n in OPERATOR_NAMES}
    assert used <= allowed and "mul" in used  # x*x stays mul, not pow2


@pytest.fixture(scope="module")
def science():
    return generate_samples(200, seed=2, progress=False, science_weight=1.0, max_vars=3,
                            num_points=(10, 40))


def test_science_prior_is_power_laws_on_positive_supports(science):
    benchmark_set = benchmark_exclusions()
    counts = Counter()
    for record in science:
        X, y = sample_xy(record)
        k = record["num_features"]
        assert (X[:, :k] > 0).all()
        assert names_of(record) not in benchmark_set
        counts[k] += 1
        np.testing.assert_allclose(Expression.parse(record["expression_tokens"])(
            X, record["constants"]), y, rtol=1e-9)
    assert max(counts) > 3  # up to science_max_vars variables, not max_vars
    tokens = Counter(n for r in science for n in names_of(r))
    assert tokens["sqrt"] and tokens["exp"] and tokens["div"] and tokens["pow2"]
    scales = [np.log10(sample_xy(r)[0][:, 0].mean()) for r in science]
    assert max(scales) - min(scales) > 2  # supports of varied scale


def test_science_share_follows_its_weight():
    mixed = generate_samples(300, seed=4, progress=False, science_weight=0.5, max_vars=2,
                             num_points=10)
    many = sum(r["num_features"] > 2 for r in mixed)  # only the prior has more than max_vars
    assert 0.1 * len(mixed) < many < 0.5 * len(mixed)


# benchmark exclusion ------------------------------------------------------------------------------
def test_benchmark_skeletons_never_generated():
    benchmark_set = benchmark_exclusions()
    # a tiny grammar where benchmark skeletons (x1*x2, x1/x2, C*x1*x2**2, ...) are likely
    options = dict(operators=["add", "sub", "mul", "div"], max_vars=2, max_length=7,
                   num_points=10, progress=False)
    leaked = [r for r in generate_samples(300, exclude=None, seed=0, **options)
              if names_of(r) in benchmark_set]
    assert len(leaked) >= 5  # without exclusion they do appear: the test can fail
    kept = generate_samples(300, seed=0, **options)
    assert not [r for r in kept if names_of(r) in benchmark_set]


def test_custom_exclusion_list():
    records = generate_samples(200, operators=["mul", "add"], max_vars=2, max_length=5,
                               exclude=["x1*x2", "x1 + x2"], num_points=10, seed=0,
                               unique=False, progress=False)
    keys = {skeleton_key(names_of(r)) for r in records}
    assert not keys & {"x1*x2", "x1 + x2"}


# configuration errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    (dict(max_length=0), "max_length must be a positive integer"),
    (dict(min_length=8, max_length=4), "min_length (8) must not exceed max_length (4)"),
    (dict(max_vars=11, max_dims=10), "max_vars (11) must not exceed max_dims (10)"),
    (dict(max_vars=4, max_length=5), "at least 7 tokens"),
    (dict(num_points=(50, 10)), "num_points must be"),
    (dict(noise=-0.1), "noise must be"),
    (dict(operators=["add", "frobnicate"]), "'frobnicate' is not an operator"),
    (dict(operators={"add": 0.0}), "at least one operator"),
    (dict(operators=["sin"], max_vars=2), "needs a binary operator"),
    (dict(exclude="everything"), "exclude must be"),
    (dict(science_weight=1.5), "science_weight must be a number in [0, 1]"),
    (dict(units_prob=-0.1), "units_prob must be a number in [0, 1]"),
    (dict(science_weight=0.5, max_dims=3, max_vars=3),
     "science_max_vars (8) must not exceed max_dims (3)"),
    (dict(science_max_length=0), "science_max_length must be a positive integer"),
])
def test_bad_configuration_names_the_argument(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        GeneratorConfig(**options)


def test_bad_call_arguments():
    with pytest.raises(ValueError, match="num_samples must be an integer >= 0"):
        generate_samples(-1, progress=False)
    with pytest.raises(ValueError, match="workers"):
        generate_samples(1, workers=0, progress=False)
    with pytest.raises(TypeError, match="unknown option"):
        generate_samples(1, max_variables=2, progress=False)


def test_too_few_distinct_skeletons_is_an_error():
    with pytest.raises(RuntimeError, match="only .* sample"):
        generate_samples(50, operators=["mul"], max_vars=1, max_length=3, num_points=10,
                         progress=False)
    # repeated skeletons allowed: fine
    assert len(generate_samples(50, operators=["mul"], max_vars=1, max_length=3, num_points=10,
                                unique=False, progress=False)) == 50
