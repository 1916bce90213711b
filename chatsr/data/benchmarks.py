"""Public symbolic-regression benchmarks: Nguyen 1–12 and the 100 AI Feynman equations.

Each :class:`Benchmark` holds a formula, the sampling range of each variable and a number of
points. Formulas are sympy text in ``x1, x2, …``; Feynman equations also keep their physical
variable names and their published formula, so a result can be shown in the physicist's
notation. The generator removes every one of these skeletons from its training data
(:func:`chatsr.symbolic.skeletons.skeleton_key`), and the benchmark runner samples them here.

Ranges are the published ones: Nguyen (Uy et al. 2011) as listed in SPEC.md, Feynman from the
AI Feynman table (Udrescu & Tegmark 2020, ``FeynmanEquations.csv``), which SRBench also uses.
Nguyen specifies 20 points; the Feynman table specifies ranges only, and 200 points is our
choice, within the 10–800 points the generator trains on.

Feynman equations carry the SI units of their variables and target (``x_units``, ``y_units``),
from AI Feynman's ``units.csv`` (exponents of m, s, kg, K and V per variable name; copied from
PhySO, ``physo/benchmark/FeynmanDataset/units.csv`` at commit bfbfa88, whose loader corrects
the one known error we correct too: ``mu_drift`` is s/kg, not kg/s) and the output column of
``FeynmanEquations.csv``, written out per equation in ``assets/benchmarks/feynman_units.csv``
(in the named unit of the quantity where the prompts' facts have one: N, J, F/m, …).
All 100 formulas are dimensionally consistent with them (a test checks it).

>>> bench = BENCHMARKS["Nguyen-9"]
>>> bench.formula, bench.ranges
('sin(x1) + sin(x2**2)', ((0.0, 1.0), (0.0, 1.0)))
>>> X, y = bench.sample(np.random.default_rng(0))
>>> X.shape, bool(np.allclose(y, np.sin(X[:, 0]) + np.sin(X[:, 1] ** 2)))
((20, 2), True)
>>> FEYNMAN["I.12.1"].formula, FEYNMAN["I.12.1"].variable_names
('x1*x2', ('mu', 'Nn'))
>>> FEYNMAN["I.12.1"].x_units, FEYNMAN["I.12.1"].y_units
(('1', 'N'), 'N')
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import sympy

from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.skeletons import ExclusionSet
from chatsr.symbolic.sympy_parsing import parse_formula

__all__ = ["BENCHMARKS", "FEYNMAN", "NGUYEN", "Benchmark", "benchmark_exclusions"]

FEYNMAN_POINTS = 200


@dataclass(frozen=True)
class Benchmark:
    """One benchmark problem: ``y = formula(x1, …)`` with each ``x_i ~ U(ranges[i-1])``."""

    name: str
    formula: str  # sympy text in x1, x2, …
    ranges: tuple[tuple[float, float], ...]  # (low, high) of x1, x2, …
    n_points: int
    variable_names: tuple[str, ...] = ()  # physical names of x1, x2, … (Feynman), else empty
    source_formula: str = ""  # the published formula in those names (Feynman), else empty
    x_units: tuple[str, ...] = ()  # SI units of x1, x2, … (Feynman), else empty
    y_units: str | None = None  # SI units of y (Feynman), else None

    @property
    def n_variables(self) -> int:
        """Number of input variables."""
        return len(self.ranges)

    @property
    def positive_variables(self) -> tuple[str, ...]:
        """The names (``x1``, …) of the variables whose range lies above 0.

        >>> NGUYEN["Nguyen-7"].positive_variables, FEYNMAN["I.12.1"].positive_variables
        ((), ('x1', 'x2'))
        """
        return tuple(f"x{k}" for k, (low, _) in enumerate(self.ranges, 1) if low > 0)

    def expression(self) -> Expression:
        """The formula as an :class:`Expression`, its numbers (π, 1/2…) as fitted constants."""
        return _expression(self.formula)

    def sample(self, rng: np.random.Generator, n_points: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``X`` (n_points, n_variables) uniformly in the ranges and evaluate ``y``."""
        n = self.n_points if n_points is None else n_points
        low, high = np.array(self.ranges).T
        X = rng.uniform(low, high, size=(n, self.n_variables))
        return X, self.expression()(X)


