"""One preorder spelling per formula, so that a model trained on these targets spends no loss
on the many ways of writing the same function.

:func:`canonical` reads a preorder skeleton (with or without the values of its ``C``
placeholders) bottom-up into sums of monomials, a monomial being a coefficient times atoms
(variables, functions of a canonical argument, sums inside a product) raised to exponents, and
writes it back one way:

- sums: the constant first, then the terms in a fixed order (shorter first, then by their
  tokens), right-nested ``add``; the negative terms are collected after one ``sub``, or under one
  ``neg`` when no term is positive;
- products: the coefficient first, then the factors in the same fixed order, right-nested
  ``mul``; factors with a negative exponent go under one ``div`` (``inv`` when nothing is
  above the line);
- powers: ``pow2``, ``pow3``, ``sqrt``, ``pow3(sqrt(·))`` for 3/2, ``pow(·, const_4)`` and
  ``pow(·, const_5)``; any other exponent is ``pow(·, C)`` with its value;
- constants: numbers merge (``C*C*x`` is ``C*x``, ``x*2/4`` is ``x/2``, ``C + 3 + C`` is one
  ``C``); exact rationals with numerator and denominator up to 5 stay ``const_k`` tokens, a
  ``C`` absorbs a sign, a function of constants is a ``C``.

Rewrites hold wherever the input is defined: ``(x**2)**(1/2)`` is ``|x|`` and stays a
``sqrt(pow2(x))``, a non-integer power of a product is not split, and sums are never expanded
(only negation distributes over them). The result may be defined where the input is not
(``x/x`` is ``1``). Without values, two atoms holding ``C`` never merge (``sin(C*x)`` twice is
two different functions).

>>> canonical(["add", "x2", "mul", "x1", "const_2"])
(('add', 'mul', 'const_2', 'x1', 'x2'), None)
>>> canonical(["sub", "neg", "x1", "x2"])
(('neg', 'add', 'x1', 'x2'), None)
>>> canonical(["mul", "C", "mul", "x1", "C"], [2.0, 3.0])
(('mul', 'C', 'x1'), (6.0,))
>>> canonical(["div", "x1", "pow2", "inv", "x2"])
(('mul', 'x1', 'pow2', 'x2'), None)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from chatsr.symbolic.evaluation import evaluate
from chatsr.symbolic.operators import CONSTANT, INTEGER, OPERATORS, arity

__all__ = ["canonical", "reduce_preorder"]

_POWERS = {"inv": Fraction(-1), "pow2": Fraction(2), "pow3": Fraction(3),
           "sqrt": Fraction(1, 2)}
_LARGEST = 10**6  # exact rationals beyond this become a C (their value is kept)
_HALF, _ONE = Fraction(1, 2), Fraction(1)


class _Free(NamedTuple):
    """A constant written as ``C``: its value, or None when unknown."""

    value: float | None


Number = Fraction | _Free


class _Atom(NamedTuple):
    names: tuple[str, ...]
    consts: tuple[float | None, ...]
    ident: str  # equal idents merge; an atom with unknown constants gets a unique one
    order: tuple  # the fixed order of factors and terms
    inner: dict | None = None  # the form of a sum, which a power 1 turns back into


class _Piece(NamedTuple):
    names: tuple[str, ...]
    consts: tuple[float | None, ...]


def _value(x: Number) -> float | None:
    return float(x) if isinstance(x, Fraction) else x.value


def _exact(x: Fraction) -> Number:
    if abs(x.numerator) > _LARGEST or x.denominator > _LARGEST:
        return _Free(float(x))
    return x


def _free(a: Number, b: Number, op) -> _Free:
    va, vb = _value(a), _value(b)
    return _Free(None if va is None or vb is None else float(op(va, vb)))


def _add(a: Number, b: Number) -> Number:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _exact(a + b)
    return _free(a, b, lambda u, v: u + v)


def _mul(a: Number, b: Number) -> Number:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _exact(a * b)
    if a == 0 or b == 0:  # exactly zero (a Fraction): 0 * C is 0
        return Fraction(0)
    return _free(a, b, lambda u, v: u * v)


def _power(a: Number, q: Number) -> Number:
    if a == 1 or q == 0:
        return Fraction(1)
    if isinstance(a, Fraction) and isinstance(q, Fraction) and q.denominator == 1:
        if a == 0 and q < 0:
            return _Free(math.inf)
        return _exact(a ** int(q))
    with np.errstate(all="ignore"):
        return _free(a, q, lambda u, v: np.power(u, v))


def _is_integer(q: Number) -> bool:
    return isinstance(q, Fraction) and q.denominator == 1


def _key(x: Number, where: int) -> str:
    if isinstance(x, Fraction):
        return str(x)
    return f"C{x.value!r}" if x.value is not None else f"C#{where}"


def _merge(a: dict, b: dict, slot: int) -> dict:
    """``a`` and ``b`` merged; of pairs under one key, the numbers at ``slot`` add (terms'
    coefficients, factors' exponents) and a zero sum drops the key."""
    out = dict(a)
    for key, pair in b.items():
        if key not in out:
            out[key] = pair
            continue
        total = _add(out[key][slot], pair[slot])
        if total == 0:
            del out[key]
        else:
            out[key] = (total, pair[1]) if slot == 0 else (pair[0], total)
    return out


def reduce_preorder(names: Sequence[str], visit: Callable[[int, str, list], Any]) -> Any:
    """One pass over a preorder formula, right to left, without recursion: ``visit(i, name,
    operands)`` gets the values it returned for the operands of token ``i`` (none for a leaf)
    and returns the value of the subtree at ``i``; the root's value is returned.

    >>> reduce_preorder(["add", "x1", "mul", "x2", "x3"], lambda i, name, args:
    ...                 name if not args else f"({' '.join(args)} {name})")
    '(x1 (x2 x3 mul) add)'
    """
    stack: list = []
    for i in range(len(names) - 1, -1, -1):
        name = names[i]
        n = arity(name)
        if len(stack) < n:
            raise ValueError(f"names: {' '.join(names)!r} is not a preorder formula")
        stack.append(visit(i, name, [stack.pop() for _ in range(n)]))
    if len(stack) != 1:
        raise ValueError(f"names: {' '.join(names)!r} is not one preorder formula")
    return stack[0]


# A polynomial-like form: {monomial key: (coefficient, {atom ident: (atom, exponent)})}
Factors = dict[str, tuple[_Atom, Number]]
Form = dict[tuple, tuple[Number, Factors]]


class _Reader:
    """Builds forms bottom-up; ``where`` numbers unknown constants so they never merge."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    def leaf(self, name: str, value: float | None, known: bool) -> Form:
        if name == CONSTANT:
            return self.constant(_Free(value if known else None))
        if m := INTEGER.fullmatch(name):
            return self.constant(Fraction(int(m.group(1))))
        return self.single(_ONE, {name: (_Atom((name,), (), name, (1, (name,), (), 0)), _ONE)})

    def constant(self, c: Number) -> Form:
        return {} if c == 0 else {(): (c, {})}

    def single(self, coefficient: Number, factors: Factors) -> Form:
        if coefficient == 0:
            return {}
        if len(factors) == 1 and coefficient in (1, -1):  # (x + y)**(1/2)**2 is a sum again
            (atom, e), = factors.values()
            if atom.inner is not None and e == 1:
                return self.scale(atom.inner, coefficient)
        key = tuple(sorted((ident, _key(e, next(self._ids)))
                           for ident, (_, e) in factors.items()))
        return {key: (coefficient, factors)}

    def add(self, a: Form, b: Form) -> Form:
        return _merge(a, b, 0)

    def scale(self, a: Form, c: Number) -> Form:
        return {key: (_mul(k, c), f) for key, (k, f) in a.items()} if c != 0 else {}

    def as_single(self, a: Form) -> tuple[Number, Factors]:
        """The form as one monomial; a sum of several becomes an atom."""
        if not a:
            return Fraction(0), {}
        if len(a) == 1:
            return next(iter(a.values()))
        atom = self.atom(_write(a), a)
        return _ONE, {atom.ident: (atom, _ONE)}

    def atom(self, piece: _Piece, inner: Form | None = None) -> _Atom:
        where = next(self._ids)
        known = None not in piece.consts
        ident = " ".join(piece.names) + ("|" + ",".join(map(repr, piece.consts)) if known
                                         else f"|#{where}")
        # ties between atoms with unknown constants keep their left-to-right order (the
        # tokens are read right to left, so the later atom is the one on the left)
        order = (len(piece.names), piece.names, piece.consts if known else (),
                 0 if known else -where)
        return _Atom(piece.names, piece.consts, ident, order, inner)

    def mul(self, a: Form, b: Form) -> Form:
        (ca, fa), (cb, fb) = self.as_single(a), self.as_single(b)
        return self.single(_mul(ca, cb), _merge(fa, fb, 1))

    def power(self, a: Form, q: Number) -> Form:
        if q == 0:
            return self.constant(_ONE)
        if len(a) > 1:  # a sum: one atom with the exponent
            return self._raise(a, q)
        c, factors = self.as_single(a)
        if not factors:
            return self.constant(_power(c, q))
        if _is_integer(q):
            return self.single(_power(c, q), {i: (atom, _mul(e, q))
                                              for i, (atom, e) in factors.items()})
        if c == 1 and len(factors) == 1:
            (ident, (atom, e)), = factors.items()
            # (x**2)**(1/2) is |x|: only odd or non-integer exponents multiply
            if isinstance(e, Fraction) and not (e.denominator == 1 and e.numerator % 2 == 0):
                return self.single(_ONE, {ident: (atom, _mul(e, q))})
        return self._raise(a, q)

    def _raise(self, a: Form, q: Number) -> Form:
        """``a ** q`` kept whole: a sum is an atom with exponent ``q``; a monomial's power is
        an atom itself, so that later integer powers never reach inside it."""
        atom = self.atom(_write(a), a if len(a) > 1 else None)
        if len(a) > 1:
            return self.single(_ONE, {atom.ident: (atom, q)})
        atom = self.atom(_factor(atom, q))
        return self.single(_ONE, {atom.ident: (atom, _ONE)})

    def function(self, name: str, a: Form) -> Form:
        if len(a) <= 1 and not self.as_single(a)[1]:  # a function of a constant is a constant
            value = _value(self.as_single(a)[0])
            if value is None:
                return self.constant(_Free(None))
            with np.errstate(all="ignore"):
                result = float(evaluate([name, CONSTANT], np.zeros((1, 1)), [value])[0])
            return self.constant(_Free(result))
        piece = _write(a)
        atom = self.atom(_Piece((name, *piece.names), piece.consts))
        return self.single(_ONE, {atom.ident: (atom, _ONE)})


def _join(op: str, pieces: Sequence[_Piece]) -> _Piece:
    """Right-nested ``op`` over the pieces: ``a op (b op c)``."""
    names, consts = [], []
    for i, p in enumerate(pieces):
        if i < len(pieces) - 1:
            names.append(op)
        names.extend(p.names)
        consts.extend(p.consts)
    return _Piece(tuple(names), tuple(consts))


def _wrap(op: str, piece: _Piece) -> _Piece:
    return _Piece((op, *piece.names), piece.consts)


def _c(value: float | None) -> _Piece:
    return _Piece((CONSTANT,), (value,))


_EXPONENTS = {_ONE: (), Fraction(2): ("pow2",), Fraction(3): ("pow3",), _HALF: ("sqrt",),
              Fraction(3, 2): ("pow3", "sqrt")}
_INTEGER_EXPONENTS = {Fraction(4): "const_4", Fraction(5): "const_5"}


def _written(e: Number) -> bool:
    """Whether exponent magnitude ``e`` has its own spelling (else ``pow(·, C)``)."""
    return isinstance(e, Fraction) and (abs(e) in _EXPONENTS or abs(e) in _INTEGER_EXPONENTS)


def _exponent_order(e: Number) -> tuple[int, float]:
    """Exponents spelled ``pow(·, C)`` sort by value whether they are exact or not, so that
    the order survives a second pass (which reads them back as a ``C``)."""
    if _written(e):
        return 0, float(e)
    value = _value(e)
    return 1, 0.0 if value is None else value


def _factor(atom: _Atom, e: Number) -> _Piece:
    base = _Piece(atom.names, atom.consts)
    if isinstance(e, Fraction) and e in _EXPONENTS:
        ops = _EXPONENTS[e]
        return _Piece((*ops, *base.names), base.consts)
    if isinstance(e, Fraction) and e in _INTEGER_EXPONENTS:
        return _Piece(("pow", *base.names, _INTEGER_EXPONENTS[e]), base.consts)
    return _Piece(("pow", *base.names, CONSTANT), (*base.consts, _value(e)))


def _monomial(c: Number, factors: Factors) -> tuple[_Piece, bool]:
    """A monomial's spelling without its sign, and whether it is negative."""
    top: list[_Piece] = []
    bottom: list[_Piece] = []
    negative = False
    if isinstance(c, Fraction):
        negative, m = c < 0, abs(c)
        if m.numerator <= 5 and m.denominator <= 5:
            if m.numerator > 1:
                top.append(_Piece((f"const_{m.numerator}",), ()))
            if m.denominator > 1:
                bottom.append(_Piece((f"const_{m.denominator}",), ()))
        else:
            negative = False
            top.append(_c(float(c)))
    else:
        top.append(_c(c.value))
    for atom, e in sorted(factors.values(), key=lambda f: f[0].order):
        if isinstance(e, Fraction) and e < 0 and _written(e):
            bottom.append(_factor(atom, -e))
        else:
            top.append(_factor(atom, e))
    if not top:
        return (_wrap("inv", _join("mul", bottom)) if bottom
                else _Piece(("const_1",), ())), negative
    numerator = _join("mul", top)
    if not bottom:
        return numerator, negative
    denominator = _join("mul", bottom)
    return _Piece(("div", *numerator.names, *denominator.names),
                  numerator.consts + denominator.consts), negative


def _write(form: Form) -> _Piece:
    """The one spelling of a form."""
    if not form:
        return _c(0.0)
    terms = []
    for c, factors in form.values():
        piece, negative = _monomial(c, factors)
        order = tuple(atom.order + _exponent_order(e) for atom, e in
                      sorted(factors.values(), key=lambda f: f[0].order))
        terms.append((negative, (sum(len(a.names) for a, _ in factors.values()), order), piece))
    terms.sort(key=lambda t: t[:2])
    positive = [p for negative, _, p in terms if not negative]
    negative = [p for is_negative, _, p in terms if is_negative]
    if not negative:
        return _join("add", positive)
    below = _join("add", negative)
    if not positive:
        return _wrap("neg", below)
    above = _join("add", positive)
    return _Piece(("sub", *above.names, *below.names), above.consts + below.consts)


def canonical(names: Sequence[str], constants: Sequence[float] | None = None
              ) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """The canonical preorder of a skeleton, and the values of its ``C`` placeholders.

    ``names`` are canonical token names in preorder (as in
    :attr:`chatsr.symbolic.expressions.Expression.names`); ``constants`` the values of its
    ``C`` placeholders in preorder, or None for a bare skeleton (merged constants then have no
    value, and ``None`` is returned for them). One pass over the tokens, no recursion, so the
    depth of a formula is not bounded by Python's stack. Idempotent: the canonical form of a
    canonical form is itself.

    >>> canonical(["mul", "sqrt", "x1", "sqrt", "pow3", "x1"])
    (('pow2', 'x1'), None)
    >>> canonical(["sqrt", "pow2", "x1"])
    (('sqrt', 'pow2', 'x1'), None)
    >>> canonical(["add", "C", "add", "x1", "C"], [1.5, 2.0])
    (('add', 'C', 'x1'), (3.5,))
    >>> canonical(["div", "x1", "mul", "const_2", "x2"])
    (('div', 'x1', 'mul', 'const_2', 'x2'), None)
    """
    names = tuple(names)
    known = constants is not None
    values = list(constants) if known else []
    if known and len(values) != names.count(CONSTANT):
        raise ValueError(f"constants: the skeleton has {names.count(CONSTANT)} C placeholder(s) "
                         f"but {len(values)} value(s) were given")
    reader = _Reader()
    remaining = [len(values)]  # C values are met right to left

    def visit(i: int, name: str, args: list[Form]) -> Form:
        if not args:
            value = None
            if name == CONSTANT and known:
                remaining[0] -= 1
                value = float(values[remaining[0]])
            return reader.leaf(name, value, known)
        if name == "add":
            return reader.add(args[0], args[1])
        if name == "sub":
            return reader.add(args[0], reader.scale(args[1], Fraction(-1)))
        if name == "neg":
            return reader.scale(args[0], Fraction(-1))
        if name == "mul":
            return reader.mul(args[0], args[1])
        if name == "div":
            return reader.mul(args[0], reader.power(args[1], Fraction(-1)))
        if name in _POWERS:
            return reader.power(args[0], _POWERS[name])
        if name == "pow":
            coefficient, factors = reader.as_single(args[1])
            if not factors:
                return reader.power(args[0], coefficient)
            base, power = _write(args[0]), _write(args[1])
            atom = reader.atom(_Piece(("pow", *base.names, *power.names),
                                      base.consts + power.consts))
            return reader.single(_ONE, {atom.ident: (atom, _ONE)})
        if name in OPERATORS:
            return reader.function(name, args[0])
        raise ValueError(f"names: unknown token {name!r}")

    piece = _write(reduce_preorder(names, visit))
    return piece.names, (tuple(piece.consts) if known else None)
