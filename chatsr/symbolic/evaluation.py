"""Compile a preorder skeleton once into vectorised numpy code: values, and the Jacobian with
respect to its constants (forward mode), which is what BFGS needs.

Never sympy substitution per point: one straight-line numpy statement per node, cached per
skeleton.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from chatsr.symbolic.operators import CONSTANT, INTEGER, OPERATORS

__all__ = ["compile_skeleton"]


@functools.lru_cache(maxsize=4096)
def compile_skeleton(names: tuple[str, ...], with_jacobian: bool) -> Callable:
    """Compile a skeleton into ``f(X, c) -> y`` or ``f(X, c) -> (y, dy/dc)``.

    Straight-line numpy code with one statement per node, built once per skeleton; the Jacobian
    is propagated forward, which is cheap because skeletons have few constants.
    """
    lines = ["def f(X, c):", "    n = X.shape[0]", "    ones = np.ones(n)"]
    if with_jacobian:
        lines.append("    k = c.shape[0]")
    counter = {"v": 0, "c": 0}
    pos = 0

    def fresh() -> str:
        counter["v"] += 1
        return f"v{counter['v']}"

    def visit() -> tuple[str, str | None]:
        """Emit the node at ``pos``; return the names of its value and Jacobian (None = 0)."""
        nonlocal pos
        name, pos = names[pos], pos + 1
        out = fresh()
        if name in OPERATORS:
            op = OPERATORS[name]
            args = [visit() for _ in range(op.arity)]
            lines.append(f"    {out} = {op.numpy.format(*(a for a, _ in args))}")
            if not with_jacobian:
                return out, None
            terms = []
            for (_, jac), deriv in zip(args, op.derivative, strict=True):
                if jac is None:
                    continue
                d = deriv.format(*(a for a, _ in args), out=out)
                if d in ("1.0", "-1.0"):  # sums and differences: no broadcast needed
                    terms.append(jac if d == "1.0" else f"-{jac}")
                else:
                    terms.append(f"({d})[:, None] * {jac}")
            if not terms:
                return out, None
            jac_out = f"j{out}"
            lines.append(f"    {jac_out} = " + " + ".join(terms))
            return out, jac_out
        if name == CONSTANT:
            i = counter["c"]
            counter["c"] += 1
            lines.append(f"    {out} = c[{i}] * ones")
            if with_jacobian:
                lines.append(f"    j{out} = np.zeros((n, k)); j{out}[:, {i}] = 1.0")
                return out, f"j{out}"
            return out, None
        if m := INTEGER.fullmatch(name):
            lines.append(f"    {out} = {float(m.group(1))} * ones")
        else:
            lines.append(f"    {out} = X[:, {int(name[1:]) - 1}]")
        return out, None

    root, jac = visit()
    if with_jacobian:
        lines.append(f"    return {root}, {jac if jac else 'np.zeros((n, k))'}")
    else:
        lines.append(f"    return {root}")
    namespace = {"np": np}
    exec(compile("\n".join(lines), f"<expression {' '.join(names)}>", "exec"), namespace)
    return namespace["f"]

