"""Canonical skeleton keys: one text for every way of writing the same formula up to its numbers.

The generator uses the key to emit each skeleton at most once and to keep benchmark skeletons
out of its training data (:class:`ExclusionSet`); the search uses it to fit each skeleton once.

A skeleton is normalised to a sum of monomials; a monomial is a coefficient times a product of
atoms (variables, functions of a normalised argument, sums that do not expand) with exponents.
Numbers are exact, a fitted constant ``C`` is a coefficient or exponent standing for "any
number", and the key prints every number other than ±1 as ``C``. Two C-bearing atoms never
merge (``sin(x+C1) - sin(x+C2)`` is not zero), so cancellation is only ever exact.

>>> skeleton_key(Expression.from_sympy("2.5*(x2 + x1)")), skeleton_key(["add", "x1", "x2"])
('C*x1 + C*x2', 'x1 + x2')
>>> Expression.from_sympy("0.5*x1*x2**2") in ExclusionSet(["3*x2*x1**2"])
True
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import sympy

from chatsr.symbolic.expressions import Expression, sympify_real
from chatsr.symbolic.operators import (
    CONSTANT,
    INTEGER,
    INTEGER_CONSTANTS,
    VARIABLE,
    arity,
    canonical_name,
)

__all__ = ["VARIABLE_IN_KEY", "ExclusionSet", "skeleton_key", "written_key"]

_FREE = "C"
_CONST = ((), 0)  # the monomial of the additive constant
_EXPAND_LIMIT = 16  # expand products of sums up to this many terms, keep bigger ones as atoms
VARIABLE_IN_KEY = re.compile(r"x\d+")


def _add_numbers(a, b):
    return _FREE if isinstance(a, str) or isinstance(b, str) else a + b


def _mul_numbers(a, b):
    return _FREE if isinstance(a, str) or isinstance(b, str) else a * b


def _pow_number(c, q):
    if c == 1:
        return 1
    if isinstance(c, str) or isinstance(q, str) or q != int(q) or (c == 0 and q < 0):
        return _FREE
    return Fraction(c) ** int(q)


def _term_order(factor: tuple[str, Any]) -> tuple[str, str]:
    return factor[0], str(factor[1])


class _Normaliser:
    """The normal form of one tree; C-bearing monomials get unique ids so they never merge."""

    def __init__(self, values: Sequence[float] | None = None):
        self._uid = itertools.count(1)
        self._values = values

    def normalise(self, names: Sequence[str]) -> dict:
        values = iter(self._values or ())
        const_values = [next(values) if n == CONSTANT and self._values is not None else None
                        for n in names]
        stack: list[dict] = []
        for i in range(len(names) - 1, -1, -1):
            name = names[i]
            args = [stack.pop() for _ in range(arity(name))]
            stack.append(self._node(name, args, const_values[i]))
        return stack.pop()

    def _node(self, name: str, args: list[dict], value: float | None) -> dict:
        if not args:
            if name == CONSTANT:  # integer values (an exponent 6 written as C) stay exact
                exact = value is not None and float(value).is_integer() and abs(value) < 1e6
                return ({_CONST: int(value)} if value else {}) if exact else {_CONST: _FREE}
            if m := INTEGER.fullmatch(name):
                return {_CONST: int(m.group(1))}
            return {self._mono([(name, 1)]): 1}
        a = args[0]
        if name == "add":
            return self._add(a, args[1])
        if name == "sub":
            return self._add(a, self._scale(args[1], -1))
        if name == "mul":
            return self._mul(a, args[1])
        if name == "div":
            return self._mul(a, self._pow(args[1], -1))
        if name == "pow":
            exponent = args[1]
            if set(exponent) <= {_CONST}:
                return self._pow(a, exponent.get(_CONST, 0))
            return self._atom(f"pow({self.key(a)},{self.key(exponent)})")
        if name == "neg":
            return self._scale(a, -1)
        powers = {"inv": -1, "pow2": 2, "pow3": 3, "sqrt": Fraction(1, 2)}
        if name in powers:
            return self._pow(a, powers[name])
        if set(a) <= {_CONST}:  # a function of a constant is a constant
            return {_CONST: _FREE}
        if name == "exp":  # exp(u + c) = C * exp(u)
            rest = {m: c for m, c in a.items() if m != _CONST}
            coefficient = _FREE if _CONST in a else 1
            return {self._mono([(f"exp({self.key(rest)})", 1)]): coefficient}
        if name == "log" and len(a) == 1 and next(iter(a.values())) != 1:  # log(c u) = C + log u
            (mono, _), = a.items()
            return self._add({_CONST: _FREE}, self._atom(f"log({self.key({mono: 1})})"))
        return self._atom(f"{name}({self.key(a)})")

    def _mono(self, factors: list) -> tuple:
        factors.sort(key=_term_order)
        loose = any("C" in atom for atom, _ in factors)
        return tuple(factors), next(self._uid) if loose else 0

    def _atom(self, atom: str) -> dict:
        return {self._mono([(atom, 1)]): 1}

    def _times(self, m1: tuple, m2: tuple) -> tuple:
        merged: dict[str, Any] = {}
        loose = []
        for atom, e in m1[0] + m2[0]:
            if "C" in atom:
                loose.append((atom, e))
            else:
                self._accumulate(merged, atom, e)
        return self._mono(list(merged.items()) + loose)

    @staticmethod
    def _accumulate(out: dict, key: Any, c) -> None:
        """``out[key] += c``, dropping the key when the sum is zero."""
        if key in out:
            total = _add_numbers(out[key], c)
            if total == 0:
                del out[key]
            else:
                out[key] = total
        else:
            out[key] = c

    def _add(self, a: dict, b: dict) -> dict:
        out = dict(a)
        for mono, c in b.items():
            self._accumulate(out, mono, c)
        return out

    @staticmethod
    def _scale(a: dict, k) -> dict:
        return {mono: _mul_numbers(c, k) for mono, c in a.items()}

    def _mul(self, a: dict, b: dict) -> dict:
        if len(a) * len(b) > _EXPAND_LIMIT:
            a, b = (self._atom(f"({self.key(x)})") if len(x) > 1 else x for x in (a, b))
        out: dict = {}
        for m1, c1 in a.items():
            for m2, c2 in b.items():
                self._accumulate(out, self._times(m1, m2), _mul_numbers(c1, c2))
        return out

    def _pow(self, a: dict, q) -> dict:
        if not isinstance(q, str) and abs(q) > 64:  # keeps exact numbers small
            q = _FREE
        if q == 0:
            return {_CONST: 1}
        if not a:
            return {} if not isinstance(q, str) and q > 0 else {_CONST: _FREE}
        if len(a) == 1:
            ((factors, _), c), = a.items()
            if not factors:
                return {_CONST: _pow_number(c, q)}
            return {self._mono([(atom, _mul_numbers(e, q)) for atom, e in factors]):
                    _pow_number(c, q)}
        if q in (2, 3) and len(a) ** q <= _EXPAND_LIMIT:
            return self._mul(a, a) if q == 2 else self._mul(self._mul(a, a), a)
        return {self._mono([(f"({self.key(a)})", q)]): 1}

    @staticmethod
    def key(nf: dict) -> str:
        terms = []
        for (factors, _), c in nf.items():
            body = "*".join(atom if e == 1 else f"{atom}^{e}" for atom, e in factors)
            terms.append(("" if c == 1 else "-" if c == -1 else "C*") + body if body else "C")
        return " + ".join(sorted(terms)) or "0"


@functools.lru_cache(maxsize=1 << 16)
def written_key(names: tuple[str, ...]) -> str:
    """The canonical key of a skeleton as written: constants stay ``C`` placeholders (no
    values merged), so ``C`` in an exponent stays a ``C``."""
    normaliser = _Normaliser()
    return normaliser.key(normaliser.normalise(names))


def skeleton_key(expression: Expression | Sequence[str], constants: Sequence[float] | None = None
                 ) -> str:
    """A canonical text for a skeleton, equal for formulas that differ only in their numbers
    or in how the same algebra is written.

    Sums and products are flattened, sorted and expanded, powers merged, constant factors and
    terms absorbed, ``exp(u + C)`` read as ``C*exp(u)`` and ``log(C*u)`` as ``C + log(u)``; then
    every number other than ±1 prints as ``C``, exponents excepted. With ``constants``, the
    integer-valued ones count as those integers (``x1**6`` written ``pow(x1, C)``, C = 6).
    Powers are taken as for positive bases (``sqrt(x**2)`` keys as ``x``): for de-duplication and
    exclusion, merging a few distinct skeletons errs on the safe side.

    >>> skeleton_key(Expression.parse("mul x1 add x1 const_1"))
    'x1 + x1^2'
    >>> skeleton_key(Expression.parse("add pow2 x1 x1")) == skeleton_key(
    ...     Expression.from_sympy("x1*(x1 + 2.5)"))
    False
    >>> skeleton_key(Expression.parse("div mul C x2 mul x1 x1"))
    'C*x1^-2*x2'
    """
    names = expression.names if isinstance(expression, Expression) else tuple(
        canonical_name(n) for n in expression)
    if constants is None:
        return written_key(names)
    normaliser = _Normaliser(constants)
    return normaliser.key(normaliser.normalise(names))


def _signature(key: str) -> str:
    """Invariant under renaming variables: the key's characters, variables anonymised."""
    return "".join(sorted(VARIABLE_IN_KEY.sub("x", key)))