@functools.cache
def _expression(formula: str) -> Expression:
    return Expression.from_sympy(formula)


def _nguyen(number: int, formula: str, low: float, high: float, n_vars: int = 1) -> Benchmark:
    return Benchmark(f"Nguyen-{number}", formula, ((float(low), float(high)),) * n_vars, 20)


NGUYEN: dict[str, Benchmark] = {b.name: b for b in [
    _nguyen(1, "x1**3 + x1**2 + x1", -1, 1),
    _nguyen(2, "x1**4 + x1**3 + x1**2 + x1", -1, 1),
    _nguyen(3, "x1**5 + x1**4 + x1**3 + x1**2 + x1", -1, 1),
    _nguyen(4, "x1**6 + x1**5 + x1**4 + x1**3 + x1**2 + x1", -1, 1),
    _nguyen(5, "sin(x1**2)*cos(x1) - 1", -1, 1),
    _nguyen(6, "sin(x1) + sin(x1 + x1**2)", -1, 1),
    _nguyen(7, "log(x1 + 1) + log(x1**2 + 1)", 0, 2),
    _nguyen(8, "sqrt(x1)", 0, 4),
    _nguyen(9, "sin(x1) + sin(x2**2)", 0, 1, 2),
    _nguyen(10, "2*sin(x1)*cos(x2)", 0, 1, 2),
    _nguyen(11, "x1**x2", 0, 1, 2),
    _nguyen(12, "x1**4 - x1**3 + x2**2/2 - x2", 0, 1, 2),
]}

