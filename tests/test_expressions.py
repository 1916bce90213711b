import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chatsr.symbolic.expressions import Expression, ExpressionError, sympify_real
from chatsr.symbolic.operators import OPERATORS, REFERENCE_OPERATORS, math_token, math_tokens
from chatsr.symbolic.sympy_parsing import MAX_DEPTH

LEAVES = ["x1", "x2", "x3", "C", "const_1", "const_2", "const_3", "const_4", "const_5"]


@st.composite
def preorders(draw, max_depth=4):
    """Random preorder sequences over every operator and every leaf kind."""
    def node(depth):
        if depth == 0 or draw(st.booleans()):
            return [draw(st.sampled_from(LEAVES))]
        op = draw(st.sampled_from(sorted(OPERATORS)))
        out = [op]
        for _ in range(OPERATORS[op].arity):
            out += node(depth - 1)
        return out
    return node(max_depth)


def sample_points(n=64, dims=3, seed=0):
    rng = np.random.default_rng(seed)
    # Inside (0.1, 0.9): every operator (log, sqrt, asin, acos…) is defined on most of it.
    return rng.uniform(0.1, 0.9, size=(n, dims))


def assert_same_function(a: Expression, b: Expression, X):
    ya, yb = a(X), b(X)
    finite = np.isfinite(ya) & np.isfinite(yb)
    assert np.array_equal(np.isfinite(ya), np.isfinite(yb)) or finite.sum() > 0.8 * len(X)
    np.testing.assert_allclose(yb[finite], ya[finite], rtol=1e-7, atol=1e-9)


@given(preorders(), st.lists(st.floats(0.2, 3.0), min_size=20, max_size=20))
@settings(max_examples=300, deadline=None)
def test_round_trip_tokens_tree_sympy_tree_tokens(names, values):
    expr = Expression(names)
    expr = expr.with_constants(values[: expr.n_constants])
    # tokens -> tree -> tokens is exact, in every spelling
    for style in ("chatsr", "name", "symbol"):
        assert Expression.parse(expr.to_tokens(style)).names == expr.names
    assert Expression.parse(expr.to_answer()).names == expr.names
    # tokens -> sympy -> tokens gives the same function (sympy may reorder and fold constant
    # subtrees, so the function must be defined: acos(2.0) is NaN in numpy but complex in sympy)
    X = sample_points()
    assume(np.isfinite(expr(X)).mean() > 0.9)
    back = Expression.from_sympy(expr.to_sympy())
    if back.n_constants and back.constants is None:
        pytest.fail(f"constants lost in round trip of {expr.names}")
    assert_same_function(expr, back, X)