_LARGEST_INTEGER = max(INTEGER_CONSTANTS)  # integer exponents up to it were always exact


class ExclusionSet:
    """Skeletons the generator never emits, matched by :func:`skeleton_key` up to renaming the
    variables (a benchmark ``x1*x2**2`` also excludes ``x2*x1**2``).

    ``formulas``: sympy text in ``x1, x2, …`` or :class:`Expression` objects; numbers in them
    become ``C``. :meth:`benchmarks` holds every Nguyen and Feynman formula.

    >>> excluded = ExclusionSet(["3.1*x1*x2**2"])
    >>> [Expression.parse(t) in excluded for t in ("mul mul C x2 pow2 x1", "mul x1 pow2 x2")]
    [True, False]
    """

    _MAX_PERMUTED = 6  # beyond this many variables a signature match counts as excluded

    def __init__(self, formulas: Iterable[str | Expression] = ()):
        self._keys: set[str] = set()
        self._signatures: set[str] = set()
        for formula in formulas:
            if isinstance(formula, Expression):
                forms = [formula]
            else:  # x1**6 is exact (pow x1 add const_5 const_1) but also pow x1 C, C = 6
                exact = sympify_real(formula)
                forms = [Expression.from_sympy(f) for f in {exact, exact.replace(
                    lambda e: e.is_Pow and e.exp.is_Integer and abs(int(e.exp)) > _LARGEST_INTEGER,
                    lambda e: sympy.Pow(e.base, sympy.Float(int(e.exp)), evaluate=False))}]
            for expr in forms:
                keys = {written_key(expr.names)}  # as written: C in exponents stays C
                if expr.constants is not None:  # and with integer exponents read exactly
                    keys.add(skeleton_key(expr, expr.constants))
                self._keys |= keys
                self._signatures |= {_signature(k) for k in keys}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, expression: Expression | Sequence[str]) -> bool:
        names = expression.names if isinstance(expression, Expression) else tuple(expression)
        key = written_key(names)
        if key in self._keys:
            return True
        if _signature(key) not in self._signatures:
            return False
        variables = sorted({n for n in names if VARIABLE.fullmatch(n)})
        if len(variables) > self._MAX_PERMUTED:
            return True
        for perm in itertools.permutations(variables):
            rename = dict(zip(variables, perm, strict=True))
            if written_key(tuple(rename.get(n, n) for n in names)) in self._keys:
                return True
        return False
