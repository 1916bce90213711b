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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from chatsr.symbolic.evaluation import compile_skeleton
from chatsr.symbolic.operators import (
    CHATSR_TOKEN,
    CONSTANT,
    INTEGER,
    OPERATORS,
    VARIABLE,
    ExpressionError,
    arity,
    canonical_name,
    math_token,
)
from chatsr.symbolic.sympy_parsing import (
    MAX_DEPTH,
    parse_formula,
    sympify_real,
    sympy_to_preorder,
)
from chatsr.symbolic.validation import check_array

__all__ = ["PI_TOLERANCE", "Expression", "ExpressionError", "Node", "sympify_real"]

# A fitted constant this close (relative) to a multiple of pi below is that multiple when the
# formula is written out (as `chatsr.symbolic.simplify.SNAP_TOLERANCE` snaps to simple
# numbers): a refit on a clock reaches 1e-8 or so on exact data, and a constant fitted to noisy
# data is seldom this close by chance. sin(6.28318530717959*x) is sin(2*pi*x) to the reader
# and to the recovery check (which rounds to 3 digits, 6.28).
PI_TOLERANCE = 1e-6
_PI_MULTIPLES = sorted({s * sympy.pi * k / 4 for k in range(1, 17) for s in (1, -1)}
                       | {s * 4 / (sympy.pi * k) for k in range(1, 17) for s in (1, -1)}
                       | {s * sympy.pi**2 * k / 4 for k in range(1, 9) for s in (1, -1)},
                       key=float)
_PI_VALUES = np.array([float(v) for v in _PI_MULTIPLES])


@dataclass(frozen=True)
class Node:
    """A node of an expression tree: a canonical name and its children."""

    name: str
    children: tuple[Node, ...] = ()


def _number(value: float) -> sympy.Expr:
    """``value`` as sympy writes it: a multiple of pi (`PI_TOLERANCE`) or a Float."""
    i = int(np.argmin(np.abs(_PI_VALUES - value)))
    if abs(_PI_VALUES[i] - value) <= PI_TOLERANCE * abs(value):
        return _PI_MULTIPLES[i]
    return sympy.Float(value)


