"""The one evaluator (chatsr.symbolic.evaluation): compiled and interpreted paths, backends."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import sympy

from chatsr.symbolic.evaluation import (
    NUMPY,
    TEMPLATE_FUNCTIONS,
    compile_skeleton,
    evaluate,
    make_backend,
)
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import CONSTANT, OPERATORS

LEAVES = ["x1", "x2", "x3", CONSTANT, "const_2"]


def random_formula(rng, depth=4):
    """A random preorder over every operator; constant-only subtrees included, unlike the
    generator's, so that scalar operands are exercised too."""
    if depth == 0 or rng.random() < 0.3:
        return [LEAVES[rng.integers(len(LEAVES))]]
    name = list(OPERATORS)[rng.integers(len(OPERATORS))]
    return [name] + [n for _ in range(OPERATORS[name].arity)
                     for n in random_formula(rng, depth - 1)]


@pytest.fixture(scope="module")
def formulas():
    rng = np.random.default_rng(0)
    X = rng.uniform(0.2, 2.0, size=(40, 3)) * rng.choice([-1.0, 1.0], size=(40, 3))
    out = []
    for _ in range(300):
        names = random_formula(rng)
        out.append((tuple(names), rng.uniform(-3, 3, names.count(CONSTANT))))
    return X, out


def test_the_formulas_use_every_operator(formulas):
    assert set(OPERATORS) <= {n for names, _ in formulas[1] for n in names}


def test_evaluate_is_compile_skeleton_to_the_last_bit(formulas):
    X, cases = formulas
    with np.errstate(all="ignore"):
        for names, c in cases:
            y = evaluate(names, X, list(c))
            assert y.shape == (len(X),)
            np.testing.assert_array_equal(y, compile_skeleton(names)(X, c), err_msg=str(names))


def test_evaluate_agrees_with_sympy(formulas):
    X, cases = formulas
    symbols = sympy.symbols("x1 x2 x3", real=True)
    compared = 0
    for names, c in cases:
        expr = Expression(names, c).to_sympy()
        if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan) or expr.atoms(sympy.AccumBounds):
            continue  # sympy folded a constant part to a non-number: nothing to compare
        with np.errstate(all="ignore"):
            y = evaluate(names, X, list(c))
            reference = np.broadcast_to(np.asarray(
                sympy.lambdify(symbols, expr, "numpy")(*X.T), dtype=complex), y.shape)
        both = np.isfinite(y) & np.isfinite(reference) & (reference.imag == 0)
        np.testing.assert_allclose(y[both], reference.real[both], rtol=1e-8, atol=1e-10,
                                   err_msg=str(expr))
        compared += both.any()
    assert compared > 100


def test_a_formula_without_variables_has_one_value_per_point():
    X = np.zeros((4, 2))
    assert evaluate(["add", "C", "const_3"], X, [0.5]).tolist() == [3.5] * 4
    assert compile_skeleton(("add", "C", "const_3"))(X, np.array([0.5])).tolist() == [3.5] * 4


def test_jacobian_is_the_derivative(formulas):
    X, cases = formulas
    eps = 1e-6
    with np.errstate(all="ignore"):
        for names, c in cases[:60]:
            if not len(c):
                continue
            y, jac = compile_skeleton(names, True)(X, c)
            for i in range(len(c)):
                step = np.zeros_like(c)
                step[i] = eps
                numeric = (evaluate(names, X, list(c + step))
                           - evaluate(names, X, list(c - step))) / (2 * eps)
                ok = np.isfinite(numeric) & np.isfinite(jac[:, i]) & (np.abs(numeric) < 1e4)
                np.testing.assert_allclose(jac[ok, i], numeric[ok], rtol=1e-4, atol=1e-4)


def test_a_backend_must_offer_every_template_function():
    assert {"power", "where", "sin"} <= set(TEMPLATE_FUNCTIONS)
    partial = SimpleNamespace(**{f: getattr(np, f) for f in TEMPLATE_FUNCTIONS if f != "power"})
    with pytest.raises(ValueError, match="lacks power: pass the module's names"):
        make_backend("partial", partial, ones=NUMPY.ones, zeros=NUMPY.zeros)
    renamed = SimpleNamespace(**vars(partial), pow=np.power)
    backend = make_backend("renamed", renamed, ones=NUMPY.ones, zeros=NUMPY.zeros,
                           aliases={"power": "pow"})
    X = np.array([[2.0], [3.0]])
    assert compile_skeleton(("pow", "x1", "C"), False, backend)(X, np.array([2.0])).tolist() == \
        [4.0, 9.0]


def test_torch_backend_agrees_with_numpy(formulas):
    torch = pytest.importorskip("torch")
    backend = make_backend("torch", torch, aliases={"power": "pow"},
                           ones=lambda X: X.new_ones(X.shape[0]),
                           zeros=lambda X, k: X.new_zeros((X.shape[0], k)))
    X, cases = formulas
    X_torch = torch.from_numpy(X)
    with np.errstate(all="ignore"):
        for names, c in cases:
            c_torch = torch.from_numpy(c)
            y = compile_skeleton(names, False, backend)(X_torch, c_torch)
            np.testing.assert_allclose(y.numpy(), compile_skeleton(names)(X, c), rtol=1e-12,
                                       atol=1e-12, equal_nan=True, err_msg=str(names))
            y, jac = compile_skeleton(names, True, backend)(X_torch, c_torch)
            y_np, jac_np = compile_skeleton(names, True)(X, c)
            np.testing.assert_allclose(jac.numpy(), jac_np, rtol=1e-12, atol=1e-12,
                                       equal_nan=True, err_msg=str(names))


def test_the_evaluator_never_imports_torch():
    code = "import sys, chatsr.symbolic.evaluation; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compiling_and_interpreting_any_depth_needs_no_recursion():
    deep = 50_000
    names = tuple(["neg"] * deep + ["add", "mul", "C", "x1", "exp", "x2"])
    X = np.array([[1.0, 0.0], [2.0, 1.0]])
    expected = 3.0 * X[:, 0] + np.exp(X[:, 1])  # an even number of negations
    np.testing.assert_allclose(evaluate(names, X, [3.0]), expected)
    np.testing.assert_allclose(compile_skeleton(names)(X, np.array([3.0])), expected)
    y, jacobian = compile_skeleton(names, True)(X, np.array([3.0]))
    np.testing.assert_allclose(y, expected)
    np.testing.assert_allclose(jacobian[:, 0], X[:, 0])
