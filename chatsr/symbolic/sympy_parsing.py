"""Formula text to sympy, by a parser of its own small grammar, and sympy to preorder token
names, for `Expression.from_sympy`.

Text is never given to ``sympy.sympify`` (which is ``eval``): :func:`parse_formula` reads numbers,
names, ``+ - * / ** ^``, parentheses and calls of known functions, and builds the sympy
expression with sympy's constructors. Anything else (attribute access, ``__dunder__`` names,
keywords such as ``lambda``, unknown functions, stray characters) is an :class:`ExpressionError`
naming the text and its position. Parsing is iterative (shunting-yard) and refuses formulas
longer than `MAX_FORMULA_LENGTH` characters or nested deeper than `MAX_DEPTH`, past which sympy's
own recursive algorithms would crash.

Numbers other than the integers 1..5 become constant placeholders ``C`` with their values;
symbols ``c0, c1, …`` are placeholders without one.

>>> sympy_to_preorder(sympify_real("2.5*sin(x1) - x2**2"))
(['sub', 'mul', 'C', 'sin', 'x1', 'pow2', 'x2'], [2.5])
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import sympy

from chatsr.symbolic.operators import (
    CONSTANT,
    INTEGER_CONSTANTS,
    OPERATORS,
    VARIABLE,
    ExpressionError,
)

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_FORMULA_LENGTH", "check_depth", "parse_formula",
           "sympify_real", "sympy_to_preorder"]

MAX_FORMULA_LENGTH = 1_000_000  # characters of formula text
# Nesting levels of a sympy expression (a flat sum or product is one level): sympy's printers,
# assumptions and lambdify recurse a few frames per level and crash near 200.
MAX_DEPTH = 100
_MAX_EXACT_BITS = 10_000  # 5**5**5**5 would be computed exactly, forever: bigger stays a power

_SYMPY_FUNCTIONS = {sympy.sin: "sin", sympy.cos: "cos", sympy.tan: "tan", sympy.log: "log",
                    sympy.exp: "exp", sympy.Abs: "abs", sympy.asin: "asin", sympy.acos: "acos",
                    sympy.atan: "atan", sympy.sinh: "sinh", sympy.cosh: "cosh",
                    sympy.tanh: "tanh"}
_POWERS = {sympy.Integer(2): ["pow2"], sympy.Integer(3): ["pow3"], sympy.Rational(1, 2): ["sqrt"],
           sympy.Integer(-1): ["inv"], sympy.Integer(-2): ["inv", "pow2"],
           sympy.Integer(-3): ["inv", "pow3"], sympy.Rational(-1, 2): ["inv", "sqrt"]}


def _power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base**exponent``, left unevaluated when an exact number would be too big to compute."""
    if base.is_number and exponent.is_Rational:
        if base.is_Rational:
            bits = max(base.p.bit_length(), base.q.bit_length()) * abs(exponent)
        else:
            bits = 0 if base.is_Float else 64 * abs(exponent)
        if bits > _MAX_EXACT_BITS:
            return sympy.Pow(base, exponent, evaluate=False)
    return base**exponent


# name -> (sympy function, accepted numbers of arguments)
FUNCTIONS: dict[str, tuple[Callable[..., sympy.Expr], tuple[int, ...]]] = {
    **{name: (_power if name == "pow" else op.sympy, (op.arity,))
       for name, op in OPERATORS.items()},
    "log": (sympy.log, (1, 2)), "ln": (sympy.log, (1,)), "Abs": (sympy.Abs, (1,)),
    "arcsin": (sympy.asin, (1,)), "arccos": (sympy.acos, (1,)), "arctan": (sympy.atan, (1,)),
    "asinh": (sympy.asinh, (1,)), "acosh": (sympy.acosh, (1,)), "atanh": (sympy.atanh, (1,)),
    "arcsinh": (sympy.asinh, (1,)), "arccosh": (sympy.acosh, (1,)),
    "arctanh": (sympy.atanh, (1,)), "sign": (sympy.sign, (1,)), "re": (sympy.re, (1,)),
}
"""The functions formula text may call, by name: the operators and the usual aliases."""
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|[-+*/^(),]))")
_CALL = re.compile(r"\s*\(")  # a name followed by this is called
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "u": 3, "**": 4, "^": 4}  # "u": unary sign


