"""Tidy a fitted formula on its data: the same values, written more simply.

A search with BFGS constants often lands on an exact fit written in a roundabout way:
``x1*x2*Abs(x3)`` where x3 is positive, ``0.5*x1*x2**2 + 1e-11*x1`` where the second term is
fitting noise, ``1.44*(1 + (0.696*x1 - x2)/x2)`` for ``x1/x2``. `rewrites` proposes simpler
forms that agree with the formula on the data; the caller refits their constants and keeps
one only when it is as accurate.

* ``Abs(u)`` becomes ``u`` (or ``-u``) when ``u`` keeps one sign on every data point;
* a constant whose removal changes no value by more than ``RELATIVE_CHANGE`` becomes 0;
* a number to a power, ``b**u``, becomes ``exp(u*log(b))``, which sympy folds where it can:
  ``4.477**log(a)`` is ``a**1.499``; powers of powers are flattened (``(1/a)**-1.5``);
* a constant within ``SNAP_TOLERANCE`` of a simple number (a fraction with denominator up to
  4, a multiple of π/4) becomes that number, so sympy can fold it: ``x2**1.0000000003`` is
  ``x2``, ``cos(x3 - 1.5707963268)`` is ``sin(x3)``;
* a phase of ``sin`` or ``cos`` is taken modulo 2π, into [-π, π]: ``cos(u - 20.42035)`` is
  ``cos(u + π/2)``, which snapping then makes ``-sin(u)``;
* then sympy's ``expand`` and ``cancel`` collect what is left.

`linearizations` replaces a function whose argument stays tiny on the data by its Taylor
polynomial (``tanh(u)`` → ``u``, ``cos(u)`` → ``1 - u²/2``): a search with BFGS constants
often writes ``x1**2`` as ``704*(1 - cos(0.053*x1))``, which the caller then refits as
``x1**2``.

`prunings` goes further and drops one constant at a time whatever its weight, for the caller to
judge by an information criterion: ``C*a**C - C`` fitted to noisy data keeps a small offset
that only an accuracy/size trade-off can remove.

>>> import numpy as np, sympy
>>> x1, x2 = sympy.symbols("x1 x2", real=True)
>>> X = np.random.default_rng(0).uniform(1, 2, size=(50, 2))
>>> rewrites(1.44 * sympy.Abs(1 + (0.694 * x1 - x2 - 1e-12) / x2), X)[-1]
0.99936*x1/x2
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy

from chatsr.symbolic.evaluation import evaluate
from chatsr.symbolic.operators import ExpressionError
from chatsr.symbolic.sympy_parsing import check_depth, sympy_to_preorder

__all__ = ["MAX_EXPANDED_TERMS", "MAX_PRUNED", "RELATIVE_CHANGE", "ROUNDING", "SNAP_TOLERANCE",
           "SMALL_ARGUMENT", "expanded_terms", "linearizations", "prunings", "rewrites",
           "roundings"]

RELATIVE_CHANGE = 1e-7  # a constant this negligible (RMS change / RMS value) is fitting noise
_MAX_OPS = 80  # expand/cancel on larger formulas may take long and rarely helps
# nor on a short one whose powers of sums multiply out to more terms than this (seconds of sympy)
MAX_EXPANDED_TERMS = 300
SNAP_TOLERANCE = 1e-6  # relative: a fitted constant this close to a simple number is that number
ROUNDING = 0.05  # relative: a simple number this close is worth a refit to see if the data agree
# simple numbers: p/q for q <= 4 and |p/q| <= 10, and k*pi/4 for 0 < |k| <= 8
_SIMPLE = sorted({sympy.Rational(p, q) for q in (1, 2, 3, 4) for p in range(-10 * q, 10 * q + 1)}
                 | {k * sympy.pi / 4 for k in range(-8, 9) if k}, key=float)
_SIMPLE_VALUES = np.array([float(v) for v in _SIMPLE])
SMALL_ARGUMENT = 0.1  # a function whose argument stays below this is nearly its Taylor polynomial
_u = sympy.Dummy("u")
_TAYLOR = {f: sympy.series(f(_u), _u, 0, 3).removeO()
           for f in (sympy.sin, sympy.tan, sympy.tanh, sympy.sinh, sympy.atan, sympy.asin,
                     sympy.asinh, sympy.cos, sympy.cosh)}
MAX_PRUNED = 8  # formulas with more constants are not pruned (each try costs a refit)


def _undefined(expr: sympy.Expr) -> bool:
    """Whether sympy folded part of ``expr`` into a non-number (1/0 is ``zoo``, sin(oo) an
    ``AccumBounds``), which no longer evaluates."""
    return expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan) or bool(
        expr.atoms(sympy.AccumBounds))


def _values(expr: sympy.Expr, X: np.ndarray) -> np.ndarray:
    """``expr`` on the rows of ``X`` by the package's evaluator, so that a rewrite is judged by
    the values it has as an expression; NaN where it is not one (1/0 is ``zoo`` in sympy, a
    constant part may overflow float64, a symbol may be an unfitted constant)."""
    undefined = np.full(len(X), np.nan)
    if _undefined(expr):
        return undefined
    try:
        names, constants = sympy_to_preorder(expr)
    except ExpressionError:
        return undefined
    if None in constants:
        return undefined
    with np.errstate(all="ignore"):
        return evaluate(names, X, constants)


def _without_abs(expr: sympy.Expr, X: np.ndarray) -> sympy.Expr:
    replace = {}
    for node in expr.atoms(sympy.Abs):
        inner = _values(node.args[0], X)
        if not np.all(np.isfinite(inner)):
            continue
        if np.all(inner > 0):
            replace[node] = node.args[0]
        elif np.all(inner < 0):
            replace[node] = -node.args[0]
    return expr.xreplace(replace)


def _agrees(candidate: sympy.Expr, reference: np.ndarray, X: np.ndarray) -> bool:
    """Whether ``candidate``'s values on ``X`` are ``reference``'s (`_values` of the formula it
    replaces) to ``RELATIVE_CHANGE``."""
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, which never agrees
        change = np.sqrt(np.mean(np.abs(_values(candidate, X) - reference) ** 2))
    return bool(change <= RELATIVE_CHANGE * np.sqrt(np.mean(np.abs(reference) ** 2)))


def _without_negligible(expr: sympy.Expr, X: np.ndarray, deadline: float = np.inf
                        ) -> sympy.Expr:
    reference = _values(expr, X)
    # the smallest first; each removal is judged against the original values
    for constant in sorted(expr.atoms(sympy.Float), key=abs):
        if time.perf_counter() > deadline:
            break
        candidate = expr.xreplace({constant: sympy.Integer(0)})
        if _agrees(candidate, reference, X):
            expr = candidate
    return expr


def _phases(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with the constant term of each ``sin`` or ``cos`` argument taken modulo 2π,
    into [-π, π] (the same values)."""
    def reduced(f: sympy.Function) -> sympy.Expr:
        phase = next((a for a in f.args[0].args if a.is_Float), None) if f.args[0].is_Add else None
        if phase is None or abs(float(phase)) <= math.pi:
            return f
        return f.func(f.args[0] - phase + sympy.Float(math.remainder(float(phase), 2 * math.pi)))
    return expr.replace(lambda e: isinstance(e, (sympy.sin, sympy.cos)), reduced)


