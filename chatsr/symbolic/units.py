"""Physical units: unit strings read with pint into SI dimensions, and whether a preorder
formula is dimensionally consistent with the units of its variables and its target.

The rules (numeric constants are dimensionless): ``add``/``sub`` join like quantities; ``mul``
and ``div`` add and subtract dimensions; the arguments of ``exp``, ``log``, ``sin`` and the other
functions are dimensionless, and so are their values; ``abs`` and ``neg`` keep a dimension;
``inv``, ``pow2``, ``pow3`` and ``sqrt`` scale it by -1, 2, 3 and 1/2; ``pow`` with a numeric
exponent scales it by the exponent's value (a ``C`` exponent of unknown value needs a
dimensionless base), a ``pow`` whose exponent holds a variable needs a dimensionless base and
exponent.

The rules are linear in the variables' dimensions, so :func:`linear_dimensions` states them
once, for any units: the formula's dimension as a combination of the variables' ones, and the
combinations that must vanish. :func:`dimension_of` and :func:`is_consistent` put given units
into them; a generator can solve them for units that make a formula consistent.

>>> parse_unit("J*s")
Dimension('kg*m^2/s')
>>> dims = {"x1": parse_unit("m"), "x2": parse_unit("s")}
>>> dimension_of(["div", "x1", "pow2", "x2"], dims)
Dimension('m/s^2')
>>> is_consistent(["add", "x1", "x2"], dims, parse_unit("m"))
False
>>> unit_sentence("y", "J")
'y is an energy in J.'
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from chatsr.symbolic.canonical import reduce_preorder
from chatsr.symbolic.evaluation import evaluate
from chatsr.symbolic.operators import CONSTANT, OPERATORS

__all__ = ["BASE_UNITS", "QUANTITIES", "Dimension", "dimension_of", "dimensionless_groups",
           "is_consistent", "linear_dimensions", "monomial_exponents", "parse_unit",
           "quantity_name", "unit_sentence"]

# SI base dimensions in pint's names, and the base unit each is written in
_PINT_BASES = ("[length]", "[mass]", "[time]", "[current]", "[temperature]", "[substance]",
               "[luminosity]")
BASE_UNITS = ("m", "kg", "s", "A", "K", "mol", "cd")


@dataclass(frozen=True)
class Dimension:
    """Exponents of the SI base dimensions (m, kg, s, A, K, mol, cd), exact fractions.

    >>> Dimension.of("m") / Dimension.of("s") ** 2
    Dimension('m/s^2')
    >>> str(Dimension.of("1")), Dimension.of("1").dimensionless
    ('1', True)
    """

    exponents: tuple[Fraction, ...] = (Fraction(0),) * 7

    @classmethod
    def of(cls, text: str) -> Dimension:
        """The dimension of a unit string (same as :func:`parse_unit`)."""
        return parse_unit(text)

    @property
    def dimensionless(self) -> bool:
        return not any(self.exponents)

    def __mul__(self, other: Dimension) -> Dimension:
        return Dimension(tuple(a + b for a, b in zip(self.exponents, other.exponents,
                                                     strict=True)))

    def __truediv__(self, other: Dimension) -> Dimension:
        return self * other ** -1

    def __pow__(self, power: int | Fraction) -> Dimension:
        return Dimension(tuple(a * Fraction(power) for a in self.exponents))

    def __str__(self) -> str:
        """SI base units, numerator first: ``kg*m^2/s^2``; ``1`` when dimensionless."""
        def part(unit: str, e: Fraction) -> str:
            e = abs(e)
            return unit if e == 1 else f"{unit}^{e}" if e.denominator == 1 else f"{unit}^({e})"

        top = [part(u, e) for u, e in zip(BASE_UNITS, self.exponents, strict=True) if e > 0]
        bottom = [part(u, e) for u, e in zip(BASE_UNITS, self.exponents, strict=True) if e < 0]
        # mass first reads like physics (kg*m^2/s), the base order otherwise
        top.sort(key=lambda p: not p.startswith("kg"))
        text = "*".join(top) or "1"
        if bottom:
            text += "/" + (bottom[0] if len(bottom) == 1 else "(" + "*".join(bottom) + ")")
        return text

    def __repr__(self) -> str:
        return f"Dimension({str(self)!r})"


@functools.lru_cache(maxsize=1)
def _registry():
    import pint  # 0.3 s to build the registry: only when units are used

    return pint.UnitRegistry()


@functools.lru_cache(maxsize=1024)
def parse_unit(text: str) -> Dimension:
    """The SI dimension of a unit string: ``"kg"``, ``"m/s^2"``, ``"J*s"``, ``"F/m"``, ``"1"``
    (dimensionless). Any unit pint knows is accepted; only its dimension is kept (``km`` is a
    length).

    >>> parse_unit("F/m")
    Dimension('s^4*A^2/(m^3*kg)')
    >>> parse_unit("parsec")
    Dimension('m')
    >>> parse_unit("kgg")
    Traceback (most recent call last):
    ...
    ValueError: unit 'kgg' is not a unit pint can read ('kgg' is not defined in the unit \
registry); write units such as 'kg', 'm/s^2', 'J*s', 'F/m' or '1' for dimensionless
    """
    if not isinstance(text, str):
        raise ValueError(f"a unit must be a string such as 'kg' or 'm/s^2', got {text!r}")
    if text.strip() in ("", "1"):
        return Dimension()
    registry = _registry()
    try:
        dimensionality = registry.parse_units(text).dimensionality
    except Exception as error:  # pint raises several types (undefined, syntax, tokenizer)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "bad syntax"
        raise ValueError(f"unit {text!r} is not a unit pint can read ({reason}); write units "
                         f"such as 'kg', 'm/s^2', 'J*s', 'F/m' or '1' for dimensionless"
                         ) from None
    unknown = set(dimensionality) - set(_PINT_BASES)
    if unknown:
        raise ValueError(f"unit {text!r} has a dimension outside SI ({', '.join(unknown)})")
    return Dimension(tuple(Fraction(dimensionality.get(b, 0)).limit_denominator(1000)
                           for b in _PINT_BASES))


# Names of common quantities, for sentences: "x1 is a length in m."
QUANTITIES: dict[str, tuple[str, str]] = {  # unit -> (quantity with its article, unit)
    "m": ("a length", "m"), "kg": ("a mass", "kg"), "s": ("a time", "s"),
    "A": ("a current", "A"), "K": ("a temperature", "K"), "mol": ("an amount of substance",
                                                                   "mol"),
    "m/s": ("a velocity", "m/s"), "m/s^2": ("an acceleration", "m/s^2"),
    "N": ("a force", "N"), "J": ("an energy", "J"), "W": ("a power", "W"),
    "Pa": ("a pressure", "Pa"), "C": ("an electric charge", "C"), "V": ("a voltage", "V"),
    "Hz": ("a frequency", "Hz"), "m^2": ("an area", "m^2"), "m^3": ("a volume", "m^3"),
    "kg/m^3": ("a density", "kg/m^3"), "kg*m/s": ("a momentum", "kg*m/s"),
    "J*s": ("an action", "J*s"), "ohm": ("a resistance", "ohm"),
    "F": ("a capacitance", "F"), "T": ("a magnetic field", "T"),
    "V/m": ("an electric field", "V/m"), "F/m": ("a permittivity", "F/m"),
    "H/m": ("a permeability", "H/m"), "J/K": ("an entropy", "J/K"),
    "N/m": ("a spring constant", "N/m"), "kg*m^2": ("a moment of inertia", "kg*m^2"),
    "N*m": ("a torque", "N*m"),
}


@functools.lru_cache(maxsize=1)
def _named() -> dict[Dimension, tuple[str, str]]:
    named: dict[Dimension, tuple[str, str]] = {}
    for unit, (quantity, text) in QUANTITIES.items():
        named.setdefault(parse_unit(unit), (quantity, text))  # energy before torque
    return named


def quantity_name(dimension: Dimension) -> tuple[str, str] | None:
    """The quantity a dimension is (with its article) and its usual unit, if it has a name.

    >>> quantity_name(parse_unit("kg*m^2/s^2"))
    ('an energy', 'J')
    >>> quantity_name(parse_unit("kg*m^5")) is None
    True
    """
    return _named().get(dimension)


def unit_sentence(variable: str, unit: str | Dimension) -> str:
    """A sentence stating a variable's unit, as prompts write it.

    >>> unit_sentence("x1", "m"), unit_sentence("x2", "1"), unit_sentence("y", "kg*m^5")
    ('x1 is a length in m.', 'x2 is dimensionless.', 'y is in kg*m^5.')
    """
    dimension = unit if isinstance(unit, Dimension) else parse_unit(unit)
    if dimension.dimensionless:
        return f"{variable} is dimensionless."
    named = quantity_name(dimension)
    text = unit if isinstance(unit, str) else named[1] if named else str(dimension)
    return f"{variable} is {named[0]} in {text}." if named else f"{variable} is in {text}."


# The rules, as linear forms: {variable: coefficient} stands for sum(coefficient * dim(var))
LinearForm = dict[str, Fraction]
_SCALES = {"inv": Fraction(-1), "pow2": Fraction(2), "pow3": Fraction(3),
           "sqrt": Fraction(1, 2), "abs": Fraction(1), "neg": Fraction(1)}


def _combine(a: LinearForm, b: LinearForm, sign: int) -> LinearForm:
    out = dict(a)
    for v, c in b.items():
        out[v] = out.get(v, 0) + sign * c
    return {v: c for v, c in out.items() if c}


def linear_dimensions(names: Sequence[str], constants: Sequence[float] | None = None
                      ) -> tuple[LinearForm, list[LinearForm]]:
    """The formula's dimension and the conditions for consistency, as linear forms.

    Returns ``(form, conditions)``: the formula's dimension is ``sum(form[v] * dim(v))``, and
    it is consistent when every condition ``sum(c[v] * dim(v))`` is dimensionless. One pass
    over the preorder, right to left. A ``pow`` exponent made of numbers only scales its base
    by its value (the values of its ``C`` from ``constants``, when given).

    >>> form, conditions = linear_dimensions(["add", "x1", "mul", "x2", "sqrt", "x3"])
    >>> form, conditions
    ({'x1': Fraction(1, 1)}, [{'x1': Fraction(1, 1), 'x2': Fraction(-1, 1), 'x3': Fraction(-1, 2)}])
    """
    names = tuple(names)
    values = list(constants) if constants is not None else None
    conditions: list[LinearForm] = []
    # (form, start, end, numeric): a subtree's dimension, its span of tokens, and whether it
    # holds numbers only (dimensionless, and with a value when its C values are known)

    def visit(i: int, name: str, args: list) -> tuple[LinearForm, int, int, bool]:
        end = args[-1][2] if args else i + 1
        numeric = all(a[3] for a in args) and (bool(args) or name[0] != "x")
        if not args:
            form = {name: Fraction(1)} if name[0] == "x" else {}
        elif name in ("add", "sub"):
            difference = _combine(args[0][0], args[1][0], -1)
            if difference:
                conditions.append(difference)
            form = args[0][0]
        elif name in ("mul", "div"):
            form = _combine(args[0][0], args[1][0], 1 if name == "mul" else -1)
        elif name in _SCALES:
            form = {v: c * _SCALES[name] for v, c in args[0][0].items()}
        elif name == "pow":
            base, exponent = args
            value = _number(names[exponent[1]:exponent[2]], names[:exponent[1]], values) \
                if exponent[3] else None
            if exponent[0]:
                conditions.append(exponent[0])
            if value is None or not math.isfinite(value):
                if base[0]:
                    conditions.append(base[0])
                form = {}
            else:
                q = Fraction(value).limit_denominator(1000)
                form = {v: c * q for v, c in base[0].items() if c * q}
        elif name in OPERATORS:
            if args[0][0]:
                conditions.append(args[0][0])
            form = {}
        else:
            raise ValueError(f"names: unknown token {name!r}")
        return form, i, end, numeric

    return reduce_preorder(names, visit)[0], conditions


def _number(subtree: Sequence[str], before: Sequence[str], values: list | None
            ) -> float | None:
    """The value of a subtree of numbers, or None when it holds a ``C`` of unknown value."""
    count = subtree.count(CONSTANT)
    if count and values is None:
        return None
    first = before.count(CONSTANT)
    own = values[first:first + count] if count else []
    with np.errstate(all="ignore"):
        return float(evaluate(list(subtree), np.zeros((1, 1)), own)[0])


def _apply(form: LinearForm, dims: Mapping[str, Dimension]) -> Dimension:
    total = Dimension()
    for v, c in form.items():
        if v not in dims:
            raise ValueError(f"variable_dims: no unit for {v}, which the formula uses "
                             f"(given: {', '.join(sorted(dims)) or 'none'})")
        total = total * dims[v] ** c
    return total


def _as_mapping(dims: Mapping[str, Dimension | str] | Sequence[Dimension | str]
                ) -> dict[str, Dimension]:
    items = dims.items() if isinstance(dims, Mapping) else \
        ((f"x{i}", d) for i, d in enumerate(dims, 1))
    return {v: d if isinstance(d, Dimension) else parse_unit(d) for v, d in items}


def dimension_of(names: Sequence[str],
                 variable_dims: Mapping[str, Dimension | str] | Sequence[Dimension | str],
                 constants: Sequence[float] | None = None) -> Dimension | None:
    """The dimension of a formula given its variables' units, or None if it is inconsistent.

    ``variable_dims`` maps ``x1, x2, …`` to dimensions or unit strings, or lists them in
    order (``x1`` first). Numeric constants are dimensionless.

    >>> dimension_of(["exp", "div", "x1", "x2"], ["m", "m"])
    Dimension('1')
    >>> dimension_of(["sin", "x1"], ["m"]) is None
    True
    """
    dims = _as_mapping(variable_dims)
    form, conditions = linear_dimensions(names, constants)
    if any(not _apply(c, dims).dimensionless for c in conditions):
        return None
    return _apply(form, dims)


def is_consistent(names: Sequence[str],
                  x_dims: Mapping[str, Dimension | str] | Sequence[Dimension | str],
                  y_dim: Dimension | str, constants: Sequence[float] | None = None) -> bool:
    """Whether a formula for ``y`` is dimensionally consistent with the units of its
    variables and of ``y``.

    >>> is_consistent(["mul", "C", "pow2", "x1"], {"x1": "m/s"}, "m^2/s^2")
    True
    >>> is_consistent(["add", "C", "x1"], ["m"], "m")
    False
    """
    y = y_dim if isinstance(y_dim, Dimension) else parse_unit(y_dim)
    return dimension_of(names, x_dims, constants) == y


def monomial_exponents(x_dims: Sequence[Dimension], y_dim: Dimension, *, bound: int = 2,
                       denominator: int = 2, most: int = 30_000) -> list[tuple[Fraction, ...]]:
    """The exponents ``a`` for which ``x1**a1 * x2**a2 * …`` has the dimension ``y_dim``,
    each a multiple of ``1/denominator`` between ``-bound`` and ``bound``: the monomials
    dimensional analysis allows (times a dimensionless constant). Solved exactly on the
    dimensions' matrix, the free exponents (one per independent dimensionless group) tried on
    that grid; none when more than ``most`` combinations would be tried, or when no product of
    powers has ``y_dim``.

    >>> [tuple(map(str, a)) for a in monomial_exponents(
    ...     [parse_unit("C"), parse_unit("F/m"), parse_unit("m")], parse_unit("N"))]
    [('2', '-1', '-2')]
    >>> len(monomial_exponents([parse_unit("m"), parse_unit("m")], parse_unit("m^2")))  # x1/x2
    5
    """
    solved = _solved(x_dims, y_dim)
    if solved is None:
        return []
    rows, pivots, free = solved
    n = len(x_dims)
    grid = [Fraction(k, denominator) for k in range(-bound * denominator, bound * denominator + 1)]
    if len(grid) ** len(free) > most:
        return []
    found = []
    for values in itertools.product(grid, repeat=len(free)):
        exponents = dict(zip(free, values, strict=True))
        for row, pivot in zip(rows, pivots, strict=True):
            exponents[pivot] = row[n] - sum(row[j] * v for j, v in zip(free, values, strict=True))
        if all(abs(a) <= bound and (a * denominator).denominator == 1
               for a in exponents.values()):
            found.append(tuple(exponents[j] for j in range(n)))
    return found


def dimensionless_groups(x_dims: Sequence[Dimension], y_dim: Dimension
                         ) -> tuple[tuple[Fraction, ...], list[tuple[int, ...]]] | None:
    """Buckingham π: exponents ``p`` of one product of powers of the columns with the dimension
    ``y_dim``, and integer exponents of independent dimensionless groups (one per column the
    dimensions do not pin down). Any consistent law is then ``y = x**p * f(π1, π2, …)`` with
    ``πi = x**groups[i]``; ``None`` when no product of powers has ``y_dim``.

    >>> p, groups = dimensionless_groups(
    ...     [parse_unit("C"), parse_unit("C"), parse_unit("F/m"), parse_unit("m")], parse_unit("N"))
    >>> tuple(map(str, p)), groups
    (('2', '0', '-1', '-2'), [(-1, 1, 0, 0)])
    """
    solved = _solved(x_dims, y_dim)
    if solved is None:
        return None
    rows, pivots, free = solved
    n = len(x_dims)
    scale = [Fraction(0)] * n
    for row, pivot in zip(rows, pivots, strict=True):
        scale[pivot] = row[n]
    groups = []
    for j in free:
        group = [Fraction(0)] * n
        group[j] = Fraction(1)
        for row, pivot in zip(rows, pivots, strict=True):
            group[pivot] = -row[j]
        # the smallest integer exponents: x1**2/x2 rather than x1/sqrt(x2)
        lcm = math.lcm(*(g.denominator for g in group))
        ints = [int(g * lcm) for g in group]
        gcd = math.gcd(*ints)
        groups.append(tuple(v // gcd for v in ints))
    return tuple(scale), groups


def _solved(x_dims: Sequence[Dimension], y_dim: Dimension
            ) -> tuple[list[list[Fraction]], tuple[int, ...], list[int]] | None:
    """The reduced rows of ``[dimensions of the columns | dimension of y]``, their pivot
    columns and the free columns; ``None`` when no product of powers has ``y_dim``."""
    import sympy

    n = len(x_dims)
    augmented = sympy.Matrix([[d.exponents[k] for d in x_dims] + [y_dim.exponents[k]]
                              for k in range(len(BASE_UNITS))])
    reduced, pivots = augmented.rref()
    if n in pivots:  # a row 0 = b != 0: no product of powers has y's dimension
        return None
    rows = [[Fraction(int(v.p), int(v.q)) for v in reduced.row(i)] for i in range(len(pivots))]
    return rows, pivots, [j for j in range(n) if j not in pivots]