def _split_string(text: str) -> list[str]:
    """The tokens of preorder text: ChatSR tokens, or names and symbols between commas/spaces.

    Text with ChatSR tokens may open with prose ending in a colon (the reference's answer
    "…the derived formula is: <|math_add|>,…"); anything else beside them is an error, never
    dropped, so that a mix of spellings cannot read as a different formula.
    """
    matches = list(CHATSR_TOKEN.finditer(text))
    if not matches:
        return [t for t in re.split(r"[\s,]+", text.strip()) if t]
    prose = text[:matches[0].start()].strip()
    if prose and not prose.endswith(":"):
        raise ExpressionError(f"text {prose!r} before the first math token: write every token "
                              "as <|math_…|>, or none (\"add x1 x2\")")
    starts = [m.start() for m in matches[1:]] + [len(text)]
    for match, start in zip(matches, starts, strict=True):
        between = text[match.end():start]
        if between.strip(", \t\n"):
            raise ExpressionError(f"text {between.strip()!r} at position {match.end()} after a "
                                  "math token: write every token as <|math_…|>, or none "
                                  "(\"add x1 x2\")")
    return [m.group(1) for m in matches]


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
        if isinstance(tokens, str) and re.search(r"[()]", tokens):
            raise ExpressionError(f"parentheses in {tokens[:60]!r}: Expression.parse reads "
                                  "preorder tokens (\"mul C sin x1\"); read infix text with "
                                  "Expression.from_sympy")
        raw = _split_string(tokens) if isinstance(tokens, str) else list(tokens)
        return cls([canonical_name(t) for t in raw])

    @classmethod
    def from_sympy(cls, expr: sympy.Basic | str, *,
                   variable_names: Sequence[str] | None = None) -> Expression:
        """Convert a sympy expression or formula text; numbers other than the integers 1..5
        become constants. Text is read by :func:`~chatsr.symbolic.sympy_parsing.parse_formula`
        (numbers, names, ``+ - * / ** ^``, known functions), never evaluated.

        Symbols ``x1, x2, …`` (or the given ``variable_names``, in order) are variables; symbols
        ``c0, c1, …`` are constant placeholders.

        >>> Expression.from_sympy("2.5*sin(x1) - x2**2").names
        ('sub', 'mul', 'C', 'sin', 'x1', 'pow2', 'x2')
        """
        if isinstance(expr, str):  # read by our own grammar, never evaluated
            expr = parse_formula(expr, {n: sympy.Symbol(n, real=True)
                                        for n in variable_names or ()})
        names, values = sympy_to_preorder(expr, variable_names)
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
        """The expression as a tree of :class:`Node` (built without recursion, for any depth)."""
        stack: list[Node] = []
        for name in reversed(self.names):  # children are complete before their parent
            children = tuple(stack.pop() for _ in range(arity(name)))
            stack.append(Node(name, children))
        return stack[0]

    @property
    def depth(self) -> int:
        """Nesting levels of the sympy form: a chain of sums and differences (or of products
        and quotients) is one level, as sympy flattens it.

        >>> Expression.parse("add add x1 x2 sin x3").depth, Expression.parse("x1").depth
        (2, 0)
        """
        family = {"add": "add", "sub": "add", "mul": "mul", "div": "mul"}
        stack: list[tuple[int, str]] = []  # (depth, family) of finished subtrees
        for name in reversed(self.names):
            own = family.get(name, name)
            children = [stack.pop() for _ in range(arity(name))]
            depth = max((d + (f != own or own not in ("add", "mul")) for d, f in children),
                        default=0)
            stack.append((depth, own))
        return stack[0][0]

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
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"the expression nests {self.depth} levels deep; sympy "
                                  f"takes at most MAX_DEPTH = {MAX_DEPTH} (its algorithms "
                                  "recurse through each level)")
        symbols = _variable_symbols(self.variables, variable_names)
        counter = self.n_constants
        use_values = constants == "auto" and self.constants is not None
        stack: list[sympy.Expr] = []
        for name in reversed(self.names):  # operands are converted before their operator
            if name in OPERATORS:
                op = OPERATORS[name]
                stack.append(op.sympy(*(stack.pop() for _ in range(op.arity))))
            elif name == CONSTANT:
                counter -= 1  # numbered in preorder, met right to left
                stack.append(_number(self.constants[counter]) if use_values
                             else sympy.Symbol(f"c{counter}", real=True))
            elif m := INTEGER.fullmatch(name):
                stack.append(sympy.Integer(int(m.group(1))))
            else:
                stack.append(symbols[int(name[1:])])
        return stack[0]

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
        X = check_array("X", X, shape=("n_points", "n_columns"), finite=False,
                        allow_empty=True, error=ExpressionError)
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
        if self.depth > MAX_DEPTH:  # too deep for sympy's printer: the preorder instead
            return f"Expression.parse({' '.join(self.names)!r})"
        return f"Expression({self.infix()!r})"

    def __str__(self) -> str:
        return self.infix()


def _check_preorder(names: tuple[str, ...]) -> None:
    if not names:
        raise ExpressionError("empty expression: expected at least one token")
    open_slots = 1
    for pos, name in enumerate(names):
        if open_slots == 0:
            trailing = ", ".join(names[pos:pos + 10]) + (", …" if len(names) > pos + 10 else "")
            infix = arity(canonical_name(names[pos])) == 2  # "x1 + x2": an operator in between
            raise ExpressionError(f"{len(names) - pos} trailing token(s) after a complete "
                                  f"expression of {pos} token(s): {trailing}" + (
                                      "; this reads like infix, but Expression.parse takes "
                                      "preorder (\"+ x1 x2\"): read infix text with "
                                      "Expression.from_sympy" if infix else ""))
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
