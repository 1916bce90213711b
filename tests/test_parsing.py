"""Formula text is read by chatsr's own grammar (chatsr.symbolic.sympy_parsing), never run: the
same sympy expressions as sympy's parser for formulas, a clear error naming the text and its
position for everything else, hostile text included, and no recursion at any depth."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from chatsr.data.benchmarks import BENCHMARKS, FEYNMAN
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.metrics import symbolic_recovery
from chatsr.symbolic.operators import ExpressionError
from chatsr.symbolic.sympy_parsing import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_FORMULA_LENGTH,
    parse_formula,
    sympify_real,
)

# Trusted formulas written by this test: sympy's own parser is the reference only here.
ORDINARY = ["x1 + x2", "2.5*sin(x1) - x2**2", "-x1**2", "2**-x1*3", "x1 - (x2 + x3)",
            "x1/x2/x3", "1/2*x1", "3*x1/2", "x1**2**3", "(x1 + 1)**(1/2)", "exp(-x1)*x2",
            "log(x1, 10)", "1.5e3*x1 + .5 - 2E-3", "pi*x1 + E", "Abs(x1) + sqrt(x2)",
            "tanh(x1) + cosh(x2) + sinh(x3)", "asin(x1) + acos(x2) + atan(x3)", "--x1",
            "+x1 - -x2", "x1*-x2", "2/0*x1", "((((x1))))", "c0*x1 + c1"]


def _real(expr: sympy.Expr) -> sympy.Expr:
    return expr.xreplace({s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols})


@pytest.mark.parametrize("text", ORDINARY)
def test_formulas_read_as_sympy_reads_them(text):
    assert parse_formula(text) == _real(sympy.sympify(text))


def test_aliases_caret_and_operator_names_are_functions():
    x1, x2 = sympy.symbols("x1 x2", real=True)
    assert parse_formula("ln(x1) + arcsin(x2)") == sympy.log(x1) + sympy.asin(x2)
    assert parse_formula("x1^2") == x1**2
    assert parse_formula("add(pow2(x1), inv(x2))") == x1**2 + 1 / x2
    assert parse_formula("pow(x1, x2) + neg(x2)") == x1**x2 - x2
    assert set(FUNCTIONS) >= {"sin", "ln", "arccos", "Abs", "pow2", "arctan"}


def test_names_in_symbols_win_and_others_can_be_refused():
    e = sympy.Symbol("x1", real=True)
    assert parse_formula("E + pi", {"E": e}) == e + sympy.pi
    with pytest.raises(ExpressionError, match=r"unknown name 'q': expected one of E or pi, E "
                                              r"at position 2"):
        parse_formula("E*q", {"E": e}, free_symbols=False)


def _points(n_variables: int, ranges) -> np.ndarray:
    rng = np.random.default_rng(0)
    low, high = np.array(ranges).T
    return rng.uniform(low, high, size=(16, n_variables))


@pytest.mark.parametrize("name", sorted(FEYNMAN))
def test_every_shipped_feynman_formula_reads_as_before(name):
    bench = FEYNMAN[name]
    symbols = {v: sympy.Symbol(f"x{i}", real=True)
               for i, v in enumerate(bench.variable_names, 1)}
    ours = parse_formula(bench.source_formula, symbols, free_symbols=False)
    # sympify on our own trusted table, the way the table was read before
    before = sympy.sympify(bench.source_formula,
                           locals={**symbols, "arcsin": sympy.asin, "ln": sympy.log})
    assert ours == before
    variables = list(symbols.values())
    X = _points(len(variables), bench.ranges)
    f_ours, f_before = (sympy.lambdify(variables, e, modules="numpy") for e in (ours, before))
    np.testing.assert_allclose(f_ours(*X.T), f_before(*X.T), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_shipped_benchmark_expression_matches_sympy_text(name):
    bench = BENCHMARKS[name]
    X = _points(bench.n_variables, bench.ranges)
    variables = sympy.symbols(f"x1:{bench.n_variables + 1}")
    reference = sympy.lambdify(variables, sympy.sympify(bench.formula), modules="numpy")
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(bench.expression()(X), reference(*X.T), rtol=1e-9)


@pytest.mark.parametrize(("text", "message"), [
    ("2x1", r"expected an operator before 'x1' \(write 2\*x.*at position 1"),
    ("x1.real", r"unexpected character '\.' at position 2"),
    ("x1 > 2", r"unexpected character '>' at position 3"),
    ("lambda: 1", r"'lambda' is not a variable or function name at position 0"),
    ("x1 + __class__", r"'__class__' is not a variable or function name at position 5"),
    ("gamma(x1)", r"'gamma' is not a known function at position 0.*known functions: add"),
    ("x1(x2)", r"'x1' is not a known function at position 0"),
    ("x1, x2", r"comma outside a function call at position 2"),
    ("(x1, x2)", r"comma outside a function call at position 3"),
    ("sin(x1, x2)", r"sin takes 1 argument\(s\), got 2 at position 0"),
    ("sin()", r"expected an operand before '\)' at position 4"),
    ("sin", r"function 'sin' needs its argument in parentheses at position 0"),
    ("(x1", r"unclosed '\(' at position 0"),
    ("x1)", r"unmatched '\)' at position 2"),
    ("x1 *", r"ends with an operator at position 4"),
    ("", r"empty"),
    ("* x1", r"expected a number, a name or '\(' before '\*' at position 0"),
    ("1" * 5000, r"unreadable number '1111"),
])
def test_what_is_not_a_formula_is_an_error_naming_text_and_position(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse_formula(text)


def test_huge_exact_powers_stay_unevaluated():
    expr = parse_formula("5**5**5**5")  # computed exactly, this would never finish
    assert isinstance(expr, sympy.Pow) and expr.base == 5
    assert parse_formula("2**10") == 1024


def test_deep_or_long_formulas_are_refused_by_a_stated_limit_never_a_recursion_error():
    with pytest.raises(ExpressionError, match=f"MAX_FORMULA_LENGTH = {MAX_FORMULA_LENGTH}"):
        parse_formula("x1 + " * (MAX_FORMULA_LENGTH // 5) + "x1")
    n = 100_000
    for text in ("sin(" * n + "x1" + ")" * n, "x1**" * n + "x1", "-(" * n + "x1" + ")" * n):
        with pytest.raises(ExpressionError, match=f"MAX_DEPTH = {MAX_DEPTH}"):
            parse_formula(text)
    assert parse_formula("(" * n + "x1" + ")" * n) == sympy.Symbol("x1", real=True)
    at_limit = parse_formula("sin(" * MAX_DEPTH + "x1" + ")" * MAX_DEPTH)
    assert str(at_limit).count("sin") == MAX_DEPTH
    long_sum = parse_formula(" + ".join(f"x{i}" for i in range(1, 10_001)))
    assert len(long_sum.args) == 10_000  # a flat sum, built in one step


def test_a_deep_sympy_object_is_refused_before_sympy_recurses():
    expr = sympy.Symbol("x1")
    for _ in range(MAX_DEPTH + 5):
        expr = sympy.exp(expr)
    with pytest.raises(ExpressionError, match="MAX_DEPTH"):
        sympify_real(expr)
    with pytest.raises(ExpressionError, match="MAX_DEPTH"):
        Expression.from_sympy(expr)


# Each would create the file if it were evaluated (sympify is eval).
HOSTILE = [
    "__import__('os').system('touch {path}')",
    "__import__(\"os\").system(\"touch {path}\")",
    "().__class__.__bases__[0].__subclasses__()",
    "(lambda: __import__('os').system('touch {path}'))()",
    "exec(\"open('{path}', 'w').write('x')\")",
    "eval(\"open('{path}', 'w')\")",
    "open('{path}', 'w')",
    "x1 + open('{path}', 'w').close()",
    "Symbol('x').__class__",
    "x1 if open('{path}', 'w') else x1",
    "[open('{path}', 'w') for _ in (1,)]",
    "x1; import os; os.system('touch {path}')",
    "getattr(x1, '__class__')",
    "Function('open')('{path}')",
]


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "hostile text was executed"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_text_is_refused_and_runs_nothing(template, target):
    text = template.format(path=target)
    with pytest.raises(ExpressionError, match="cannot read formula"):
        parse_formula(text)
    with pytest.raises(ExpressionError, match="cannot read formula"):
        Expression.from_sympy(text)
    with pytest.raises(ExpressionError):
        Expression.from_sympy(text, variable_names=["x1"])
    with pytest.raises(ExpressionError):
        Expression.parse(text)
    with pytest.raises(ExpressionError, match="is not a readable formula"):
        symbolic_recovery(text, "x1")
    with pytest.raises(ExpressionError, match="is not a readable formula"):
        symbolic_recovery("x1", text)
    # the benchmark table's path: only the table's names are accepted
    with pytest.raises(ExpressionError, match="cannot read formula"):
        parse_formula(text, {"x1": sympy.Symbol("x1", real=True)}, free_symbols=False)