def _exponentials(expr: sympy.Expr) -> sympy.Expr:
    return expr.replace(lambda e: e.is_Pow and e.base.is_Number and e.base > 0
                        and not e.exp.is_Number,
                        lambda e: sympy.exp(e.exp * sympy.log(e.base)))


def _nearest_simple(value: float) -> tuple[sympy.Expr, float]:
    """The simple number nearest ``value``, and how far it is."""
    i = int(np.argmin(np.abs(_SIMPLE_VALUES - value)))
    return _SIMPLE[i], abs(_SIMPLE_VALUES[i] - value)


def _snapped(expr: sympy.Expr) -> sympy.Expr:
    replace = {}
    for constant in expr.atoms(sympy.Float):
        simple, distance = _nearest_simple(float(constant))
        if distance <= SNAP_TOLERANCE * max(1.0, abs(float(constant))):
            replace[constant] = simple
    return expr.xreplace(replace)


def rewrites(expr: sympy.Expr, X: np.ndarray, deadline: float = np.inf) -> list[sympy.Expr]:
    """Simpler forms of ``expr`` (in ``x1..xd``, the columns of ``X``) with its values on ``X``.

    Returns distinct candidates, the plainest last; none when nothing changes. Values agree to
    about ``RELATIVE_CHANGE`` before the caller refits their constants. Past ``deadline`` (a
    `time.perf_counter` value) constants are no longer tried one by one for removal. A
    formula nested deeper than :data:`~chatsr.symbolic.sympy_parsing.MAX_DEPTH` is an
    ``ExpressionError`` (sympy would crash), here and in `prunings` and `linearizations`.
    """
    check_depth(expr)
    def snapped(candidate: sympy.Expr) -> sympy.Expr:
        simple = _snapped(candidate)
        if simple == candidate:
            return candidate
        return simple if _agrees(simple, _values(candidate, X), X) else candidate

    tidy = snapped(_phases(_without_negligible(_without_abs(expr, X), X, deadline)))
    out = [tidy, snapped(_exponentials(tidy))]  # 0.3679**x1 -> exp(-1.0000*x1) -> exp(-x1)
    # force=True assumes positive bases ((1/a)**-1.5 is a**1.5, but sqrt(a**2) is a too): kept
    # only where the data agree
    flat = sympy.powdenest(tidy, force=True)
    if flat != tidy and _agrees(flat, _values(tidy, X), X):
        out.append(flat)
    if sympy.count_ops(tidy) <= _MAX_OPS and expanded_terms(tidy) <= MAX_EXPANDED_TERMS:
        out += [sympy.cancel(tidy), sympy.expand(tidy)]
        out.append(_without_negligible(sympy.expand(sympy.cancel(tidy)), X, deadline))
    return _distinct(out, expr)