@given(preorders())
@settings(max_examples=200, deadline=None)
def test_skeleton_round_trip_keeps_placeholders(names):
    skeleton = Expression(names).to_sympy(constants="symbols")
    assume(not skeleton.has(sympy.zoo, sympy.oo, sympy.nan))  # x1/acos(1): not a function
    try:
        back = Expression.from_sympy(skeleton)
    except ExpressionError as error:
        # sympy folded a numeric subtree into a limit (atan(1/acos(1)) -> AccumBounds) or a
        # number beyond float64: no function to compare with
        assume("not finite" not in str(error))
        # a numeric subtree like acos(2): NaN in numpy as well
        assert "not a real number" in str(error)
        expr = Expression(names)
        # 1.7, not 1: numpy's 1**nan is 1
        assert np.isnan(expr(sample_points(), np.full(expr.n_constants, 1.7))).all()
        return
    nodes = list(sympy.preorder_traversal(skeleton))
    # sympy may repeat a placeholder (Abs(c0)**3 -> c0**2*Abs(c0)); each occurrence is one C
    placeholders = [a for a in nodes if a.is_Symbol and a.name.startswith("c")]
    # sympy may fold integer subtrees into other numbers (acos(1) -> 0), which become constants
    folded = [a for a in nodes if a.is_number and not (a.is_Integer and 1 <= abs(a) <= 5)]
    if not folded:
        assert back.n_constants == len(placeholders)
    if placeholders:
        assert back.constants is None


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_parses_evaluates_and_matches_sympy(name):
    op = OPERATORS[name]
    names = [name] + ["x1", "x2"][: op.arity]
    expr = Expression.parse([math_token(n) for n in names])
    X = sample_points()
    y = expr(X)
    f = sympy.lambdify(sympy.symbols("x1 x2", real=True), expr.to_sympy(), "numpy")
    np.testing.assert_allclose(y, np.broadcast_to(f(X[:, 0], X[:, 1]), y.shape), rtol=1e-12)
    assert Expression.from_sympy(expr.to_sympy()).names  # converts back
    assert expr.latex()


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_jacobian_matches_finite_differences(name):
    op = OPERATORS[name]
    # op(C*x1 [, C*x2 + C]): exercises the derivative of every operand
    names = [name, "mul", "C", "x1"] + (["add", "mul", "C", "x2", "C"] if op.arity == 2 else [])
    expr = Expression(names)
    c = np.array([0.7, 1.3, 0.4][: expr.n_constants])
    X = sample_points(32)
    _, jac = expr.value_and_jacobian(X, c)
    for i in range(len(c)):
        h = np.zeros_like(c)
        h[i] = 1e-6
        fd = (expr(X, c + h) - expr(X, c - h)) / 2e-6
        np.testing.assert_allclose(jac[:, i], fd, rtol=1e-5, atol=1e-6)


def test_vocabulary_has_every_reference_token():
    tokens = math_tokens()
    for op in REFERENCE_OPERATORS:
        assert math_token(op) in tokens
    for k in range(1, 6):
        assert f"<|math_const_{k}|>" in tokens
    assert "<|math_x10|>" in tokens and "<|math_x11|>" not in tokens
    assert "<|math_C|>" in tokens
    assert len(math_tokens(25)) == len(tokens) + 15  # more than 10 variables


def test_more_than_ten_variables():
    expr = Expression.parse("add x12 x3")
    X = np.arange(24.0).reshape(2, 12)
    np.testing.assert_array_equal(expr(X), X[:, 11] + X[:, 2])


def test_spellings_and_reference_answer():
    answer = "Based on the data, the derived formula is: <|math_add|>,<|math_x1|>,<|math_x2|>"
    for text in (answer, "add x1 x2", "+ x1 x2", ["<|math_add|>", "x1", "x2"]):
        assert Expression.parse(text).names == ("add", "x1", "x2")
    assert Expression.parse("add x1 x2").to_answer() == "<|math_add|>,<|math_x1|>,<|math_x2|>"


def test_integer_constants_evaluate_and_print():
    expr = Expression.parse("mul const_3 pow x1 const_2")
    assert expr.infix() == "3*x1**2"
    np.testing.assert_allclose(expr(np.array([[2.0]])), [12.0])


def test_constants_numbered_in_preorder_and_printed():
    expr = Expression.parse("add mul C x1 C")
    assert expr.n_constants == 2
    assert expr.infix() == "C0*x1 + C1"
    fitted = expr.with_constants([2.5, -0.125])
    assert fitted.infix() == "2.5*x1 - 0.125"
    np.testing.assert_allclose(fitted(np.array([[2.0]])), [4.875])
    assert "2.5" in fitted.latex()


def test_fitted_multiples_of_pi_print_as_pi_and_others_as_numbers():
    expr = Expression.parse("add pow2 sin mul C x1 mul C x1")
    assert expr.with_constants([2 * np.pi + 1e-14, 0.15915494309189]).infix() == (
        "x1/(2*pi) + sin(2*pi*x1)**2")
    assert r"\pi" in expr.with_constants([np.pi, 1.0]).latex()
    # 3.142 is a measurement near pi, not pi
    assert "pi" not in expr.with_constants([3.142, 1.0]).infix(precision=6)


