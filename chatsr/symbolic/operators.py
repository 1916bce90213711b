"""The math-token vocabulary: operators, variables and constants, and their spellings.

Each operator carries its arity, its sympy form, a numpy template and the templates of its
partial derivatives, so that :mod:`chatsr.symbolic.evaluation` can compile any skeleton to
vectorised numpy. Operators are never "protected": ``log`` of a negative number is NaN here, in the
generator and in the fitter alike, so that what a model learns and what the fitter evaluates are
one function.

>>> canonical_name("<|math_add|>"), canonical_name("+"), OPERATORS["sin"].arity
('add', 'add', 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sympy

__all__ = [
    "CONSTANT",
    "DEFAULT_MAX_VARS",
    "OPERATORS",
    "REFERENCE_OPERATORS",
    "ExpressionError",
    "Operator",
    "arity",
    "canonical_name",
    "math_token",
    "math_tokens",
]

DEFAULT_MAX_VARS = 10
TOKEN_PREFIX, TOKEN_SUFFIX = "<|math_", "|>"
CONSTANT = "C"
INTEGER_CONSTANTS = tuple(range(1, 6))
VARIABLE = re.compile(r"x([1-9][0-9]*)")
INTEGER = re.compile(r"const_([1-5])")
CHATSR_TOKEN = re.compile(r"<\|math_([A-Za-z0-9_]+)\|>")


class ExpressionError(ValueError):
    """A token sequence, sympy object or data array that cannot make a valid expression."""


@dataclass(frozen=True)
class Operator:
    """One operator of the language.

    ``numpy`` is a template over the operand names ``{0}``, ``{1}``; ``derivative`` gives the
    partial derivative with respect to each operand (``{out}`` is the operator's own value).
    """

    name: str
    arity: int
    symbol: str
    sympy: Callable[..., sympy.Expr]
    numpy: str
    derivative: tuple[str, ...]


def _op(name, arity, symbol, sympy_fn, numpy, *derivative):
    return Operator(name, arity, symbol, sympy_fn, numpy, tuple(derivative))


def _sympy_pow(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    # 5**5**5**5 would be computed exactly, forever: numeric powers stay unevaluated
    return sympy.Pow(a, b, evaluate=not (a.is_number and b.is_number))


# The first twelve are the reference ChatSR operators; the rest are what real formulas need
# (Feynman: arcsin, tanh, cosh; powers and reciprocals that are one token instead of three).
OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in [
        _op("add", 2, "+", lambda a, b: a + b, "{0} + {1}", "1.0", "1.0"),
        _op("sub", 2, "-", lambda a, b: a - b, "{0} - {1}", "1.0", "-1.0"),
        _op("mul", 2, "*", lambda a, b: a * b, "{0} * {1}", "{1}", "{0}"),
        _op("div", 2, "/", lambda a, b: a / b, "{0} / {1}", "1.0 / {1}", "-{out} / {1}"),
        _op("pow", 2, "^", _sympy_pow, "np.power({0}, {1})",
            "{1} * np.power({0}, {1} - 1.0)",
            # d/db a**b = a**b log a, which is 0 (not 0*-inf) where a**b is 0
            "np.where({out} == 0.0, 0.0, {out} * np.log({0}))"),
        _op("sin", 1, "sin", sympy.sin, "np.sin({0})", "np.cos({0})"),
        _op("cos", 1, "cos", sympy.cos, "np.cos({0})", "-np.sin({0})"),
        _op("tan", 1, "tan", sympy.tan, "np.tan({0})", "1.0 + {out} * {out}"),
        _op("log", 1, "log", sympy.log, "np.log({0})", "1.0 / {0}"),
        _op("exp", 1, "exp", sympy.exp, "np.exp({0})", "{out}"),
        _op("sqrt", 1, "sqrt", sympy.sqrt, "np.sqrt({0})", "0.5 / {out}"),
        _op("abs", 1, "abs", sympy.Abs, "np.abs({0})", "np.sign({0})"),
        _op("neg", 1, "neg", lambda a: -a, "-{0}", "-1.0"),
        _op("inv", 1, "inv", lambda a: 1 / a, "1.0 / {0}", "-{out} * {out}"),
        _op("pow2", 1, "pow2", lambda a: a**2, "{0} * {0}", "2.0 * {0}"),
        _op("pow3", 1, "pow3", lambda a: a**3, "{0} * {0} * {0}", "3.0 * {0} * {0}"),
        _op("asin", 1, "asin", sympy.asin, "np.arcsin({0})", "1.0 / np.sqrt(1.0 - {0} * {0})"),
        _op("acos", 1, "acos", sympy.acos, "np.arccos({0})", "-1.0 / np.sqrt(1.0 - {0} * {0})"),
        _op("atan", 1, "atan", sympy.atan, "np.arctan({0})", "1.0 / (1.0 + {0} * {0})"),
        _op("sinh", 1, "sinh", sympy.sinh, "np.sinh({0})", "np.cosh({0})"),
        _op("cosh", 1, "cosh", sympy.cosh, "np.cosh({0})", "np.sinh({0})"),
        _op("tanh", 1, "tanh", sympy.tanh, "np.tanh({0})", "1.0 - {out} * {out}"),
    ]
}
REFERENCE_OPERATORS = ("add", "sub", "mul", "div", "pow", "sin", "cos", "tan", "log", "exp",
                       "sqrt", "abs")
_SYMBOLS = {op.symbol: op.name for op in OPERATORS.values()}
_SYMBOLS.update({"**": "pow", "c": CONSTANT})


def math_token(name: str) -> str:
    """The ChatSR spelling of a canonical name: ``math_token("add") == "<|math_add|>"``."""
    return f"{TOKEN_PREFIX}{name}{TOKEN_SUFFIX}"


def math_tokens(max_vars: int = DEFAULT_MAX_VARS, *, operators: Iterable[str] | None = None
                ) -> list[str]:
    """Every math token of the vocabulary: operators, ``x1..x{max_vars}``, ``C``, ``const_1..5``.

    >>> math_tokens(2, operators=["add"])
    ['<|math_add|>', '<|math_x1|>', '<|math_x2|>', '<|math_C|>', '<|math_const_1|>', \
'<|math_const_2|>', '<|math_const_3|>', '<|math_const_4|>', '<|math_const_5|>']
    """
    if max_vars < 1:
        raise ValueError(f"max_vars must be at least 1, got {max_vars}")
    names = list(OPERATORS if operators is None else operators)
    names += [f"x{i}" for i in range(1, max_vars + 1)]
    names += [CONSTANT] + [f"const_{k}" for k in INTEGER_CONSTANTS]
    return [math_token(canonical_name(n)) for n in names]


def canonical_name(token: str) -> str:
    """Map any accepted spelling (``<|math_add|>``, ``add``, ``+``) to its canonical name."""
    token = token.strip()
    match = CHATSR_TOKEN.fullmatch(token)
    name = match.group(1) if match else _SYMBOLS.get(token, token)
    if name in OPERATORS or name == CONSTANT or VARIABLE.fullmatch(name) or \
            INTEGER.fullmatch(name):
        return name
    raise ExpressionError(f"unknown token {token!r}: expected an operator "
                          f"({', '.join(OPERATORS)}), a variable x1, x2, …, C or const_1..const_5")


def arity(name: str) -> int:
    """Number of operands of an operator name or token (0 for leaves).

    >>> arity("add"), arity("<|math_sin|>"), arity("x1")
    (2, 1, 0)
    """
    op = OPERATORS.get(name)
    if op is None and name.startswith("<|"):  # a token; canonical names are the fast path
        op = OPERATORS.get(canonical_name(name))
    return op.arity if op else 0