def expanded_terms(expr: sympy.Expr) -> int:
    """How many terms ``sympy.expand(expr)`` writes at most, inside a function's argument too,
    counted without expanding: a sum of ``t`` terms to the power ``±p`` has ``C(t + p - 1, p)``.

    >>> x1, x2, x3 = sympy.symbols("x1 x2 x3", real=True)
    >>> expanded_terms((x1 + x2 + x3) ** 4 * sympy.exp((x1 + 1) * (x2 + 1)))
    15
    >>> expanded_terms((x1 + x2 + x3) ** 4 / (x1 + x2) ** 2)
    45
    """
    def terms(e: sympy.Expr) -> int:
        if e.is_Add:
            return sum(terms(a) for a in e.args)
        if e.is_Mul:
            return math.prod(terms(a) for a in e.args)
        if e.is_Pow and e.exp.is_Integer:
            return math.comb(terms(e.base) + abs(int(e.exp)) - 1, abs(int(e.exp)))
        return 1

    return max(terms(e) for e in [expr, *(a for f in expr.atoms(sympy.Function)
                                          for a in f.args)])


def _distinct(candidates: list[sympy.Expr], expr: sympy.Expr) -> list[sympy.Expr]:
    """``candidates`` in order without repeats, ``expr`` itself and those that do not
    evaluate (`_undefined`)."""
    out = []
    for candidate in candidates:
        if candidate != expr and candidate not in out and not _undefined(candidate):
            out.append(candidate)
    return out


def roundings(expr: sympy.Expr) -> list[sympy.Expr]:
    """``expr`` with each of its constants (floats) in turn replaced by the nearest simple
    number (``p/q`` for ``q <= 4``, multiples of pi/4) within ``ROUNDING`` of it, relative;
    none if it holds more than `MAX_PRUNED` constants. In noisy data a fitted 0.9944 may be
    the 1 of the law: the caller keeps a rounding only if the criterion that charges every
    fitted constant prefers it.

    >>> x1 = sympy.Symbol("x1", real=True)
    >>> roundings(0.9944 * x1**3 - 0.4987 * x1)
    [0.9944*x1**3 - x1/2, x1**3 - 0.4987*x1]
    """
    check_depth(expr)
    constants = sorted(expr.atoms(sympy.Float), key=abs)
    if len(constants) > MAX_PRUNED:
        return []
    out = []
    for constant in constants:
        simple, distance = _nearest_simple(float(constant))
        if simple != 0 and distance <= ROUNDING * abs(float(constant)):
            out.append(expr.xreplace({constant: simple}))
    return _distinct(out, expr)


def prunings(expr: sympy.Expr) -> list[sympy.Expr]:
    """``expr`` with each of its constants (floats) set to 0 in turn, and each factor also
    to 1, as sympy simplifies the result (``x*0`` goes, ``a + 0`` is ``a``, ``1*a`` is
    ``a``); none if it holds more than `MAX_PRUNED` constants.

    >>> x1 = sympy.Symbol("x1", real=True)
    >>> prunings(2.5 * x1 + 0.125)
    [2.5*x1, 0.125000000000000, x1 + 0.125]
    """
    check_depth(expr)
    constants = sorted(expr.atoms(sympy.Float), key=abs)
    if len(constants) > MAX_PRUNED:
        return []
    factors = {a for m in expr.atoms(sympy.Mul) for a in m.args if a.is_Float}
    return _distinct([expr.xreplace({constant: value}) for constant in constants
                      for value in (sympy.Integer(0), sympy.Integer(1))
                      [:2 if constant in factors else 1]], expr)


def linearizations(expr: sympy.Expr, X: np.ndarray) -> list[sympy.Expr]:
    """``expr`` with each function whose argument stays within ``SMALL_ARGUMENT`` of 0 on the
    rows of ``X`` replaced by its Taylor polynomial of degree 2 (odd functions: ``u``; cos and
    cosh: ``1 ∓ u²/2``).

    >>> x1 = sympy.Symbol("x1", real=True)
    >>> linearizations(704.5 * (1 - sympy.cos(0.0533 * x1)), np.linspace(-1, 1, 9)[:, None])
    [1.0007035025*x1**2]
    """
    check_depth(expr)
    out = []
    for node in expr.atoms(sympy.Function):
        taylor = _TAYLOR.get(type(node))
        if taylor is None:
            continue
        argument = _values(node.args[0], X)
        if np.all(np.isfinite(argument)) and np.max(np.abs(argument)) <= SMALL_ARGUMENT:
            out.append(sympy.expand(expr.xreplace({node: taylor.subs(_u, node.args[0])})))
    return _distinct(out, expr)
