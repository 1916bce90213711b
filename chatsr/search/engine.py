"""The search engine: Operon's genetic programming (`pyoperon`), to which formulas can be added.

Operon evaluates and evolves tens of thousands of formulas a second in C++, fitting each one's
coefficients by Levenberg–Marquardt; a population of formulas is selected on two objectives
(NSGA-II: R² after linear scaling, and length), so each run leaves a Pareto front of accuracy
against size. `Engine` runs it epoch by epoch so that the model's formulas can join the
population between epochs (`Engine.add`): they compete and breed with the engine's own.

Formulas cross between chatsr's preorder (`chatsr.symbolic.expressions.Expression`) and
Operon's trees without loss (`to_tree`, `from_tree`). Operon has every operator of ours
except four, written with fixed (never optimised) constants and read back as ours:
``neg a = -1 * a``, ``inv a = 1 / a``, ``pow3 a = a ^ 3``, the integers ``const_k`` (1..5) a
fixed constant ``k``; ``pow2`` is Operon's ``square``. Operon weighs each variable
(``w * x``); a weight of 1 reads back as the bare variable, another as ``C * x``. Operon
evaluates in single precision: the search refits what it reports in double
(`chatsr.search.tidy.polish`).

>>> import numpy as np
>>> X = np.random.default_rng(0).uniform(1, 5, size=(100, 2))
>>> y = X[:, 0] * np.sin(X[:, 1]) + X[:, 0]
>>> engine = Engine(X, y, seed=0)
>>> engine.add([Expression.parse("+ * x1 sin x2 x1")])
1
>>> engine.front()[-1].infix()
'x1*sin(x2) + x1'
>>> engine.evolve(2)
>>> bool(np.allclose(engine.front()[-1](X), y))
True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyoperon as op

from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import CONSTANT, INTEGER, VARIABLE, arity

__all__ = ["CORE_OPERATORS", "ENGINE_OPERATORS", "Engine", "EngineSettings", "from_tree", "to_tree"]

# our operators that are Operon's own; neg, inv and pow3 are written with fixed constants
ENGINE_OPERATORS: dict[str, op.NodeType] = {
    "add": op.NodeType.Add, "sub": op.NodeType.Sub, "mul": op.NodeType.Mul,
    "div": op.NodeType.Div, "pow": op.NodeType.Pow, "sin": op.NodeType.Sin,
    "cos": op.NodeType.Cos, "tan": op.NodeType.Tan, "log": op.NodeType.Log,
    "exp": op.NodeType.Exp, "sqrt": op.NodeType.Sqrt, "abs": op.NodeType.Abs,
    "asin": op.NodeType.Asin, "acos": op.NodeType.Acos, "atan": op.NodeType.Atan,
    "sinh": op.NodeType.Sinh, "cosh": op.NodeType.Cosh, "tanh": op.NodeType.Tanh,
    "pow2": op.NodeType.Square,
}
# what the engine builds with when nothing says otherwise: the operators of most laws of
# physics (SRBench's GP set with square and sqrt); the rest join when the model asks for them
CORE_OPERATORS = ("add", "sub", "mul", "div", "pow2", "sqrt", "exp", "log", "sin", "cos")
_OURS = {int(kind): name for name, kind in ENGINE_OPERATORS.items()}
# ours = engine operator with a fixed constant as first (or second) operand
_WRITTEN = {"neg": ("mul", -1.0, 0), "inv": ("div", 1.0, 0), "pow3": ("pow", 3.0, 1)}
_READ = {(op_name, value, side): name for name, (op_name, value, side) in _WRITTEN.items()}
_READ[("pow", 2.0, 1)] = "pow2"
SEED_ITERATIONS = 50  # Levenberg–Marquardt steps for a formula added with fit=True
# R² is the engine's first objective, stored negated (lower is better)
_R2, _LENGTH = 0, 1


@dataclass(frozen=True)
class EngineSettings:
    """How the engine evolves: sizes, limits and effort per formula.

    ``population_size`` formulas breed ``population_size`` offspring a generation; formulas
    have at most ``max_length`` nodes and ``max_depth`` levels; each offspring's coefficients
    get ``local_iterations`` Levenberg–Marquardt steps; ``n_threads`` evaluate in parallel.
    """

    population_size: int = 500
    max_length: int = 40
    max_depth: int = 12
    local_iterations: int = 10
    tournament_size: int = 3
    n_threads: int = 1


def to_tree(expression: Expression, hashes: Sequence[int]) -> op.Tree:
    """``expression`` as an Operon tree; ``hashes[k-1]`` is the engine's hash of ``x_k``.

    The variables keep weight 1 (not optimised) and the constants their values (``C``
    without a value starts at 1), so the tree computes what ``expression`` does.

    >>> tree = to_tree(Expression.parse("neg inv pow3 x1"), [7])
    >>> from_tree(tree, [7]).names
    ('neg', 'inv', 'pow3', 'x1')
    """
    names = expression.names
    ends = _subtree_ends([arity(n) for n in names])
    values = iter(expression.constants or [1.0] * expression.n_constants)
    after: dict[int, list[float]] = {}  # fixed second operands, written where a subtree ends
    nodes: list[op.Node] = []  # the engine's preorder
    for i, name in enumerate(names):
        for fixed in reversed(after.pop(i, [])):  # inner subtrees close first
            nodes.append(_constant(fixed, optimize=False))
        if name in _WRITTEN:
            engine_name, fixed, side = _WRITTEN[name]
            nodes.append(op.Node(ENGINE_OPERATORS[engine_name]))
            if side == 0:
                nodes.append(_constant(fixed, optimize=False))
            else:
                after.setdefault(ends[i + 1], []).append(fixed)
        elif name in ENGINE_OPERATORS:
            nodes.append(op.Node(ENGINE_OPERATORS[name]))
        elif name == CONSTANT:
            nodes.append(_constant(next(values), optimize=True))
        elif match := INTEGER.fullmatch(name):
            nodes.append(_constant(float(match.group(1)), optimize=False))
        else:
            variable = op.Node.Variable(1.0)
            variable.HashValue = variable.CalculatedHashValue = hashes[
                int(VARIABLE.fullmatch(name).group(1)) - 1]
            variable.Optimize = False
            nodes.append(variable)
    for fixed in reversed(after.pop(len(names), [])):
        nodes.append(_constant(fixed, optimize=False))
    # Operon stores a tree in postfix with the last child first: the reverse of preorder
    return op.Tree(list(reversed(nodes))).UpdateNodes()


def from_tree(tree: op.Tree, hashes: Sequence[int]) -> Expression:
    """An Operon tree as an `Expression` with its constants (the inverse of `to_tree`).

    >>> tree = op.InfixParser.Parse("2.5 * sin(X1) + X2 ^ 3", {"X1": 1, "X2": 2})
    >>> from_tree(tree, [1, 2]).infix()
    'x2**3.0 + 2.5*sin(x1)'
    """
    index = {h: k for k, h in enumerate(hashes, 1)}
    nodes = list(reversed(tree.Nodes))  # preorder
    ends = _subtree_ends([node.Arity for node in nodes])
    names: list[str] = []
    constants: list[float] = []
    skip: set[int] = set()
    for i, node in enumerate(nodes):
        if i in skip:
            continue
        if node.IsConstant:
            k = node.Value
            if not node.Optimize and k == int(k) and 1 <= k <= 5:
                names.append(f"const_{int(k)}")
            else:
                names.append(CONSTANT)
                constants.append(float(k))
        elif node.IsVariable:
            if node.Value != 1.0:
                names += ["mul", CONSTANT]
                constants.append(float(node.Value))
            names.append(f"x{index[node.HashValue]}")
        else:
            name = _OURS.get(int(node.Type))
            if name is None:
                raise ValueError(f"the engine's {node.Name!r} is not a chatsr operator")
            if node.Arity == 2:
                first, second = i + 1, ends[i + 1]
                for side, operand in ((0, first), (1, second)):
                    fixed = nodes[operand]
                    ours = _READ.get((name, fixed.Value, side)) if (
                        fixed.IsConstant and not fixed.Optimize) else None
                    if ours is not None:
                        name = ours
                        skip.add(operand)
                        break
            names.append(name)
    return Expression(names, constants)


def _subtree_ends(arities: Sequence[int]) -> list[int]:
    """For each position of a preorder, the position just past its subtree (no recursion)."""
    ends = [0] * len(arities)
    stack: list[int] = []
    for i in range(len(arities) - 1, -1, -1):
        end = i + 1
        for _ in range(arities[i]):
            end = stack.pop()
        ends[i] = end
        stack.append(end)
    return ends


def _constant(value: float, *, optimize: bool) -> op.Node:
    node = op.Node.Constant(float(value))
    node.Optimize = optimize
    return node


class Engine:
    """One run of Operon's NSGA-II on ``X`` (n, d), ``y`` (n,), advanced by `evolve`.

    ``operators`` (None: every one Operon has) are those the engine may build with, less
    those it lacks (`ENGINE_OPERATORS`); ``frequencies`` weigh how often each is drawn when
    a formula is created or mutated (default 1 each: a weight of 4 is four times as likely;
    0 leaves it out), which is how the model steers it. The same ``seed`` gives the same run
    on one thread.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, *, operators: Collection[str] | None = None,
                 frequencies: Mapping[str, int] | None = None,
                 settings: EngineSettings | None = None, seed: int = 0):
        self.settings = settings or EngineSettings()
        data = np.asfortranarray(np.column_stack([X, y]), dtype=np.float64)
        self._dataset = op.Dataset(data)
        variables = sorted(self._dataset.Variables, key=lambda v: v.Index)
        self.hashes = [v.Hash for v in variables[:-1]]
        problem = op.Problem(self._dataset)
        problem.TrainingRange = op.Range(0, self._dataset.Rows)
        problem.TestRange = op.Range(0, self._dataset.Rows)
        problem.Target, problem.InputHashes = variables[-1], self.hashes
        self._variables = variables  # Operon keeps pointers into these
        frequencies = dict(frequencies or {})
        allowed = [n for n in (ENGINE_OPERATORS if operators is None else operators)
                   if n in ENGINE_OPERATORS and frequencies.get(n, 1) > 0]
        config = int(op.NodeType.Constant) | int(op.NodeType.Variable)
        for name in allowed:
            config |= int(ENGINE_OPERATORS[name])
        problem.ConfigurePrimitiveSet(config)
        for name, weight in frequencies.items():
            if name in allowed:
                problem.PrimitiveSet.SetFrequency(int(ENGINE_OPERATORS[name]), int(weight))
        self._problem = problem
        self._seed = int(seed)
        self._rng = op.RandomGenerator(np.uint64(seed))
        self._build()
        self._individuals: list[op.Individual] | None = None
        self.generations = 0

    def _build(self) -> None:
        """The GP's parts; Operon holds pointers to them, so they live as long as the engine."""
        s, problem = self.settings, self._problem
        pset = self._pset = problem.PrimitiveSet  # a copy, which Operon parts point to
        self._dtable = op.DispatchTable()
        creator = op.BalancedTreeCreator(pset, self.hashes, 0.0)
        coefficients = op.NormalCoefficientInitializer()
        coefficients.ParameterizeDistribution(0, 1)
        self._evaluators = [op.Evaluator(problem, self._dtable, op.R2(), True),
                            op.LengthEvaluator(problem)]
        evaluator = op.MultiEvaluator(problem)
        for e in self._evaluators:
            evaluator.Add(e)
        evaluator.Budget = 10**12
        comparison = op.CrowdedComparison()
        selector = op.TournamentSelector(comparison)
        selector.TournamentSize = s.tournament_size
        one_point = op.NormalOnePointMutation()
        one_point.ParameterizeDistribution(0, 1)
        multi_point = op.NormalMultiPointMutation()
        multi_point.ParameterizeDistribution(0, 1)
        mutations = [one_point, multi_point, op.ChangeVariableMutation(self.hashes),
                     op.ChangeFunctionMutation(pset),
                     op.ReplaceSubtreeMutation(creator, coefficients, s.max_depth, s.max_length),
                     op.InsertSubtreeMutation(creator, coefficients, s.max_depth, s.max_length),
                     op.RemoveSubtreeMutation(pset)]
        mutation = op.MultiMutation()
        for m in mutations:
            mutation.Add(m, 1.0)
        optimizer = op.LMOptimizer(self._dtable, problem, s.local_iterations, 0)
        local = op.CoefficientOptimizer(optimizer)
        crossover = op.SubtreeCrossover(0.9, s.max_depth, s.max_length)
        generator = op.BasicOffspringGenerator(evaluator, crossover, mutation, selector,
                                               selector, local)
        initializer = op.UniformLengthTreeInitializer(creator)
        initializer.ParameterizeDistribution(pset.FunctionArityLimits()[0] + 1,
                                             min(10, s.max_length))
        initializer.MinDepth, initializer.MaxDepth = 1, 1000
        reinserter = op.KeepBestReinserter(comparison)
        # seeds come with constants of 1, farther from their optimum than offspring's
        seed_optimizer = op.LMOptimizer(self._dtable, problem, SEED_ITERATIONS, 0)
        self._seed_fitter = op.CoefficientOptimizer(seed_optimizer)
        # the parts each algorithm is built from, named; the rest only kept alive
        self._algorithm_parts = (initializer, coefficients, generator, reinserter)
        self._alive = (seed_optimizer, creator, comparison, selector, mutations, mutation,
                       optimizer, local, crossover)
        self._evaluator = evaluator

    def evolve(self, generations: int) -> None:
        """Run ``generations`` more generations (the first call also creates the population)."""
        s = self.settings
        config = op.GeneticAlgorithmConfig(
            generations=generations, max_evaluations=10**12, local_iterations=s.local_iterations,
            population_size=s.population_size, pool_size=s.population_size, p_crossover=1.0,
            p_mutation=0.25, p_local=1.0, p_lamarck=1.0, epsilon=1e-5, seed=self._seed,
            max_time=10**7)
        sorter = op.RankSorter()
        algorithm = op.NSGA2Algorithm(config, self._problem, *self._algorithm_parts, sorter)
        warm = self._individuals is not None
        if warm:
            algorithm.RestoreIndividuals(op.IndividualCollection(self._individuals))
            algorithm.IsFitted = True
        algorithm.Run(self._rng, None, s.n_threads, warm)
        self._individuals = list(algorithm.Individuals)
        self.generations += generations

    def add(self, expressions: Sequence[Expression], *, fit: bool = False) -> int:
        """Put ``expressions`` into the population in place of its worst members (before the
        first `evolve`, into a random population after its first generation); returns how
        many went in (those of at most ``max_length`` nodes, with variables the data have).
        ``fit``: their constants are first fitted by Levenberg–Marquardt (``C`` without a
        value starts at 1)."""
        trees = []
        for expression in expressions:
            if expression.variables and expression.variables[-1] > len(self.hashes):
                continue
            tree = to_tree(expression, self.hashes)
            if tree.Length > self.settings.max_length:
                continue
            if fit and expression.n_constants:
                tree, _ = self._seed_fitter(self._rng, tree)
            trees.append(tree)
        if not trees:
            return 0
        if self._individuals is None:  # a random population, evaluated, for these to join
            self.evolve(1)
        population = self._individuals[:self.settings.population_size]
        worst = sorted(range(len(population)), key=lambda i: -population[i].GetFitness(_R2))
        for i, tree in zip(worst, trees[:len(population)], strict=False):
            individual = op.Individual(2)
            individual.Genotype = tree
            for k, value in enumerate(self._evaluator(self._rng, individual)):
                individual.SetFitness(float(value), k)
            self._individuals[i] = individual
        return min(len(trees), len(population))

    def front(self) -> list[Expression]:
        """The population's Pareto front of R² against length, shortest first, each formula
        with the linear scaling that its R² assumes (``C * f + C`` where it changes ``f``)."""
        if self._individuals is None:
            return []
        rows = op.Range(0, self._dataset.Rows)
        target = self._dataset.Values[:, -1]
        out = []
        for tree in self._front_trees():
            values = np.asarray(op.Evaluate(self._dtable, tree, self._dataset, rows),
                                dtype=np.float64)
            if not np.isfinite(values).all():
                continue
            scale, offset = op.FitLeastSquares(values, np.asarray(target, dtype=np.float64))
            expression = from_tree(tree, self.hashes)
            names, constants = list(expression.names), list(expression.constants or ())
            # single precision: a scale within 1e-5 of 1 or an offset that small is none
            if abs(scale - 1.0) > 1e-5:
                names, constants = ["mul", CONSTANT, *names], [scale, *constants]
            if abs(offset) > 1e-5 * max(1.0, float(np.std(target))):
                names, constants = ["add", CONSTANT, *names], [offset, *constants]
            out.append(Expression(names, constants))
        return out

    def _front_trees(self) -> list[op.Tree]:
        """The non-dominated trees: each more accurate than every shorter one. Of trees as long
        and as accurate (to single precision: R² within 1e-7), the one with the fewest
        coefficients (``x1*x2`` rather than ``(0.4*x1)*(2.5*x2)``)."""
        population = self._individuals[:self.settings.population_size]  # then offspring
        scored = sorted((ind.GetFitness(_LENGTH), round(ind.GetFitness(_R2), 7),
                         ind.Genotype.CoefficientsCount, k) for k, ind in enumerate(population))
        front, best = [], np.inf
        for _, error, _, k in scored:
            if error < best:
                front.append(population[k].Genotype)
                best = error
        return front
