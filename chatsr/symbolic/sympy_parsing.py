"""Read sympy expressions (or text) as preorder token names, for `Expression.from_sympy`.

Numbers other than the integers 1..5 become constant placeholders ``C`` with their values;
symbols ``c0, c1, …`` are placeholders without one.

>>> sympy_to_preorder(sympify_real("2.5*sin(x1) - x2**2"))
(['sub', 'mul', 'C', 'sin', 'x1', 'pow2', 'x2'], [2.5])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sympy

from chatsr.symbolic.operators import (
    CONSTANT,
    INTEGER_CONSTANTS,
    OPERATORS,
    VARIABLE,
    ExpressionError,
)

__all__ = ["sympify_real", "sympy_to_preorder"]

_SYMPY_FUNCTIONS = {sympy.sin: "sin", sympy.cos: "cos", sympy.tan: "tan", sympy.log: "log",
                    sympy.exp: "exp", sympy.Abs: "abs", sympy.asin: "asin", sympy.acos: "acos",
                    sympy.atan: "atan", sympy.sinh: "sinh", sympy.cosh: "cosh",
                    sympy.tanh: "tanh"}
_POWERS = {sympy.Integer(2): ["pow2"], sympy.Integer(3): ["pow3"], sympy.Rational(1, 2): ["sqrt"],
           sympy.Integer(-1): ["inv"], sympy.Integer(-2): ["inv", "pow2"],
           sympy.Integer(-3): ["inv", "pow3"], sympy.Rational(-1, 2): ["inv", "sqrt"]}


def sympify_real(text: str | sympy.Basic) -> sympy.Expr:
    """``sympy.sympify`` with every symbol declared real, as :meth:`Expression.to_sympy` makes
    them, so that expressions from text and from trees compare and simplify alike.

    >>> sympify_real("x1 + c0").free_symbols == {sympy.Symbol("x1", real=True),
    ...                                          sympy.Symbol("c0", real=True)}
    True
    """
    expr = sympy.sympify(text)
    return expr.xreplace({s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols})


def sympy_to_preorder(expr: sympy.Basic, variable_names: Sequence[str] | None = None
                      ) -> tuple[list[str], list[float | None]]:
    """The preorder names of ``expr`` and the value of each ``C`` in order (None for a
    ``c0, c1, …`` symbol). Variables are ``x1, x2, …`` or the ``variable_names``, in order.

    >>> sympy_to_preorder(sympify_real("m*c0"), ["m"])
    (['mul', 'C', 'x1'], [None])
    """
    preorder = _Preorder({n: i for i, n in enumerate(variable_names or [], 1)})
    preorder.emit(sympy.sympify(expr))
    return preorder.names, preorder.values


class _Preorder:
    """Appends the preorder of sympy subtrees to ``names`` (and constants to ``values``)."""

    def __init__(self, variables: dict[str, int]):
        self.variables = variables
        self.names: list[str] = []
        self.values: list[float | None] = []

    def emit(self, e: sympy.Basic) -> None:
        if e.is_Symbol:
            self._symbol(e)
        elif e.has(sympy.zoo, sympy.oo, sympy.nan) or e.atoms(sympy.AccumBounds):
            raise ExpressionError(f"cannot convert {e}: it is not finite (a division by zero?)")
        elif e.is_number:  # any numeric subtree (2, 0.5, 4*pi, sqrt(2)) is one leaf
            self._number(e)
        elif (e.is_Add or e.is_Mul) and sum(a.is_number for a in e.args) > 1:
            numeric = [a for a in e.args if a.is_number]
            rest = [a for a in e.args if not a.is_number]
            folded = e.func(*numeric)
            self.emit(e.func(folded, *rest, evaluate=False) if rest else folded)
        elif e.is_Add:
            self._add(e)
        elif e.is_Mul:
            self._mul(e)
        elif e.is_Pow:
            self._pow(*e.args)
        elif e.func is sympy.re:  # sympy's guard for complex intermediates; ours are real or NaN
            self.emit(e.args[0])
        elif e.func in _SYMPY_FUNCTIONS and len(e.args) == 1:
            self.names.append(_SYMPY_FUNCTIONS[e.func])
            self.emit(e.args[0])
        else:
            raise ExpressionError(f"cannot convert {e.func.__name__} ({e}) to an expression: "
                                  f"supported operators are {', '.join(OPERATORS)}")

    def _chain(self, op: str, operands: Sequence[sympy.Basic]) -> None:
        """``op(op(a, b), c)…``: a left-associated chain, in preorder."""
        self.names.extend([op] * (len(operands) - 1))
        for operand in operands:
            self.emit(operand)

    def _symbol(self, e: sympy.Symbol) -> None:
        if e.name in self.variables:
            self.names.append(f"x{self.variables[e.name]}")
        elif VARIABLE.fullmatch(e.name):
            self.names.append(e.name)
        elif re.fullmatch(r"[cC](_?\d+)?", e.name):
            self.names.append(CONSTANT)
            self.values.append(None)
        else:
            raise ExpressionError(f"unknown symbol {e.name!r}: use x1, x2, … (or pass "
                                  "variable_names) and c0, c1, … for constants")

    def _number(self, e: sympy.Expr) -> None:
        try:
            value = complex(e.evalf())
        except OverflowError:  # exp(exp(exp(5))): beyond float64
            raise ExpressionError(f"cannot convert {e}: it is not finite (beyond float64)"
                                  ) from None
        if value.imag != 0:
            raise ExpressionError(f"cannot convert {e}: it is not a real number")
        if e.is_Integer and abs(int(e)) in INTEGER_CONSTANTS:
            self.names.extend(["neg"] * (int(e) < 0) + [f"const_{abs(int(e))}"])
        else:
            self.names.append(CONSTANT)
            self.values.append(value.real)

    def _add(self, e: sympy.Add) -> None:
        pos = [a for a in e.args if not a.could_extract_minus_sign()]
        neg = [-a for a in e.args if a.could_extract_minus_sign()]
        if not pos:
            self.names.append("neg")
            self._chain("add", neg)
            return
        self.names.extend(["sub"] * len(neg))
        self._chain("add", pos)
        for a in neg:  # preorder of sub(sub(P, n1), n2) is: sub sub P n1 n2
            self.emit(a)

    def _mul(self, e: sympy.Mul) -> None:
        if e.could_extract_minus_sign():
            self.names.append("neg")
            self.emit(-e)
            return
        num, den = [], []
        for a in e.args:
            base, exp = a.as_base_exp()
            if a.is_Rational and not a.is_Integer and \
                    {abs(a.p), a.q} <= set(INTEGER_CONSTANTS):  # x/2 reads better than 0.5*x
                num += [sympy.Integer(a.p)] if a.p != 1 else []
                den.append(sympy.Integer(a.q))
            elif exp.is_Number and exp.is_negative:
                den.append(base ** -exp)
            else:
                num.append(a)
        if den:
            self.names.append("div")
            self._chain("mul", num or [sympy.Integer(1)])
            self._chain("mul", den)
        else:
            self._chain("mul", e.args)

    def _pow(self, base: sympy.Expr, exp: sympy.Expr) -> None:
        if exp in _POWERS:
            self.names.extend(_POWERS[exp])
            self.emit(base)
        elif base == sympy.E:
            self.names.append("exp")
            self.emit(exp)
        else:
            self.names.append("pow")
            self.emit(base)
            self.emit(exp)
