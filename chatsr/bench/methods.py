"""The benchmark's methods: ChatSR, its ablations, pyoperon and gplearn, each built in the fit's
process.

* ``chatsr``: the regressor's defaults (the model seeds and steers the engine);
  ``chatsr-nomodel``: the same engine and tidying without a model (``model=False``);
  ``chatsr-oneshot``: the model's first round only (``max_rounds=0``), BFGS and tidying;
  ``chatsr-units``: ``chatsr`` told the SI units of the columns (``X_units``, ``y_units``) where
  the problem has them (the Feynman equations; on Nguyen it is ``chatsr``).
* ``pyoperon``: Operon's own scikit-learn estimator with its defaults (1,000,000 evaluations at
  most) and the operators of :data:`PYOPERON_SYMBOLS`; ``pyoperon-budget``: the same within
  chatsr's time budget (``max_time``). Its formula is read from its tree, not from text.
* ``gplearn`` runs with the budget of :data:`GPLEARN_SETTINGS` (population 1000, 20
  generations), its protected operators read as the plain ones for the recovery check, as
  SRBench does (:func:`gplearn_to_sympy`). It is an optional dependency (``pip install -e
  ".[bench]"``), skipped with a note when missing (:func:`available_methods`).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import sympy

    from chatsr.data.benchmarks import Benchmark

__all__ = ["BUILDERS", "DEFAULT_METHODS", "GPLEARN_SETTINGS", "METHOD_MODULES", "METHODS",
           "MODEL_METHODS", "PYOPERON_SYMBOLS", "UNIT_METHODS", "available_methods",
           "fit_options", "fit_parameters", "gplearn_to_sympy"]

METHODS = ("chatsr", "chatsr-nomodel", "chatsr-oneshot", "chatsr-units", "pyoperon",
           "pyoperon-budget", "gplearn")
DEFAULT_METHODS = ("chatsr", "pyoperon", "gplearn")
MODEL_METHODS = ("chatsr", "chatsr-oneshot", "chatsr-units")  # those that read --model
UNIT_METHODS = ("chatsr-units",)  # those told the problem's units
# the operators the benchmark's formulas need, as pyoperon names them (its default is + - * /)
PYOPERON_SYMBOLS = "add,sub,mul,div,square,sqrt,exp,log,sin,cos,constant,variable"

GPLEARN_SETTINGS: dict[str, Any] = dict(
    population_size=1000, generations=20,
    function_set=("add", "sub", "mul", "div", "sin", "cos", "exp", "log", "sqrt"))


def available_methods(methods: Sequence[str]) -> list[str]:
    """``methods`` without repeats and without gplearn when it is not installed (with a note).

    >>> available_methods(["chatsr", "chatsr-oneshot", "chatsr"])
    ['chatsr', 'chatsr-oneshot']
    >>> available_methods(["pysr"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown method(s) ['pysr']; choose from ('chatsr', 'chatsr-nomodel', ...)
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    if "gplearn" in methods and importlib.util.find_spec("gplearn") is None:
        print("note: gplearn is not installed, so it is skipped "
              "(pip install gplearn, or the chatsr[bench] extra)", file=sys.stderr)
        methods = [m for m in methods if m != "gplearn"]
    if not methods:
        raise ValueError("no method left to run")
    return list(dict.fromkeys(methods))


def fit_options(methods: Sequence[str], *, seed: int, time_budget: float | None,
                model: str | Path | None, max_rounds: int | None = None) -> dict[str, Any]:
    """What every fit's builder reads: the seed, ChatSR's time budget, its rounds (given, the
    fits run without a clock: ``time_budget=None, max_rounds=N``) and its model directory
    (checked here, before any fit, when a method of :data:`MODEL_METHODS` is among
    ``methods``).

    >>> fit_options(["gplearn"], seed=0, time_budget=None, model=None)
    {'seed': 0, 'time_budget': None, 'max_rounds': None, 'model': None}
    """
    reads_model = any(m in MODEL_METHODS for m in methods)
    return {"seed": seed, "time_budget": time_budget, "max_rounds": max_rounds,
            "model": _check_model(model) if reads_model else None}


def fit_parameters(method: str, problem: Benchmark) -> dict[str, Any]:
    """What ``method``'s ``fit`` gets beside ``X`` and ``y``: the problem's units for
    :data:`UNIT_METHODS` when it has them, else nothing.

    >>> from chatsr.data.benchmarks import BENCHMARKS
    >>> fit_parameters("chatsr-units", BENCHMARKS["Feynman-I.12.1"])
    {'X_units': ['1', 'N'], 'y_units': 'N'}
    >>> fit_parameters("chatsr", BENCHMARKS["Feynman-I.12.1"])
    {}
    """
    if method in UNIT_METHODS and problem.y_units is not None:
        return {"X_units": list(problem.x_units), "y_units": problem.y_units}
    return {}


def _check_model(model: str | Path | None) -> str:
    from chatsr.model.pretrained import DEFAULT_CHECKPOINT

    path = Path(DEFAULT_CHECKPOINT if model is None else model).resolve()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no chatsr model in {path} (config.json missing); pass "
                                f"model= (--model) a directory written by `chatsr train`")
    return str(path)


def _protected_exp(x1: np.ndarray) -> np.ndarray:
    # gplearn requires closed functions: finite on every input
    return np.exp(np.minimum(x1, 100.0))


def _make_chatsr(n_variables: int, options: dict[str, Any], max_rounds: int | None = None,
                 with_model: bool = True) -> tuple[Any, Callable[[], Any]]:
    from chatsr.estimator import ChatSRRegressor
    from chatsr.model.pretrained import load_pretrained  # it keeps HF's "Loading weights" bar quiet

    extra = {} if options["time_budget"] is None else {"time_budget": options["time_budget"]}
    if options.get("max_rounds") is not None:
        extra = {"time_budget": None, "max_rounds": options["max_rounds"]}
    if max_rounds is not None:
        extra["max_rounds"] = max_rounds
    model = load_pretrained(options["model"]) if with_model else False
    estimator = ChatSRRegressor(model=model, random_state=options["seed"], **extra)
    return estimator, lambda: estimator.sympy()


def _make_pyoperon(n_variables: int, options: dict[str, Any], budget: bool = False
                   ) -> tuple[Any, Callable[[], Any]]:
    from pyoperon.sklearn import SymbolicRegressor

    from chatsr.estimator import ChatSRRegressor
    from chatsr.search.engine import from_tree

    extra = {}
    if budget:  # Operon counts whole seconds
        seconds = options["time_budget"] or ChatSRRegressor().time_budget
        extra["max_time"] = max(1, round(seconds))
    estimator = SymbolicRegressor(allowed_symbols=PYOPERON_SYMBOLS, n_threads=1,
                                  random_state=options["seed"], **extra)

    def formula() -> Any:
        return from_tree(estimator.model_, list(estimator.variables_)).to_sympy()

    return estimator, formula


def _make_gplearn(n_variables: int, options: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    from gplearn.functions import make_function
    from gplearn.genetic import SymbolicRegressor

    exp = make_function(function=_protected_exp, name="exp", arity=1, wrap=False)
    settings = GPLEARN_SETTINGS | {"function_set": [
        exp if f == "exp" else f for f in GPLEARN_SETTINGS["function_set"]]}
    estimator = SymbolicRegressor(**settings, n_jobs=1, random_state=options["seed"])
    return estimator, lambda: gplearn_to_sympy(estimator._program.program, n_variables)


# per method: (n_variables, options) -> (an unfitted estimator, the fitted formula as sympy)
BUILDERS: dict[str, Callable[..., tuple[Any, Callable[[], Any]]]] = {
    "chatsr": _make_chatsr, "gplearn": _make_gplearn,
    "chatsr-nomodel": functools.partial(_make_chatsr, with_model=False),
    "chatsr-oneshot": functools.partial(_make_chatsr, max_rounds=0),
    "chatsr-units": _make_chatsr,
    "pyoperon": _make_pyoperon, "pyoperon-budget": functools.partial(_make_pyoperon, budget=True)}
# the module each method's fits import, for a process start method to import ahead of them
METHOD_MODULES = {"gplearn": "gplearn.genetic", "pyoperon": "pyoperon.sklearn",
                  "pyoperon-budget": "pyoperon.sklearn"} | {
                      m: "chatsr.estimator" for m in METHODS if m.startswith("chatsr")}


def gplearn_to_sympy(program: Sequence[Any], n_variables: int) -> sympy.Expr:
    """A gplearn program (preorder list of functions, feature indices and floats) as sympy.

    Feature ``i`` becomes ``x{i+1}``; the protected ``div``, ``log`` and ``sqrt`` are read as
    plain division, log and square root (SRBench's reading), so formulas compare on their
    mathematical meaning.

    >>> from gplearn.functions import add2, mul2, sqrt1  # doctest: +SKIP
    >>> gplearn_to_sympy([add2, mul2, 0, 1, sqrt1, 0.5], 2)  # doctest: +SKIP
    x1*x2 + 0.707106781186548
    """
    import sympy

    symbols = sympy.symbols(f"x1:{n_variables + 1}", real=True)
    functions = {"add": sympy.Add, "sub": lambda a, b: a - b, "mul": sympy.Mul,
                 "div": lambda a, b: a / b, "sqrt": sympy.sqrt, "log": sympy.log,
                 "exp": sympy.exp, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
                 "neg": lambda a: -a, "inv": lambda a: 1 / a, "abs": sympy.Abs,
                 "max": sympy.Max, "min": sympy.Min}
    nodes = iter(program)

    def build() -> sympy.Expr:
        node = next(nodes)
        if hasattr(node, "arity"):
            return functions[node.name](*(build() for _ in range(node.arity)))
        if isinstance(node, (int, np.integer)):
            return symbols[int(node)]
        return sympy.Float(float(node))

    return build()