def test_infix_latex_with_variable_names():
    expr = Expression.parse("div x1 x2")
    assert expr.infix(variable_names=["a", "b"]) == "a/b"
    assert expr.latex(variable_names=["mass", "volume"]) == r"\frac{mass}{volume}"


def test_complexity_and_variables():
    expr = Expression.parse("add sin x3 mul C x1")
    assert expr.complexity == 6
    assert expr.variables == [1, 3]


def test_from_sympy_readable_forms():
    assert Expression.from_sympy("x1 - x2").names == ("sub", "x1", "x2")
    assert Expression.from_sympy("x1/x2").names == ("div", "x1", "x2")
    assert Expression.from_sympy("1/x1").names == ("inv", "x1")
    assert Expression.from_sympy("sqrt(x1)").names == ("sqrt", "x1")
    assert Expression.from_sympy("-x1").names == ("neg", "x1")
    assert Expression.from_sympy("3*x1/2").names == ("div", "mul", "const_3", "x1", "const_2")
    assert Expression.from_sympy("exp(-x1)").names == ("exp", "neg", "x1")
    expr = Expression.from_sympy("a*b**2", variable_names=["a", "b"])
    assert expr.names == ("mul", "x1", "pow2", "x2")
    fitted = Expression.from_sympy("2.5*sin(x1)")
    assert fitted.constants == (2.5,)


@pytest.mark.parametrize("k", [6, 7, 10, 12, 25, -8])
def test_integer_exponents_stay_exact_integers(k):
    # as a C they would be refitted and written x1**6.0, which is no longer x1**6 to sympy
    expr = Expression.from_sympy(f"x1**({k}) + x1")
    assert expr.n_constants == 0
    assert sympy.simplify(expr.to_sympy() - sympify_real(f"x1**({k}) + x1")) == 0
    assert Expression.from_sympy("x1**26").constants == (26.0,)


def test_sympy_expressions_compare_with_real_symbols():
    expr = Expression.parse("sqrt pow2 x1")
    assert sympy.simplify(expr.to_sympy() - sympify_real("Abs(x1)")) == 0


@pytest.mark.parametrize("tokens, message", [
    ("add x1 foo", r"unknown token 'foo'"),
    ("<|math_add|>,<|math_bogus|>", r"unknown token"),
    ("add mul x1", r"truncated preorder sequence: 2 operand\(s\) missing"),
    ("sin", r"1 operand\(s\) missing"),
    ("add x1 x2 x3 x4", r"2 trailing token\(s\) after a complete expression of 3 token\(s\)"),
    ("", r"empty expression"),
])
def test_bad_tokens(tokens, message):
    with pytest.raises(ExpressionError, match=message):
        Expression.parse(tokens)


def test_variable_beyond_data():
    expr = Expression.parse("add x1 x4")
    with pytest.raises(ExpressionError, match=r"uses x4 but the data has only 2 column"):
        expr(np.ones((3, 2)))


def test_bad_data_and_constants():
    expr = Expression.parse("mul C x1")
    with pytest.raises(ExpressionError, match="2-D array"):
        expr(np.ones(3), [1.0])
    with pytest.raises(ExpressionError, match="unfitted constant"):
        expr(np.ones((3, 1)))
    with pytest.raises(ExpressionError, match=r"1 constant placeholder\(s\) but 2 value"):
        expr.with_constants([1.0, 2.0])
    with pytest.raises(ExpressionError, match="unknown symbol 'q'"):
        Expression.from_sympy("q + x1")
    with pytest.raises(ExpressionError, match="'gamma' is not a known function at position 0"):
        Expression.from_sympy("gamma(x1)")
    with pytest.raises(ExpressionError, match="cannot convert gamma"):
        Expression.from_sympy(sympy.gamma(sympy.Symbol("x1")))
    with pytest.raises(ExpressionError, match="not finite"):
        Expression.from_sympy("x1/0")


