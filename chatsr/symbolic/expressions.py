"""Expressions: preorder trees of math tokens, sympy conversion, printing and evaluation.

An expression is stored as its preorder traversal of canonical token names (``add``, ``x1``,
``C``, ``const_2``…; see :mod:`chatsr.symbolic.operators`). Constant placeholders ``C`` are numbered
``C0, C1, …`` in preorder.

Examples
--------
>>> expr = Expression.parse("<|math_add|>,<|math_mul|>,<|math_C|>,<|math_sin|>,<|math_x1|>,"
...                         "<|math_x2|>")
>>> expr.infix()
'C0*sin(x1) + x2'
>>> expr.to_tokens("symbol")
['+', '*', 'C', 'sin', 'x1', 'x2']
>>> import numpy as np
>>> expr.with_constants([2.0])(np.array([[0.0, 1.0]])).tolist()
[1.0]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from chatsr.symbolic.evaluation import compile_skeleton
from chatsr.symbolic.operators import (
    CHATSR_TOKEN,
    CONSTANT,
    INTEGER,
    INTEGER_CONSTANTS,
    OPERATORS,
    VARIABLE,
    ExpressionError,
    arity,
    canonical_name,
    math_token,
)

__all__ = ["Expression", "ExpressionError", "Node", "sympify_real"]


@dataclass(frozen=True)
class Node:
    """A node of an expression tree: a canonical name and its children."""

    name: str
    children: tuple[Node, ...] = ()


def _split_string(text: str) -> list[str]:
    chatsr = CHATSR_TOKEN.findall(text)
    if chatsr:  # also accepts the reference's answer "…the derived formula is: <|math_add|>,…"
        return chatsr
    return [t for t in re.split(r"[\s,]+", text.strip()) if t]


class Expression:
    """An expression as a preorder sequence of canonical names, with optional constant values.

    Build one with :meth:`parse` (tokens or text) or :meth:`from_sympy`. Constant placeholders
    ``C`` are numbered ``C0, C1, …`` in preorder; an expression whose ``constants`` are set is
    "fitted" and prints, evaluates and converts with those values.
    """

    __slots__ = ("names", "constants", "variables")

    def __init__(self, names: Sequence[str], constants: Sequence[float] | None = None):
        self.names: tuple[str, ...] = tuple(names)
        _check_preorder(self.names)
        n_const = self.names.count(CONSTANT)
        if constants is not None:
            constants = tuple(float(c) for c in constants)
            if len(constants) != n_const:
                raise ExpressionError(f"the skeleton has {n_const} constant placeholder(s) but "
                                      f"{len(constants)} value(s) were given")
        self.constants: tuple[float, ...] | None = constants
        self.variables: list[int] = sorted(
            {int(m.group(1)) for n in self.names if (m := VARIABLE.fullmatch(n))})
        """Sorted 1-based indices of the variables used."""

    # construction ------------------------------------------------------------------------
    @classmethod
    def parse(cls, tokens: str | Iterable[str]) -> Expression:
        """Parse a preorder sequence: a list of tokens or a string.

        Tokens may be ChatSR tokens (``<|math_add|>``), canonical names (``add``) or symbols
        (``+``); a string is split on commas/whitespace, or its ChatSR tokens are extracted.

        >>> Expression.parse("+ x1 * C x2").infix()
        'C0*x2 + x1'
        """
        raw = _split_string(tokens) if isinstance(tokens, str) else list(tokens)
        return cls([canonical_name(t) for t in raw])

    @classmethod
    def from_sympy(cls, expr: sympy.Basic | str, *,
                   variable_names: Sequence[str] | None = None) -> Expression:
        """Convert a sympy expression; numbers other than the integers 1..5 become constants.

        Symbols ``x1, x2, …`` (or the given ``variable_names``, in order) are variables; symbols
        ``c0, c1, …`` are constant placeholders.

        >>> Expression.from_sympy("2.5*sin(x1) - x2**2").names
        ('sub', 'mul', 'C', 'sin', 'x1', 'pow2', 'x2')
        """
        if isinstance(expr, str):
            expr = sympify_real(expr)
        names: list[str] = []
        values: list[float | None] = []
        _from_sympy(sympy.sympify(expr), {n: i for i, n in enumerate(variable_names or [], 1)},
                    names, values)
        fitted = all(v is not None for v in values)
        return cls(names, values if fitted and values else None)

    def with_constants(self, constants: Sequence[float]) -> Expression:
        """The same skeleton with the given constant values."""
        return Expression(self.names, constants)

    def skeleton(self) -> Expression:
        """The same expression without constant values."""
        return Expression(self.names)

    # views --------------------------------------------------------------------------------
    @property
    def n_constants(self) -> int:
        """Number of constant placeholders ``C``."""
        return self.names.count(CONSTANT)

    @property
    def complexity(self) -> int:
        """Node count of the tree."""
        return len(self.names)

    @property
    def tree(self) -> Node:
        """The expression as a tree of :class:`Node`."""
        def build(pos: int) -> tuple[Node, int]:
            name, pos = self.names[pos], pos + 1
            children = []
            for _ in range(arity(name)):
                child, pos = build(pos)
                children.append(child)
            return Node(name, tuple(children)), pos
        return build(0)[0]

    def to_tokens(self, style: str = "chatsr") -> list[str]:
        """Preorder tokens in ``"chatsr"`` (``<|math_add|>``), ``"name"`` (``add``) or
        ``"symbol"`` (``+``) spelling."""
        if style == "chatsr":
            return [math_token(n) for n in self.names]
        if style == "name":
            return list(self.names)
        if style == "symbol":
            return [OPERATORS[n].symbol if n in OPERATORS else n for n in self.names]
        raise ValueError(f"style must be 'chatsr', 'name' or 'symbol', got {style!r}")

    def to_answer(self) -> str:
        """The reference's comma-joined answer string."""
        return ",".join(self.to_tokens())

    def to_sympy(self, *, variable_names: Sequence[str] | None = None,
                 constants: str = "auto") -> sympy.Expr:
        """The sympy expression.

        ``constants="auto"`` uses the fitted values when set and symbols ``c0, c1, …``
        otherwise; ``"symbols"`` always uses the symbols. Variables are ``x1, x2, …`` or the
        given ``variable_names``.
        """
        if constants not in ("auto", "symbols"):
            raise ValueError(f"constants must be 'auto' or 'symbols', got {constants!r}")
        use_values = constants == "auto" and self.constants is not None
        symbols = _variable_symbols(self.variables, variable_names)
        counter = iter(range(self.n_constants))

        def convert(node: Node) -> sympy.Expr:
            if node.name in OPERATORS:
                return OPERATORS[node.name].sympy(*(convert(c) for c in node.children))
            if node.name == CONSTANT:
                i = next(counter)
                if use_values:
                    return sympy.Float(self.constants[i])
                return sympy.Symbol(f"c{i}", real=True)
            if m := INTEGER.fullmatch(node.name):
                return sympy.Integer(int(m.group(1)))
            return symbols[int(node.name[1:])]
        return convert(self.tree)

    def latex(self, *, variable_names: Sequence[str] | None = None, precision: int = 4) -> str:
        """LaTeX of the expression, fitted constants rounded to ``precision`` significant digits."""
        expr = self.to_sympy(variable_names=variable_names)
        expr = expr.xreplace({f: sympy.Float(f, precision) for f in expr.atoms(sympy.Float)})
        return sympy.latex(expr)

    def _repr_latex_(self) -> str:
        """Jupyter shows an expression as rendered math."""
        return f"${self.latex()}$"

    def infix(self, *, variable_names: Sequence[str] | None = None, precision: int = 4) -> str:
        """Readable infix text; placeholders print as ``C0, C1, …`` until constants are fitted."""
        expr = self.to_sympy(variable_names=variable_names)
        if self.constants is None:
            expr = expr.xreplace({s: sympy.Symbol(s.name.upper(), real=True)
                                  for s in expr.free_symbols if re.fullmatch(r"c\d+", s.name)})
        expr = expr.xreplace({f: sympy.Float(f, precision) for f in expr.atoms(sympy.Float)})
        return str(expr)

    # evaluation ---------------------------------------------------------------------------
    def __call__(self, X: np.ndarray, constants: Sequence[float] | None = None) -> np.ndarray:
        """Evaluate on ``X`` of shape (n_points, n_columns); column ``i-1`` is ``x_i``.

        Invalid operations give NaN/inf as in numpy; no warnings are raised.
        """
        X = self._check_data(X)
        c = self._constant_array(constants)
        with np.errstate(all="ignore"):
            return compile_skeleton(self.names, False)(X, c)

    def value_and_jacobian(self, X: np.ndarray, constants: Sequence[float]
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Values (n,) and their Jacobian (n, n_constants) with respect to the constants."""
        X = self._check_data(X)
        c = self._constant_array(constants)
        with np.errstate(all="ignore"):
            return compile_skeleton(self.names, True)(X, c)

    def _check_data(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ExpressionError(f"X must be a 2-D array (n_points, n_columns), got shape "
                                  f"{X.shape}")
        used = self.variables
        if used and used[-1] > X.shape[1]:
            raise ExpressionError(f"the expression uses x{used[-1]} but the data has only "
                                  f"{X.shape[1]} column(s)")
        return X

    def _constant_array(self, constants: Sequence[float] | None) -> np.ndarray:
        if constants is None:
            if self.constants is None and self.n_constants:
                raise ExpressionError(f"the expression has {self.n_constants} unfitted constant(s):"
                                      " pass constants= or fit them first")
            constants = self.constants or ()
        c = np.asarray(constants, dtype=np.float64).reshape(-1)
        if c.size != self.n_constants:
            raise ExpressionError(f"expected {self.n_constants} constant value(s), got {c.size}")
        return c

    # python protocol ------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Expression) and self.names == other.names
                and self.constants == other.constants)

    def __hash__(self) -> int:
        return hash((self.names, self.constants))

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"Expression({self.infix()!r})"

    def __str__(self) -> str:
        return self.infix()


def _check_preorder(names: tuple[str, ...]) -> None:
    if not names:
        raise ExpressionError("empty expression: expected at least one token")
    open_slots = 1
    for pos, name in enumerate(names):
        if open_slots == 0:
            trailing = ", ".join(names[pos:])
            raise ExpressionError(f"{len(names) - pos} trailing token(s) after a complete "
                                  f"expression of {pos} token(s): {trailing}")
        open_slots += arity(canonical_name(name)) - 1
    if open_slots:
        raise ExpressionError(f"truncated preorder sequence: {open_slots} operand(s) missing "
                              f"after {len(names)} token(s)")


def _variable_symbols(used: list[int], variable_names: Sequence[str] | None
                      ) -> dict[int, sympy.Symbol]:
    if variable_names is not None and used and used[-1] > len(variable_names):
        raise ExpressionError(f"the expression uses x{used[-1]} but only {len(variable_names)} "
                              "variable name(s) were given")
    return {i: sympy.Symbol(variable_names[i - 1] if variable_names else f"x{i}", real=True)
            for i in used}


def sympify_real(text: str | sympy.Basic) -> sympy.Expr:
    """``sympy.sympify`` with every symbol declared real, as :meth:`Expression.to_sympy` makes
    them, so that expressions from text and from trees compare and simplify alike."""
    expr = sympy.sympify(text)
    return expr.xreplace({s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols})


# sympy -> preorder ----------------------------------------------------------------------------
_SYMPY_FUNCTIONS = {sympy.sin: "sin", sympy.cos: "cos", sympy.tan: "tan", sympy.log: "log",
                    sympy.exp: "exp", sympy.Abs: "abs", sympy.asin: "asin", sympy.acos: "acos",
                    sympy.atan: "atan", sympy.sinh: "sinh", sympy.cosh: "cosh",
                    sympy.tanh: "tanh"}
_POWERS = {sympy.Integer(2): ["pow2"], sympy.Integer(3): ["pow3"], sympy.Rational(1, 2): ["sqrt"],
           sympy.Integer(-1): ["inv"], sympy.Integer(-2): ["inv", "pow2"],
           sympy.Integer(-3): ["inv", "pow3"], sympy.Rational(-1, 2): ["inv", "sqrt"]}


def _chain(names: list[str], values: list, op: str, parts: list[Callable[[], None]]) -> None:
    """Emit ``op(op(a, b), c)…`` for a left-assoc chain of operand emitters (preorder)."""
    names.extend([op] * (len(parts) - 1))
    for part in parts:
        part()


def _from_sympy(e: sympy.Basic, variables: dict[str, int], names: list[str], values: list
                ) -> None:
    def emit(sub):
        return lambda: _from_sympy(sub, variables, names, values)

    if e.is_Symbol:
        if e.name in variables:
            names.append(f"x{variables[e.name]}")
        elif VARIABLE.fullmatch(e.name):
            names.append(e.name)
        elif re.fullmatch(r"[cC](_?\d+)?", e.name):
            names.append(CONSTANT)
            values.append(None)
        else:
            raise ExpressionError(f"unknown symbol {e.name!r}: use x1, x2, … (or pass "
                                  "variable_names) and c0, c1, … for constants")
    elif e.has(sympy.zoo, sympy.oo, sympy.nan) or e.atoms(sympy.AccumBounds):
        raise ExpressionError(f"cannot convert {e}: it is not finite (a division by zero?)")
    elif e.is_number:  # any numeric subtree (2, 0.5, 4*pi, sqrt(2)) is one leaf
        try:
            value = complex(e.evalf())
        except OverflowError:  # exp(exp(exp(5))): beyond float64
            raise ExpressionError(f"cannot convert {e}: it is not finite (beyond float64)"
                                  ) from None
        if value.imag != 0:
            raise ExpressionError(f"cannot convert {e}: it is not a real number")
        if e.is_Integer and abs(int(e)) in INTEGER_CONSTANTS:
            names.extend(["neg"] * (int(e) < 0) + [f"const_{abs(int(e))}"])
        else:
            names.append(CONSTANT)
            values.append(value.real)
    elif (e.is_Add or e.is_Mul) and sum(a.is_number for a in e.args) > 1:
        numeric = [a for a in e.args if a.is_number]
        rest = [a for a in e.args if not a.is_number]
        folded = e.func(*numeric)
        emit(e.func(folded, *rest, evaluate=False) if rest else folded)()
    elif e.is_Add:
        pos = [a for a in e.args if not a.could_extract_minus_sign()]
        neg = [-a for a in e.args if a.could_extract_minus_sign()]
        if not pos:
            names.append("neg")
            _chain(names, values, "add", [emit(a) for a in neg])
            return
        names.extend(["sub"] * len(neg))
        _chain(names, values, "add", [emit(a) for a in pos])
        for a in neg:  # preorder of sub(sub(P, n1), n2) is: sub sub P n1 n2
            emit(a)()
    elif e.is_Mul:
        if e.could_extract_minus_sign():
            names.append("neg")
            emit(-e)()
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
            num = num or [sympy.Integer(1)]
            names.append("div")
            _chain(names, values, "mul", [emit(a) for a in num])
            _chain(names, values, "mul", [emit(a) for a in den])
        else:
            _chain(names, values, "mul", [emit(a) for a in e.args])
    elif e.is_Pow:
        base, exp = e.args
        if exp in _POWERS:
            names.extend(_POWERS[exp])
            emit(base)()
        elif base == sympy.E:
            names.append("exp")
            emit(exp)()
        else:
            names.append("pow")
            emit(base)()
            emit(exp)()
    elif e.func is sympy.re:  # sympy's guard for complex intermediates; ours are real or NaN
        emit(e.args[0])()
    elif e.func in _SYMPY_FUNCTIONS and len(e.args) == 1:
        names.append(_SYMPY_FUNCTIONS[e.func])
        emit(e.args[0])()
    else:
        raise ExpressionError(f"cannot convert {e.func.__name__} ({e}) to an expression: "
                              f"supported operators are {', '.join(OPERATORS)}")