@dataclass
class _Operand:
    """A parsed operand; a sum or product stays a list of terms until something else uses it,
    so that a chain of n terms costs O(n), not O(n²)."""

    expr: sympy.Expr | None
    depth: int
    chain: str = ""  # "+" or "*" while ``terms`` are still collected
    terms: list[sympy.Expr] = field(default_factory=list)

    def value(self) -> sympy.Expr:
        if self.chain:
            self.expr = (sympy.Add if self.chain == "+" else sympy.Mul)(*self.terms)
            self.chain, self.terms = "", []
        return self.expr


@dataclass
class _Marker:
    """An open parenthesis on the operator stack; ``function`` is set for a call."""

    position: int
    function: str = ""
    n_args: int = 0


class _Parser:
    """Shunting-yard over the tokens of one formula: an explicit stack, never recursion."""

    def __init__(self, text: str, symbols: Mapping[str, sympy.Expr], free_symbols: bool):
        self.text, self.symbols, self.free_symbols = text, symbols, free_symbols
        self.operands: list[_Operand] = []
        self.operators: list[tuple[str, int] | _Marker] = []  # (operator, position) or marker

    def error(self, message: str, position: int, hint: str = "") -> ExpressionError:
        snippet = self.text[max(0, position - 20):position + 20]
        return ExpressionError(f"cannot read formula: {message} at position {position} "
                               f"(in {snippet!r})" + (f"; {hint}" if hint else ""))

    def tokens(self):
        position, text = 0, self.text
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                stray = text[position:].lstrip()
                if not stray:
                    return
                at = len(text) - len(stray)
                raise self.error(f"unexpected character {stray[0]!r}", at,
                                 "formulas hold numbers, names, + - * / ** ^, parentheses and "
                                 "commas between the arguments of a function")
            kind = match.lastgroup
            position = match.end()
            yield kind, match.group(kind), match.start(kind), position

    def parse(self) -> sympy.Expr:
        expect_operand, call = True, False
        for kind, token, position, end in self.tokens():  # lazily: errors come in text order
            if call:  # the "(" of a call, whose marker is already on the stack
                call = False
            elif kind in ("num", "name") or token == "(":
                if not expect_operand:
                    raise self.error(f"expected an operator before {token!r} (write 2*x, "
                                     "not 2x or 2 x)", position)
                if token == "(":
                    self.operators.append(_Marker(position))
                elif kind == "num":
                    self.operands.append(_Operand(self.number(token, position), 0))
                    expect_operand = False
                elif "__" in token or keyword.iskeyword(token) or keyword.issoftkeyword(token):
                    raise self.error(f"{token!r} is not a variable or function name", position)
                elif _CALL.match(self.text, end):
                    self.open_call(token, position)
                    call = True
                else:
                    self.operands.append(_Operand(self.name(token, position), 0))
                    expect_operand = False
            elif token in "),":
                if expect_operand:
                    raise self.error(f"expected an operand before {token!r}", position)
                self.close(token, position)
                expect_operand = token == ","
            elif expect_operand:
                if token not in "+-":
                    raise self.error(f"expected a number, a name or '(' before {token!r}",
                                     position)
                self.operators.append(("u" + token, position))
            else:
                self.pop_while(_PRECEDENCE[token], right=token in ("**", "^"))
                self.operators.append((token, position))
                expect_operand = True
        if expect_operand:
            raise self.error("the formula is empty or ends with an operator", len(self.text))
        self.pop_while(0, right=False)
        if self.operators:
            raise self.error("unclosed '('", self.operators[-1].position)
        return self.operands[0].value()

    def number(self, token: str, position: int) -> sympy.Expr:
        try:
            return sympy.Float(token) if re.search(r"[.eE]", token) else sympy.Integer(token)
        except ValueError as exc:  # Python refuses ints of more than 4300 digits
            raise self.error(f"unreadable number {token[:20]!r}… ({exc})", position) from None

    def name(self, token: str, position: int) -> sympy.Expr:
        if token in self.symbols:
            return self.symbols[token]
        if token in _CONSTANTS:
            return _CONSTANTS[token]
        if token in FUNCTIONS:
            raise self.error(f"function {token!r} needs its argument in parentheses", position)
        if not self.free_symbols:
            raise self.error(f"unknown name {token!r}: expected one of "
                             f"{', '.join(sorted(self.symbols))} or {', '.join(_CONSTANTS)}",
                             position)
        return sympy.Symbol(token, real=True)

    def open_call(self, token: str, position: int) -> None:
        if token not in FUNCTIONS:
            what = ("is a variable, not a function (write x*(...) for a product)"
                    if token in self.symbols else "is not a known function")
            raise self.error(f"{token!r} {what}", position,
                             f"known functions: {', '.join(FUNCTIONS)}")
        self.operators.append(_Marker(position, token))

    def close(self, token: str, position: int) -> None:
        self.pop_while(0, right=False)
        if not self.operators:
            raise self.error("comma outside a function call" if token == "," else
                             "unmatched ')'", position)
        marker = self.operators[-1]
        if token == ",":
            if not marker.function:
                raise self.error("comma outside a function call", position)
            marker.n_args += 1
            return
        self.operators.pop()
        if not marker.function:  # a parenthesised group: its operand stands as it is
            return
        n_args = marker.n_args + 1
        function, arities = FUNCTIONS[marker.function]
        if n_args not in arities:
            raise self.error(f"{marker.function} takes {' or '.join(map(str, arities))} "
                             f"argument(s), got {n_args}", marker.position)
        args = self.operands[-n_args:]
        del self.operands[-n_args:]
        depth = 1 + max(a.depth for a in args)
        self.push(function(*(a.value() for a in args)), depth, marker.position)

    def pop_while(self, precedence: int, *, right: bool) -> None:
        """Apply stacked operators that bind at least as tightly (more tightly if ``right``)."""
        while self.operators and not isinstance(self.operators[-1], _Marker):
            operator, position = self.operators[-1]
            bind = _PRECEDENCE[operator[0] if operator[0] == "u" else operator]
            if bind < precedence or (right and bind == precedence):
                return
            self.operators.pop()
            self.apply(operator, position)

    def apply(self, operator: str, position: int) -> None:
        right = self.operands.pop()
        if operator[0] == "u":
            if operator == "u-":
                self.push(-right.value(), right.depth + 1, position)
            else:
                self.operands.append(right)
            return
        left = self.operands.pop()
        if operator in ("**", "^"):
            self.push(_power(left.value(), right.value()),
                      1 + max(left.depth, right.depth), position)
            return
        chain = "+" if operator in "+-" else "*"
        term = right.value()
        term = term if operator in "+*" else -term if operator == "-" else 1 / term
        if left.chain != chain:
            left = _Operand(None, left.depth + 1, chain, [left.value()])
        left.terms.append(term)
        left.depth = max(left.depth, right.depth + 1)
        self.check(left.depth, position)
        self.operands.append(left)

    def push(self, expr: sympy.Expr, depth: int, position: int) -> None:
        self.check(depth, position)
        self.operands.append(_Operand(expr, depth))

    def check(self, depth: int, position: int) -> None:
        if depth > MAX_DEPTH:
            raise self.error(f"the formula nests more than MAX_DEPTH = {MAX_DEPTH} levels deep "
                             "(sympy's algorithms recurse through each level)", position)


