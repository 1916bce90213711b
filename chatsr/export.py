"""Exports of a fitted formula: sympy, LaTeX, a numpy function and a torch module.

Each takes an :class:`~chatsr.symbolic.expressions.Expression` whose constants are fitted
and, optionally, names for ``x1, x2, …`` (in column order). The numpy function is the
expression's own compiled evaluation; the torch module runs the same compiled code
(:mod:`chatsr.symbolic.evaluation`) with torch functions, so both give the values ``expr(X)``
gives, and it holds the constants as a parameter so that they can be fine-tuned by gradient
descent. torch is imported by
:func:`to_torch` only: the symbolic side of the package never needs it.

>>> expr = Expression.from_sympy("2.5*sin(x1) + x2**2")
>>> to_sympy(expr, ["theta", "r"])
r**2 + 2.5*sin(theta)
>>> to_latex(expr, ["theta", "r"])
'r^{2} + 2.5 \\\\sin{\\\\left(\\\\theta \\\\right)}'
>>> to_numpy(expr)(np.array([[0.0, 3.0]])).tolist()
[9.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from chatsr.symbolic.evaluation import compile_skeleton, make_backend
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import ExpressionError

if TYPE_CHECKING:
    import torch

__all__ = ["to_latex", "to_numpy", "to_sympy", "to_torch"]


def to_sympy(expr: Expression, variable_names: Sequence[str] | None = None) -> sympy.Expr:
    """The formula as a sympy expression.

    Parameters
    ----------
    expr
        The formula; unfitted constants appear as symbols ``c0, c1, …``.
    variable_names
        Symbol names for ``x1, x2, …`` in order; default ``x1, x2, …``.

    Returns
    -------
    sympy.Expr
        With real symbols; :meth:`Expression.from_sympy` converts it back.

    Examples
    --------
    >>> to_sympy(Expression.from_sympy("0.5*x1/x2"), ["m", "V"])
    0.5*m/V
    """
    _check(expr, variable_names)
    return expr.to_sympy(variable_names=variable_names)


def to_latex(expr: Expression, variable_names: Sequence[str] | None = None, *,
             precision: int = 4) -> str:
    """LaTeX of the formula, constants rounded to ``precision`` significant digits.

    Examples
    --------
    >>> to_latex(Expression.from_sympy("sqrt(x1)/2.71828"), ["m"])
    '0.3679 \\\\sqrt{m}'
    """
    _check(expr, variable_names)
    return expr.latex(variable_names=variable_names, precision=precision)


def to_numpy(expr: Expression, variable_names: Sequence[str] | None = None
             ) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``f(X) -> y`` for ``X`` of shape (n, d), column ``i-1`` holding ``x_i``.

    It is the expression's compiled evaluation with the fitted constants: ``y`` has shape
    (n,), float64; invalid operations give NaN or inf without warnings. ``variable_names``
    only name the columns in the function's docstring.

    Examples
    --------
    >>> f = to_numpy(Expression.from_sympy("1.5*x1*x2"), ["m", "a"])
    >>> f(np.array([[2.0, 3.0], [1.0, 1.0]])).tolist(), f.__doc__
    ([9.0, 1.5], 'y = 1.5*a*m for X with columns m, a.')
    """
    _check(expr, variable_names, fitted_for="to_numpy")
    formula = expr.infix(variable_names=variable_names)

    def evaluate(X: np.ndarray) -> np.ndarray:
        return expr(X)

    columns = ", ".join(variable_names or [f"x{i}" for i in range(1, _n_columns(expr) + 1)])
    evaluate.__doc__ = f"y = {formula} for X with columns {columns}." if columns else \
        f"y = {formula} for any X."
    return evaluate


