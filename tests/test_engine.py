"""The Operon engine: formulas cross to its trees and back unchanged, it takes the model's
formulas into its population, and it keeps to the operators it is given."""

import numpy as np
import pyoperon as op
import pytest

from chatsr.search.engine import ENGINE_OPERATORS, Engine, EngineSettings, from_tree, to_tree
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import OPERATORS, arity

HASHES = [101, 102, 103]


def _formula(name: str) -> Expression:
    """A small formula with operator ``name`` at its root, a constant and both kinds of leaf."""
    operand = "+ x1 * C x2" if name in ("log", "sqrt", "acos", "asin") else "* C x2"
    if name in ("acos", "asin", "atanh"):
        operand = "* C x2"
    text = f"{name} {operand}" if arity(name) == 1 else f"{name} x1 {operand}"
    return Expression.parse(text).with_constants([0.25])


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_crosses_to_the_engine_and_back(name):
    expression = _formula(name)
    tree = to_tree(expression, HASHES)
    back = from_tree(tree, HASHES)
    assert back.names == expression.names and back.constants == expression.constants
    X = np.random.default_rng(0).uniform(0.5, 2.0, size=(30, 2))
    dataset = op.Dataset(np.asfortranarray(X))
    hashes = [v.Hash for v in sorted(dataset.Variables, key=lambda v: v.Index)]
    ours = expression(X)
    theirs = op.Evaluate(to_tree(expression, hashes), dataset, op.Range(0, len(X)))
    np.testing.assert_allclose(theirs, ours, rtol=1e-4)  # Operon computes in single precision


def test_integer_constants_and_weighted_variables_read_back():
    assert from_tree(to_tree(Expression.parse("* const_3 pow3 x1"), HASHES), HASHES).names == (
        "mul", "const_3", "pow3", "x1")
    weighted = op.InfixParser.Parse("2.5 * X1", {"X1": HASHES[0]})  # Operon's w * x
    assert from_tree(weighted, HASHES).infix() == "2.5*x1"


def test_a_proposed_formula_enters_the_population_and_comes_out_unchanged():
    X = np.random.default_rng(1).uniform(1, 3, size=(80, 2))
    y = X[:, 0] * np.exp(-X[:, 1]) + X[:, 0]
    engine = Engine(X, y, seed=0)
    seed = Expression.parse("+ * x1 exp neg x2 x1")
    assert engine.add([seed]) == 1
    assert engine.front()[-1].names == seed.names
    engine.evolve(3)  # it survives: nothing the engine breeds is more accurate
    best = engine.front()[-1]
    np.testing.assert_allclose(best(X), y, rtol=1e-5)


def test_seeds_with_constants_are_fitted_on_the_way_in():
    X = np.random.default_rng(2).uniform(1, 3, size=(60, 1))
    y = X[:, 0] * np.exp(0.5 * X[:, 0]) + 2.0 * np.sin(X[:, 0])
    engine = Engine(X, y, seed=0)
    engine.add([Expression.parse("+ * x1 exp * C x1 * C sin x1")], fit=True)  # C = 1 at first
    best = engine.front()[-1]
    assert best.names[-6:] == ("exp", "mul", "C", "x1", "mul", "C", "sin", "x1")[-6:]
    np.testing.assert_allclose(best(X), y, rtol=1e-4)


def test_the_engine_keeps_to_its_operators():
    X = np.random.default_rng(3).uniform(-2, 2, size=(60, 1))
    y = np.sin(X[:, 0]) + X[:, 0] ** 2
    engine = Engine(X, y, operators=["add", "mul", "sub"], frequencies={"sub": 0}, seed=0,
                    settings=EngineSettings(population_size=100))
    engine.evolve(5)
    used = {n for e in engine.front() for n in e.names if n in OPERATORS}
    assert used and used <= {"add", "mul"}


def test_a_seed_gives_one_run():
    X = np.random.default_rng(4).uniform(1, 3, size=(40, 2))
    y = X[:, 0] / X[:, 1]
    runs = []
    for _ in range(2):
        engine = Engine(X, y, seed=7, settings=EngineSettings(population_size=100))
        engine.evolve(3)
        runs.append([(e.names, e.constants) for e in engine.front()])
    assert runs[0] == runs[1]


def test_what_does_not_fit_the_engine_stays_out():
    engine = Engine(np.ones((10, 1)) * np.arange(10)[:, None], np.arange(10.0), seed=0,
                    settings=EngineSettings(max_length=5))
    long = Expression.parse("+ + + x1 x1 x1 x1")  # 7 nodes
    other_column = Expression.parse("x2")
    assert engine.add([long, other_column]) == 0
    assert set(ENGINE_OPERATORS) < set(OPERATORS)  # neg, inv, pow3 are written with constants