def parse_formula(text: str, symbols: Mapping[str, sympy.Expr] | None = None, *,
                  free_symbols: bool = True) -> sympy.Expr:
    """The sympy expression of formula text, read by a restricted grammar, never evaluated.

    Names in ``symbols`` stand for their values; ``pi`` and ``E`` are the constants; other
    names are real symbols if ``free_symbols``, an error otherwise. ``^`` is ``**``; functions
    are those of :data:`FUNCTIONS`. Formulas longer than `MAX_FORMULA_LENGTH` characters or
    nested deeper than `MAX_DEPTH` are refused with an :class:`ExpressionError`, like every
    text that is not a formula.

    >>> parse_formula("2*x1^2 - sin(pi*x2)/ln(x1)")
    2*x1**2 - sin(pi*x2)/log(x1)
    >>> parse_formula("__import__('os')")
    Traceback (most recent call last):
        ...
    chatsr.symbolic.operators.ExpressionError: cannot read formula: '__import__' is not a \
variable or function name at position 0 (in "__import__('os')")
    """
    if not isinstance(text, str):
        raise ExpressionError(f"a formula must be text, got {type(text).__name__}")
    if len(text) > MAX_FORMULA_LENGTH:
        raise ExpressionError(f"the formula has {len(text)} characters; at most "
                              f"MAX_FORMULA_LENGTH = {MAX_FORMULA_LENGTH} are read")
    return _Parser(text, symbols or {}, free_symbols).parse()


