import re

import pytest

from chatsr.data.benchmarks import BENCHMARKS, benchmark_exclusions
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.skeletons import ExclusionSet, skeleton_key


@pytest.fixture(scope="module")
def benchmark_set():
    return benchmark_exclusions()


# canonical keys and benchmark exclusion -----------------------------------------------------------
@pytest.mark.parametrize("a, b", [
    ("add x1 x2", "add x2 x1"),
    ("mul x1 x1", "pow2 x1"),
    ("mul x1 add x1 const_1", "add pow2 x1 x1"),
    ("add x1 C", "sub x1 C"),  # numbers are C, whatever their sign
    ("mul C x1", "div x1 C"),
    ("mul C exp x1", "exp add x1 C"),  # exp(x + C) = C exp(x)
    ("add C log x1", "log mul C x1"),  # log(C x) = C + log(x)
    ("div x1 mul x2 x3", "mul x1 mul inv x2 inv x3"),
    ("pow3 pow2 x1", "mul pow3 x1 pow3 x1"),
])
def test_equivalent_skeletons_share_a_key(a, b):
    assert skeleton_key(Expression.parse(a)) == skeleton_key(Expression.parse(b))


@pytest.mark.parametrize("a, b", [
    ("sin x1", "cos x1"),
    ("add x1 x2", "sub x1 x2"),
    ("mul C x1", "x1"),
    ("pow2 x1", "pow x1 C"),
    ("add sin add x1 C sin add x1 C", "mul C sin add x1 C"),  # two C-bearing atoms stay two
])
def test_different_skeletons_have_different_keys(a, b):
    assert skeleton_key(Expression.parse(a)) != skeleton_key(Expression.parse(b))


def test_key_cancels_only_exact_terms():
    assert skeleton_key(Expression.parse("sub add x1 x2 x2")) == "x1"
    assert skeleton_key(Expression.parse("div x1 x1")) == "C"
    # (x + C1) / (x + C2) is not constant: C-bearing atoms never cancel
    assert "x1" in skeleton_key(Expression.parse("div add x1 C add x1 C"))


def test_integer_constant_values_count_as_integers():
    expr = Expression.parse("pow x1 C").with_constants([6.0])
    assert skeleton_key(expr) == "x1^C"
    assert skeleton_key(expr, expr.constants) == "x1^6"
    assert skeleton_key(Expression.from_sympy("x1**6")) == "x1^6"  # written exactly
    excluded = ExclusionSet(["x1**6"])
    assert Expression.parse("pow x1 C") in excluded
    assert Expression.parse("pow3 pow2 x1") in excluded
    assert Expression.parse("pow2 x1") not in excluded


def test_exclusion_matches_up_to_variable_names_and_constants():
    excluded = ExclusionSet(["0.5*x1*x2**2 + x3"])
    assert Expression.parse("add mul mul C x2 pow2 x3 x1") in excluded  # renamed
    assert Expression.parse("add mul x2 pow2 x3 x1") not in excluded  # no constant factor
    assert Expression.parse("add mul C mul x2 pow2 x3 x2") not in excluded


@pytest.mark.parametrize("text", [
    "mul x1 add add const_1 x1 pow2 x1",  # Nguyen-1, factored
    "mul C exp mul C pow2 x1",  # Feynman I.6.2a
    "div x2 x1",  # Feynman I.25.13 q/C, renamed
    "mul C mul x2 pow2 x1",  # Feynman I.14.4 k x^2 / 2, renamed
    "add sin x2 sin pow2 x1",  # Nguyen-9, renamed
])
def test_benchmarks_written_differently_are_excluded(text, benchmark_set):
    assert Expression.parse(text) in benchmark_set


def test_every_benchmark_is_in_its_own_exclusion_set(benchmark_set):
    for bench in BENCHMARKS.values():
        expr = bench.expression()
        assert expr in benchmark_set, bench.name
        assert len(set(re.findall(r"x\d+", skeleton_key(expr)))) == \
            bench.n_variables, bench.name


def test_keys_of_deep_skeletons_need_no_recursion():
    deep = 20_000
    key = skeleton_key(Expression.parse(["sin"] * deep + ["mul", "C", "x1"]))
    assert key.count("sin(") == deep and key.endswith("(C*x1" + ")" * deep)
    long_sum = skeleton_key(Expression.parse(["add", "x1"] * deep + ["x2"]))
    assert long_sum == "C*x1 + x2"
    assert Expression.parse(["sin"] * deep + ["x1"]) not in ExclusionSet(["sin(x1)"])