# The AI Feynman table: name | published formula | variable low high, … (its order is x1, x2, …).
_FEYNMAN_TABLE = """
I.6.2a | exp(-theta**2/2)/sqrt(2*pi) | theta 1 3
I.6.2 | exp(-(theta/sigma)**2/2)/(sqrt(2*pi)*sigma) | sigma 1 3, theta 1 3
I.6.2b | exp(-((theta-theta1)/sigma)**2/2)/(sqrt(2*pi)*sigma) | sigma 1 3, theta 1 3, theta1 1 3
I.8.14 | sqrt((x2-x1)**2+(y2-y1)**2) | x1 1 5, x2 1 5, y1 1 5, y2 1 5
I.9.18 | G*m1*m2/((x2-x1)**2+(y2-y1)**2+(z2-z1)**2) | m1 1 2, m2 1 2, G 1 2, x1 3 4, x2 1 2, \
y1 3 4, y2 1 2, z1 3 4, z2 1 2
I.10.7 | m_0/sqrt(1-v**2/c**2) | m_0 1 5, v 1 2, c 3 10
I.11.19 | x1*y1+x2*y2+x3*y3 | x1 1 5, x2 1 5, x3 1 5, y1 1 5, y2 1 5, y3 1 5
I.12.1 | mu*Nn | mu 1 5, Nn 1 5
I.12.2 | q1*q2*r/(4*pi*epsilon*r**3) | q1 1 5, q2 1 5, epsilon 1 5, r 1 5
I.12.4 | q1*r/(4*pi*epsilon*r**3) | q1 1 5, epsilon 1 5, r 1 5
I.12.5 | q2*Ef | q2 1 5, Ef 1 5
I.12.11 | q*(Ef+B*v*sin(theta)) | q 1 5, Ef 1 5, B 1 5, v 1 5, theta 1 5
I.13.4 | 1/2*m*(v**2+u**2+w**2) | m 1 5, v 1 5, u 1 5, w 1 5
I.13.12 | G*m1*m2*(1/r2-1/r1) | m1 1 5, m2 1 5, r1 1 5, r2 1 5, G 1 5
I.14.3 | m*g*z | m 1 5, g 1 5, z 1 5
I.14.4 | 1/2*k_spring*x**2 | k_spring 1 5, x 1 5
I.15.3x | (x-u*t)/sqrt(1-u**2/c**2) | x 5 10, u 1 2, c 3 20, t 1 2
I.15.3t | (t-u*x/c**2)/sqrt(1-u**2/c**2) | x 1 5, c 3 10, u 1 2, t 1 5
I.15.1 | m_0*v/sqrt(1-v**2/c**2) | m_0 1 5, v 1 2, c 3 10
I.16.6 | (u+v)/(1+u*v/c**2) | c 1 5, v 1 5, u 1 5
I.18.4 | (m1*r1+m2*r2)/(m1+m2) | m1 1 5, m2 1 5, r1 1 5, r2 1 5
I.18.12 | r*F*sin(theta) | r 1 5, F 1 5, theta 0 5
I.18.14 | m*r*v*sin(theta) | m 1 5, r 1 5, v 1 5, theta 1 5
I.24.6 | 1/2*m*(omega**2+omega_0**2)*1/2*x**2 | m 1 3, omega 1 3, omega_0 1 3, x 1 3
I.25.13 | q/C | q 1 5, C 1 5
I.26.2 | arcsin(n*sin(theta2)) | n 0 1, theta2 1 5
I.27.6 | 1/(1/d1+n/d2) | d1 1 5, d2 1 5, n 1 5
I.29.4 | omega/c | omega 1 10, c 1 10
I.29.16 | sqrt(x1**2+x2**2-2*x1*x2*cos(theta1-theta2)) | x1 1 5, x2 1 5, theta1 1 5, theta2 1 5
I.30.3 | Int_0*sin(n*theta/2)**2/sin(theta/2)**2 | Int_0 1 5, theta 1 5, n 1 5
I.30.5 | arcsin(lambd/(n*d)) | lambd 1 2, d 2 5, n 1 5
I.32.5 | q**2*a**2/(6*pi*epsilon*c**3) | q 1 5, a 1 5, epsilon 1 5, c 1 5
I.32.17 | (1/2*epsilon*c*Ef**2)*(8*pi*r**2/3)*(omega**4/(omega**2-omega_0**2)**2) | epsilon 1 2, \
c 1 2, Ef 1 2, r 1 2, omega 1 2, omega_0 3 5
I.34.8 | q*v*B/p | q 1 5, v 1 5, B 1 5, p 1 5
I.34.1 | omega_0/(1-v/c) | c 3 10, v 1 2, omega_0 1 5
I.34.14 | (1+v/c)/sqrt(1-v**2/c**2)*omega_0 | c 3 10, v 1 2, omega_0 1 5
I.34.27 | (h/(2*pi))*omega | omega 1 5, h 1 5
I.37.4 | I1+I2+2*sqrt(I1*I2)*cos(delta) | I1 1 5, I2 1 5, delta 1 5
I.38.12 | 4*pi*epsilon*(h/(2*pi))**2/(m*q**2) | m 1 5, q 1 5, h 1 5, epsilon 1 5
I.39.1 | 3/2*pr*V | pr 1 5, V 1 5
I.39.11 | 1/(gamma-1)*pr*V | gamma 2 5, pr 1 5, V 1 5
I.39.22 | n*kb*T/V | n 1 5, T 1 5, V 1 5, kb 1 5
I.40.1 | n_0*exp(-m*g*x/(kb*T)) | n_0 1 5, m 1 5, x 1 5, T 1 5, g 1 5, kb 1 5
I.41.16 | h/(2*pi)*omega**3/(pi**2*c**2*(exp((h/(2*pi))*omega/(kb*T))-1)) | omega 1 5, T 1 5, \
h 1 5, kb 1 5, c 1 5
I.43.16 | mu_drift*q*Volt/d | mu_drift 1 5, q 1 5, Volt 1 5, d 1 5
I.43.31 | mob*kb*T | mob 1 5, T 1 5, kb 1 5
I.43.43 | 1/(gamma-1)*kb*v/A | gamma 2 5, kb 1 5, A 1 5, v 1 5
I.44.4 | n*kb*T*ln(V2/V1) | n 1 5, kb 1 5, T 1 5, V1 1 5, V2 1 5
I.47.23 | sqrt(gamma*pr/rho) | gamma 1 5, pr 1 5, rho 1 5
I.48.2 | m*c**2/sqrt(1-v**2/c**2) | m 1 5, v 1 2, c 3 10
I.50.26 | x1*(cos(omega*t)+alpha*cos(omega*t)**2) | x1 1 3, omega 1 3, t 1 3, alpha 1 3
II.2.42 | kappa*(T2-T1)*A/d | kappa 1 5, T1 1 5, T2 1 5, A 1 5, d 1 5
II.3.24 | Pwr/(4*pi*r**2) | Pwr 1 5, r 1 5
II.4.23 | q/(4*pi*epsilon*r) | q 1 5, epsilon 1 5, r 1 5
II.6.11 | 1/(4*pi*epsilon)*p_d*cos(theta)/r**2 | epsilon 1 3, p_d 1 3, theta 1 3, r 1 3
II.6.15a | p_d/(4*pi*epsilon)*3*z/r**5*sqrt(x**2+y**2) | epsilon 1 3, p_d 1 3, r 1 3, x 1 3, \
y 1 3, z 1 3
II.6.15b | p_d/(4*pi*epsilon)*3*cos(theta)*sin(theta)/r**3 | epsilon 1 3, p_d 1 3, theta 1 3, \
r 1 3
II.8.7 | 3/5*q**2/(4*pi*epsilon*d) | q 1 5, epsilon 1 5, d 1 5
II.8.31 | epsilon*Ef**2/2 | epsilon 1 5, Ef 1 5
II.10.9 | sigma_den/epsilon*1/(1+chi) | sigma_den 1 5, epsilon 1 5, chi 1 5
II.11.3 | q*Ef/(m*(omega_0**2-omega**2)) | q 1 3, Ef 1 3, m 1 3, omega_0 3 5, omega 1 2
II.11.17 | n_0*(1+p_d*Ef*cos(theta)/(kb*T)) | n_0 1 3, kb 1 3, T 1 3, theta 1 3, p_d 1 3, \
Ef 1 3
II.11.20 | n_rho*p_d**2*Ef/(3*kb*T) | n_rho 1 5, p_d 1 5, Ef 1 5, kb 1 5, T 1 5
II.11.27 | n*alpha/(1-(n*alpha/3))*epsilon*Ef | n 0 1, alpha 0 1, epsilon 1 2, Ef 1 2
II.11.28 | 1+n*alpha/(1-(n*alpha/3)) | n 0 1, alpha 0 1
II.13.17 | 1/(4*pi*epsilon*c**2)*2*I/r | epsilon 1 5, c 1 5, I 1 5, r 1 5
II.13.23 | rho_c_0/sqrt(1-v**2/c**2) | rho_c_0 1 5, v 1 2, c 3 10
II.13.34 | rho_c_0*v/sqrt(1-v**2/c**2) | rho_c_0 1 5, v 1 2, c 3 10
II.15.4 | -mom*B*cos(theta) | mom 1 5, B 1 5, theta 1 5
II.15.5 | -p_d*Ef*cos(theta) | p_d 1 5, Ef 1 5, theta 1 5
II.21.32 | q/(4*pi*epsilon*r*(1-v/c)) | q 1 5, epsilon 1 5, r 1 5, v 1 2, c 3 10
II.24.17 | sqrt(omega**2/c**2-pi**2/d**2) | omega 4 6, c 1 2, d 2 4
II.27.16 | epsilon*c*Ef**2 | epsilon 1 5, c 1 5, Ef 1 5
II.27.18 | epsilon*Ef**2 | epsilon 1 5, Ef 1 5
II.34.2a | q*v/(2*pi*r) | q 1 5, v 1 5, r 1 5
II.34.2 | q*v*r/2 | q 1 5, v 1 5, r 1 5
II.34.11 | g_*q*B/(2*m) | g_ 1 5, q 1 5, B 1 5, m 1 5
II.34.29a | q*h/(4*pi*m) | q 1 5, h 1 5, m 1 5
II.34.29b | g_*mom*B*Jz/(h/(2*pi)) | g_ 1 5, h 1 5, Jz 1 5, mom 1 5, B 1 5
II.35.18 | n_0/(exp(mom*B/(kb*T))+exp(-mom*B/(kb*T))) | n_0 1 3, kb 1 3, T 1 3, mom 1 3, B 1 3
II.35.21 | n_rho*mom*tanh(mom*B/(kb*T)) | n_rho 1 5, mom 1 5, B 1 5, kb 1 5, T 1 5
II.36.38 | mom*H/(kb*T)+(mom*alpha)/(epsilon*c**2*kb*T)*M | mom 1 3, H 1 3, kb 1 3, T 1 3, \
alpha 1 3, epsilon 1 3, c 1 3, M 1 3
II.37.1 | mom*(1+chi)*B | mom 1 5, B 1 5, chi 1 5
II.38.3 | Y*A*x/d | Y 1 5, A 1 5, d 1 5, x 1 5
II.38.14 | Y/(2*(1+sigma)) | Y 1 5, sigma 1 5
III.4.32 | 1/(exp((h/(2*pi))*omega/(kb*T))-1) | h 1 5, omega 1 5, kb 1 5, T 1 5
III.4.33 | (h/(2*pi))*omega/(exp((h/(2*pi))*omega/(kb*T))-1) | h 1 5, omega 1 5, kb 1 5, T 1 5
III.7.38 | 2*mom*B/(h/(2*pi)) | mom 1 5, B 1 5, h 1 5
III.8.54 | sin(E_n*t/(h/(2*pi)))**2 | E_n 1 2, t 1 2, h 1 4
III.9.52 | (p_d*Ef*t/(h/(2*pi)))*sin((omega-omega_0)*t/2)**2/((omega-omega_0)*t/2)**2 | \
p_d 1 3, Ef 1 3, t 1 3, h 1 3, omega 1 5, omega_0 1 5
III.10.19 | mom*sqrt(Bx**2+By**2+Bz**2) | mom 1 5, Bx 1 5, By 1 5, Bz 1 5
III.12.43 | n*(h/(2*pi)) | n 1 5, h 1 5
III.13.18 | 2*E_n*d**2*k/(h/(2*pi)) | E_n 1 5, d 1 5, k 1 5, h 1 5
III.14.14 | I_0*(exp(q*Volt/(kb*T))-1) | I_0 1 5, q 1 2, Volt 1 2, kb 1 2, T 1 2
III.15.12 | 2*U*(1-cos(k*d)) | U 1 5, k 1 5, d 1 5
III.15.14 | (h/(2*pi))**2/(2*E_n*d**2) | h 1 5, E_n 1 5, d 1 5
III.15.27 | 2*pi*alpha/(n*d) | alpha 1 5, n 1 5, d 1 5
III.17.37 | beta*(1+alpha*cos(theta)) | beta 1 5, alpha 1 5, theta 1 5
III.19.51 | -m*q**4/(2*(4*pi*epsilon)**2*(h/(2*pi))**2)*(1/n**2) | m 1 5, q 1 5, h 1 5, n 1 5, \
epsilon 1 5
III.21.20 | -rho_c_0*q*A_vec/m | rho_c_0 1 5, q 1 5, A_vec 1 5, m 1 5
"""