def test_invalid_operations_give_nan_not_warnings():
    expr = Expression.parse("log x1")
    with np.errstate(all="raise"):
        y = expr(np.array([[-1.0], [1.0]]))
    assert np.isnan(y[0]) and y[1] == 0.0


@pytest.mark.parametrize("text, message", [
    # a math token, then text that was dropped: sin(x2) would have read as sin(x1)
    ("<|math_sin|> x2 <|math_x1|>", r"text 'x2' at position 12 after a math token"),
    ("<|math_add|>,<|math_x1|>,<|math_x2|> + x3", r"text '\+ x3' .* after a math token"),
    ("x1 + <|math_x2|>", r"text 'x1 \+' before the first math token"),
    ("x1 + x2", r"trailing token.*reads like infix.*Expression.from_sympy"),
    ("sin x1 * x2", r"trailing token.*reads like infix"),
    ("sin(x1)", r"parentheses in 'sin\(x1\)': Expression.parse reads preorder"),
    ("mul C (x1)", r"parentheses"),
])
def test_mixed_spellings_are_errors_not_another_formula(text, message):
    with pytest.raises(ExpressionError, match=message):
        Expression.parse(text)


def test_every_documented_spelling_still_parses():
    expected = ("mul", "C", "x1")
    for text in ("* C x1", "mul C x1", "mul,C,x1", "<|math_mul|> <|math_C|> <|math_x1|>",
                 "<|math_mul|>,<|math_C|>,<|math_x1|>", "answer: <|math_mul|><|math_C|><|math_x1|>",
                 ["*", "C", "x1"], ["<|math_mul|>", "c", "<|math_x1|>"]):
        assert Expression.parse(text).names == expected
    assert Expression.parse("^ x1 x2").names == Expression.parse("** x1 x2").names == (
        "pow", "x1", "x2")


DEEP = 100_000


def test_a_100000_deep_expression_builds_and_evaluates_without_recursion():
    expr = Expression.parse(["sin"] * DEEP + ["x1"])
    node, depth = expr.tree, 0
    while node.children:
        node, depth = node.children[0], depth + 1
    assert depth == DEEP and node.name == "x1"
    assert expr.depth == DEEP
    X = np.array([[0.5], [1.0]])
    expected = X[:, 0]
    for _ in range(DEEP):
        expected = np.sin(expected)
    np.testing.assert_allclose(expr(X), expected)
    assert repr(expr).startswith("Expression.parse('sin sin")  # sympy's printer would crash


def test_a_deep_jacobian_is_computed_without_recursion():
    deep = 20_000
    expr = Expression.parse(["neg"] * deep + ["mul", "C", "x1"])  # (-1)**deep * C * x1
    y, jacobian = expr.value_and_jacobian(np.array([[2.0], [3.0]]), [1.5])
    np.testing.assert_allclose(y, [3.0, 4.5])
    np.testing.assert_allclose(jacobian, [[2.0], [3.0]])


def test_sympy_conversions_past_max_depth_are_clear_errors():
    deep = Expression.parse(["sin"] * DEEP + ["x1"])
    for convert in (deep.to_sympy, deep.infix, deep.latex, str):
        with pytest.raises(ExpressionError, match=f"nests {DEEP} levels deep.*MAX_DEPTH = "
                                                  f"{MAX_DEPTH}"):
            convert() if convert is not str else convert(deep)
    at_limit = Expression.parse(["exp"] * MAX_DEPTH + ["x1"])
    assert at_limit.infix().count("exp") == MAX_DEPTH
    assert Expression.from_sympy(at_limit.to_sympy()).names == at_limit.names
    # a long sum is one level deep for sympy: no limit on its length
    wide = Expression.parse(["add"] * 999 + ["x1"] * 1000)
    assert wide.depth == 1 and wide.to_sympy() == 1000 * sympy.Symbol("x1", real=True)
    with pytest.raises(ExpressionError, match="MAX_DEPTH"):
        Expression.from_sympy("exp(" * DEEP + "x1" + ")" * DEEP)