def to_torch(expr: Expression, variable_names: Sequence[str] | None = None) -> torch.nn.Module:
    """A ``torch.nn.Module`` computing the formula: ``forward(X)`` maps (n, d) to (n,).

    The constants are one float64 parameter ``constants`` (in ``C0, C1, …`` order), so the
    module can be fine-tuned like any other; ``to_expression()`` gives the formula back with
    the current values. ``y`` has the dtype of ``X`` (float32 or float64); move the module with
    ``.to(device)`` as any other. ``variable_names`` name the variables in the module's repr.

    Examples
    --------
    >>> import torch
    >>> module = to_torch(Expression.from_sympy("2.0*exp(-x1) + 0.5"))
    >>> module(torch.zeros(3, 1, dtype=torch.float64)).tolist()
    [2.5, 2.5, 2.5]
    >>> [name for name, _ in module.named_parameters()], module.constants.tolist()
    (['constants'], [0.5, 2.0])
    >>> with torch.no_grad():
    ...     _ = module.constants.mul_(2.0)
    >>> str(module.to_expression())
    '1.0 + 4.0*exp(-x1)'
    """
    _check(expr, variable_names, fitted_for="to_torch")
    return _torch_expression_class()(expr, variable_names)


def __getattr__(name: str) -> Any:
    # the module class of to_torch is built on first use, so importing this module does not
    # import torch; looking it up by name here is what lets pickle find it
    if name == "TorchExpression":
        return _torch_expression_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check(expr: Any, variable_names: Sequence[str] | None, fitted_for: str = "") -> None:
    if not isinstance(expr, Expression):
        raise TypeError(f"expr must be a chatsr Expression, got {type(expr).__name__}; build one "
                        "with Expression.parse or Expression.from_sympy")
    if isinstance(variable_names, str):
        raise TypeError(f"variable_names must be a sequence of names, got the string "
                        f"{variable_names!r}")
    if variable_names is not None and len(variable_names) < _n_columns(expr):
        raise ExpressionError(f"variable_names {list(variable_names)} name "
                              f"{len(variable_names)} variable(s), but the formula uses "
                              f"x{_n_columns(expr)}")
    if fitted_for and expr.constants is None and expr.n_constants:
        raise ExpressionError(f"{fitted_for} needs fitted constants, but {expr.infix()} has "
                              f"{expr.n_constants} unfitted: fit them first or use "
                              f"expr.with_constants([...])")


def _n_columns(expr: Expression) -> int:
    """How many columns ``X`` needs: up to the highest variable used."""
    return expr.variables[-1] if expr.variables else 0


@functools.cache
def _torch_expression_class() -> type:
    import torch

    # the evaluator's compiled code with torch functions: the values expr(X) has, and
    # gradients by autograd; arrays made from X keep its dtype and device
    backend = make_backend("torch", torch, aliases={"power": "pow"},
                           ones=lambda X: X.new_ones(X.shape[0]),
                           zeros=lambda X, k: X.new_zeros((X.shape[0], k)))

    class TorchExpression(torch.nn.Module):
        """A fitted formula as a torch module; see :func:`chatsr.export.to_torch`."""

        def __init__(self, expr: Expression, variable_names: Sequence[str] | None = None):
            super().__init__()
            self.names = expr.names
            self.variable_names = None if variable_names is None else tuple(variable_names)
            self.constants = torch.nn.Parameter(
                torch.tensor(expr.constants or (), dtype=torch.float64))  # (k,)
            self._n_columns = _n_columns(expr)

        def forward(self, X: torch.Tensor) -> torch.Tensor:
            if X.ndim != 2 or X.shape[1] < self._n_columns:
                raise ValueError(f"X must be a 2-D tensor (n_points, n_columns) with at least "
                                 f"{self._n_columns} column(s), got shape {tuple(X.shape)}")
            return compile_skeleton(self.names, False, backend)(X, self.constants)

        def to_expression(self) -> Expression:
            """The formula with the module's current constant values."""
            return Expression(self.names, self.constants.detach().cpu().tolist() or None)

        def extra_repr(self) -> str:
            return self.to_expression().infix(variable_names=self.variable_names)

    # named as at module level, where __getattr__ serves it, so that pickle finds the class
    TorchExpression.__module__ = __name__
    TorchExpression.__qualname__ = "TorchExpression"
    return TorchExpression