def check_depth(expr: sympy.Basic) -> None:
    """Raise :class:`ExpressionError` if ``expr`` nests deeper than `MAX_DEPTH` (checked
    without recursion, before sympy's recursive algorithms see it).

    >>> check_depth(sympy.sin(sympy.Symbol("x")))
    """
    stack = [(expr, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression nests more than MAX_DEPTH = {MAX_DEPTH} "
                                  "levels deep (sympy's algorithms recurse through each level)")
        stack.extend((arg, depth + 1) for arg in node.args)


def sympify_real(text: str | sympy.Basic) -> sympy.Expr:
    """Formula text (read by :func:`parse_formula`) or a sympy object, with every symbol
    declared real, as :meth:`Expression.to_sympy` makes them, so that expressions from text
    and from trees compare and simplify alike.

    >>> sympify_real("x1 + c0").free_symbols == {sympy.Symbol("x1", real=True),
    ...                                          sympy.Symbol("c0", real=True)}
    True
    """
    if isinstance(text, str):
        return parse_formula(text)
    if not isinstance(text, sympy.Basic):
        raise ExpressionError(f"expected formula text or a sympy expression, got "
                              f"{type(text).__name__}")
    check_depth(text)
    return text.xreplace({s: sympy.Symbol(s.name, real=True) for s in text.free_symbols})


def sympy_to_preorder(expr: sympy.Basic, variable_names: Sequence[str] | None = None
                      ) -> tuple[list[str], list[float | None]]:
    """The preorder names of ``expr`` and the value of each ``C`` in order (None for a
    ``c0, c1, …`` symbol). Variables are ``x1, x2, …`` or the ``variable_names``, in order.

    >>> sympy_to_preorder(sympify_real("m*c0"), ["m"])
    (['mul', 'C', 'x1'], [None])
    """
    if not isinstance(expr, sympy.Basic):
        raise ExpressionError(f"expected a sympy expression, got {type(expr).__name__}")
    check_depth(expr)
    preorder = _Preorder({n: i for i, n in enumerate(variable_names or [], 1)})
    preorder.emit(expr)
    return preorder.names, preorder.values


MAX_INTEGER_EXPONENT = 25  # larger integer exponents are written as a constant to fit


def _integer_names(k: int) -> list[str]:
    """Preorder names of the integer ``k`` (``|k| <= MAX_INTEGER_EXPONENT``) from the integer
    constants: ``const_k``, or ``5 * q + r`` as ``add mul const_5 const_q const_r``.

    >>> _integer_names(6), _integer_names(-10)
    (['add', 'const_5', 'const_1'], ['neg', 'mul', 'const_5', 'const_2'])
    """
    if k < 0:
        return ["neg", *_integer_names(-k)]
    if k in INTEGER_CONSTANTS:
        return [f"const_{k}"]
    fives, rest = divmod(k, 5)
    names = ["const_5"] if fives == 1 else ["mul", "const_5", f"const_{fives}"]
    return ["add", *names, f"const_{rest}"] if rest else names


class _Preorder:
    """Appends the preorder of sympy subtrees to ``names`` (and constants to ``values``).

    An explicit stack of what is still to write (names, or subtrees to expand) replaces
    recursion: a leaf is written when it is expanded, after everything before it.
    """

    def __init__(self, variables: dict[str, int]):
        self.variables = variables
        self.names: list[str] = []
        self.values: list[float | None] = []

    def emit(self, root: sympy.Basic) -> None:
        # once for the whole tree: asked of every subtree, it would cost O(size x depth)
        if root.has(sympy.zoo, sympy.oo, sympy.nan) or root.atoms(sympy.AccumBounds):
            raise ExpressionError(f"cannot convert {root}: it is not finite (a division by "
                                  f"zero?)")
        stack: list[str | sympy.Basic] = [root]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                self.names.append(item)
            else:
                stack.extend(reversed(self._expand(item)))

    def _expand(self, e: sympy.Basic) -> list[str | sympy.Basic]:
        """What ``e`` writes: names and subtrees, in preorder (leaves are written at once)."""
        if e.is_Symbol:
            self._symbol(e)
        elif e.is_number:  # any numeric subtree (2, 0.5, 4*pi, sqrt(2)) is one leaf
            self._number(e)
        elif (e.is_Add or e.is_Mul) and sum(a.is_number for a in e.args) > 1:
            numeric = [a for a in e.args if a.is_number]
            rest = [a for a in e.args if not a.is_number]
            folded = e.func(*numeric)
            return [e.func(folded, *rest, evaluate=False) if rest else folded]
        elif e.is_Add:
            return self._add(e)
        elif e.is_Mul:
            return self._mul(e)
        elif e.is_Pow:
            return self._pow(*e.args)
        elif e.func is sympy.re:  # sympy's guard for complex intermediates; ours are real or NaN
            return [e.args[0]]
        elif e.func in _SYMPY_FUNCTIONS and len(e.args) == 1:
            return [_SYMPY_FUNCTIONS[e.func], e.args[0]]
        else:
            raise ExpressionError(f"cannot convert {e.func.__name__} ({e}) to an expression: "
                                  f"supported operators are {', '.join(OPERATORS)}")
        return []

    @staticmethod
    def _chain(op: str, operands: Sequence[sympy.Basic]) -> list[str | sympy.Basic]:
        """``op(op(a, b), c)…``: a left-associated chain, in preorder."""
        return [op] * (len(operands) - 1) + list(operands)

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

    def _add(self, e: sympy.Add) -> list[str | sympy.Basic]:
        pos = [a for a in e.args if not a.could_extract_minus_sign()]
        neg = [-a for a in e.args if a.could_extract_minus_sign()]
        if not pos:
            return ["neg", *self._chain("add", neg)]
        # preorder of sub(sub(P, n1), n2) is: sub sub P n1 n2
        return ["sub"] * len(neg) + self._chain("add", pos) + neg

    def _mul(self, e: sympy.Mul) -> list[str | sympy.Basic]:
        if e.could_extract_minus_sign():
            return ["neg", -e]
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
            return ["div", *self._chain("mul", num or [sympy.Integer(1)]),
                    *self._chain("mul", den)]
        return self._chain("mul", e.args)

    @staticmethod
    def _pow(base: sympy.Expr, exp: sympy.Expr) -> list[str | sympy.Basic]:
        if exp in _POWERS:
            return [*_POWERS[exp], base]
        if base == sympy.E:
            return ["exp", exp]
        if exp.is_Integer and abs(int(exp)) <= MAX_INTEGER_EXPONENT:  # stays exact, not a C
            return ["pow", base, *_integer_names(int(exp))]
        return ["pow", base, exp]