def _feynman(line: str) -> Benchmark:
    name, source, variables = (part.strip() for part in line.split("|"))
    names, ranges = [], []
    for spec in variables.split(","):
        var, low, high = spec.split()
        names.append(var)
        ranges.append((float(low), float(high)))
    # Physical names map to x1, x2, … in the table's order; no other name is accepted, and names
    # that are sympy objects elsewhere (gamma, beta, I, C) are plain variables here.
    symbols = {var: sympy.Symbol(f"x{i}", real=True) for i, var in enumerate(names, 1)}
    expr = parse_formula(source, symbols, free_symbols=False)  # read, never evaluated
    units = _feynman_units()[name]
    return Benchmark(f"Feynman-{name}", str(expr), tuple(ranges), FEYNMAN_POINTS, tuple(names),
                     source, tuple(units[f"x{i}"] for i in range(1, len(names) + 1)), units["y"])


@functools.cache
def _feynman_units() -> dict[str, dict[str, str]]:
    """Per equation, the unit of each column (``x1``, …, ``y``)."""
    table: dict[str, dict[str, str]] = {}
    path = resources.files("chatsr") / "assets" / "benchmarks" / "feynman_units.csv"
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            table.setdefault(row["equation"], {})[row["column"]] = row["unit"]
    return table


FEYNMAN: dict[str, Benchmark] = {
    b.name.removeprefix("Feynman-"): b
    for b in map(_feynman, _FEYNMAN_TABLE.replace("\\\n", "").strip().splitlines())
}
BENCHMARKS: dict[str, Benchmark] = {**NGUYEN, **{b.name: b for b in FEYNMAN.values()}}


@functools.cache
def benchmark_exclusions() -> ExclusionSet:
    """Every benchmark skeleton (Nguyen 1–12, the AI Feynman equations), which the generator
    never emits, so that a benchmark measures what a model has not seen."""
    return ExclusionSet(b.expression() for b in BENCHMARKS.values())
