import pickle
import subprocess
import sys

import numpy as np
import pytest
import sympy
import torch

from chatsr.export import to_latex, to_numpy, to_sympy, to_torch
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import OPERATORS, ExpressionError

# (preorder, constants); x1 in [0.1, 0.9] (asin, acos), x2 in [0.5, 2], x3 in [1, 3]
FORMULAS = [
    ("add mul C sin x1 sub cos x2 C", [1.7, 0.3]),
    ("div pow x2 C sqrt x1", [2.5]),
    ("mul C log abs sub x1 x2", [-0.8]),
    ("add asin x1 acos mul C x1", [0.5]),
    ("add atan x2 tan x1", None),
    ("sub exp neg x1 inv x2", None),
    ("add pow2 sinh x1 mul pow3 cosh x2 tanh x3", None),
    ("pow const_2 x1", None),  # an integer leaf where torch needs a tensor
    ("mul const_3 x3", None),  # x2 unused: columns stay positional
    ("C", [3.0]),  # no variable: y still has shape (n,)
]


def expression(text, constants):
    return Expression(Expression.parse(text).names, constants)


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.column_stack([rng.uniform(0.1, 0.9, 50), rng.uniform(0.5, 2.0, 50),
                            rng.uniform(1.0, 3.0, 50)])  # (50, 3)


def test_formulas_cover_every_operator():
    used = {name for text, _ in FORMULAS for name in Expression.parse(text).names}
    assert set(OPERATORS) <= used


# numbers agree ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, constants", FORMULAS)
def test_numpy_and_torch_agree_with_the_expression(text, constants, X):
    expr = expression(text, constants)
    expected = expr(X)
    assert np.isfinite(expected).all()
    y = to_numpy(expr)(X)
    assert y.shape == (50,) and y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    y_torch = to_torch(expr)(torch.from_numpy(X))
    assert y_torch.shape == (50,) and y_torch.dtype == torch.float64
    np.testing.assert_allclose(y_torch.detach().numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("text, constants", FORMULAS)
def test_sympy_round_trip(text, constants, X):
    expr = expression(text, constants)
    back = Expression.from_sympy(to_sympy(expr))
    np.testing.assert_allclose(back(X), expr(X), rtol=1e-10, atol=1e-10)
    names = ["alpha", "m", "V"]
    back = Expression.from_sympy(to_sympy(expr, names), variable_names=names)
    np.testing.assert_allclose(back(X), expr(X), rtol=1e-10, atol=1e-10)


# names and printing -------------------------------------------------------------------------------
def test_variable_names_become_the_symbols():
    expr = Expression.from_sympy("2.5*x1*x3 + x2")
    assert {s.name for s in to_sympy(expr).free_symbols} == {"x1", "x2", "x3"}
    formula = to_sympy(expr, ["m", "g", "h"])
    assert {s.name for s in formula.free_symbols} == {"m", "g", "h"}
    m, g, h = sympy.symbols("m g h", real=True)
    assert sympy.simplify(formula - (2.5 * m * h + g)) == 0


def test_latex_contains_the_expected_pieces():
    latex = to_latex(Expression.from_sympy("2.5*sin(x1) + sqrt(x2)/x3"), ["theta", "m", "V"])
    for piece in (r"\sin", r"\theta", r"\sqrt{m}", r"\frac", "V", "2.5"):
        assert piece in latex, (piece, latex)
    assert "x1" not in latex


def test_latex_rounds_constants():
    expr = Expression.from_sympy("2.71828183*x1")
    assert "2.718" in to_latex(expr) and "2.71828" not in to_latex(expr)
    assert "2.71828" in to_latex(expr, precision=6)


def test_numpy_function_names_its_columns():
    f = to_numpy(Expression.from_sympy("x1 + x3"), ["a", "b", "c"])
    assert f.__doc__ == "y = a + c for X with columns a, b, c."


def test_unfitted_constants_are_symbols_in_sympy_and_errors_elsewhere():
    skeleton = Expression.parse("mul C x1")
    assert {s.name for s in to_sympy(skeleton).free_symbols} == {"c0", "x1"}
    for export in (to_numpy, to_torch):
        with pytest.raises(ExpressionError, match=f"{export.__name__} needs fitted constants"):
            export(skeleton)


@pytest.mark.parametrize("export", [to_sympy, to_latex, to_numpy, to_torch])
def test_bad_arguments(export):
    with pytest.raises(TypeError, match="expr must be a chatsr Expression, got str"):
        export("x1 + 1")
    expr = Expression.from_sympy("x1 + x2")
    with pytest.raises(TypeError, match="variable_names must be a sequence of names, got the "
                                        "string 'ab'"):
        export(expr, "ab")
    with pytest.raises(ExpressionError, match=r"name 1 variable\(s\), but the formula uses x2"):
        export(expr, ["a"])


# the torch module ---------------------------------------------------------------------------------
def test_torch_gradient_is_the_jacobian(X):
    expr = expression(*FORMULAS[0])
    module = to_torch(expr)
    module(torch.from_numpy(X)).sum().backward()
    _, jacobian = expr.value_and_jacobian(X, expr.constants)  # (n, k)
    np.testing.assert_allclose(module.constants.grad.numpy(), jacobian.sum(axis=0), rtol=1e-10)


def test_torch_constants_can_be_fine_tuned(X):
    target = expression("add mul C sin x1 sub cos x2 C", [1.7, 0.3])
    module = to_torch(target.with_constants([1.0, 0.0]))
    inputs, y = torch.from_numpy(X), torch.from_numpy(target(X))
    optimizer = torch.optim.LBFGS(module.parameters(), max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = ((module(inputs) - y) ** 2).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    tuned = module.to_expression()
    assert tuned.names == target.names
    np.testing.assert_allclose(tuned.constants, target.constants, rtol=1e-6)


def test_torch_float32_inputs_give_float32(X):
    expr = expression(*FORMULAS[1])
    y = to_torch(expr)(torch.from_numpy(X).float())
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.detach().numpy(), expr(X), rtol=1e-5)


def test_torch_bad_input_shape():
    module = to_torch(Expression.from_sympy("x1*x3"))
    with pytest.raises(ValueError, match=r"at least 3 column\(s\), got shape \(4, 2\)"):
        module(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"2-D tensor .* got shape \(4,\)"):
        module(torch.zeros(4))


def test_torch_module_repr_state_dict_and_pickle(X):
    expr = expression(*FORMULAS[0])
    module = to_torch(expr, ["theta", "r"])
    assert "theta" in repr(module) and "r" in repr(module)
    fresh = to_torch(expr.with_constants([0.0, 0.0]))
    fresh.load_state_dict(module.state_dict())
    assert fresh.to_expression() == expr
    copy = pickle.loads(pickle.dumps(module))
    assert type(copy) is type(module) and copy.to_expression() == expr
    inputs = torch.from_numpy(X)
    assert torch.equal(copy(inputs), module(inputs))


def test_importing_the_exports_does_not_import_torch():
    code = "import sys, chatsr.export; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
