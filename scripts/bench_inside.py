"""Constants inside formulas of one column: how many laws ``1.7 * g(a * x) + 0.4`` the
enumeration finds (`chatsr.search.enumeration.short_formulas`), over 20 kinds of ``g``, three
random ranges of ``x`` and values of ``a`` each (drawn so that ``a * x`` stays where ``g`` is
real). A law counts as found when one of the formulas returned has R² within 1e-10 of 1 on
the data; the time is that of one call. No model, no clock: the same numbers on any machine.

    python scripts/bench_inside.py [--trials 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from chatsr.search.enumeration import short_formulas

# name, g, where a*x must stay: None anywhere, "above 1", "below 1" or "positive"
LAWS = [
    ("sqrt(1 - 1/x**2)", lambda x: np.sqrt(1 - 1 / x**2), "above 1"),
    ("sqrt(1 - x**2)", lambda x: np.sqrt(1 - x**2), "below 1"),
    ("1/sqrt(1 - x**2)", lambda x: 1 / np.sqrt(1 - x**2), "below 1"),
    ("x/sqrt(x**2 - 1)", lambda x: x / np.sqrt(x**2 - 1), "above 1"),
    ("sin(x)**2", lambda x: np.sin(x) ** 2, None),
    ("exp(-x**2)", lambda x: np.exp(-x**2), None),
    ("1/(exp(x) - 1)", lambda x: 1 / np.expm1(x), "positive"),
    ("cos(x)/x", lambda x: np.cos(x) / x, "positive"),
    ("1/(1 + x**2)", lambda x: 1 / (1 + x**2), None),
    ("log(1 + x**2)", lambda x: np.log1p(x**2), None),
    ("exp(-1/x)", lambda x: np.exp(-1 / x), "positive"),
    ("sin(x)/x", lambda x: np.sin(x) / x, "positive"),
    ("sqrt(1 + x**2)", lambda x: np.sqrt(1 + x**2), None),
    ("x*exp(-x)", lambda x: x * np.exp(-x), None),
    ("1/(1 + exp(x))", lambda x: 1 / (1 + np.exp(x)), None),
    ("log(x - 1)", lambda x: np.log(x - 1), "above 1"),
    ("1/(1 - x)", lambda x: 1 / (1 - x), "below 1"),
    ("sqrt(x**2 - 1)", lambda x: np.sqrt(x**2 - 1), "above 1"),
    ("cos(x)**2", lambda x: np.cos(x) ** 2, None),
    ("exp(-x)*sin(x)", lambda x: np.exp(-x) * np.sin(x), None),
]


def _scale(rng: np.random.Generator, low: float, high: float, where: str | None) -> float:
    """A value of ``a`` that keeps ``a * x`` for ``x`` in [low, high] where ``g`` is real."""
    if where == "above 1":
        return 1.05 * rng.uniform(1.0, 1.5) / low
    if where == "below 1":
        return 0.95 * rng.uniform(0.6, 1.0) / high
    return rng.uniform(0.3, 3.0) / np.sqrt(low * high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="ranges per kind of law")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    found, seconds = 0, []
    for name, g, where in LAWS:
        for _ in range(args.trials):
            low = 10 ** rng.uniform(-1.5, 1.0)
            high = low * rng.uniform(2.0, 8.0)
            a = _scale(rng, low, high, where)
            x = np.sort(rng.uniform(low, high, 200))[:, None]
            y = 1.7 * g(a * x[:, 0]) + 0.4
            start = time.perf_counter()
            formulas = short_formulas(x, y)
            seconds.append(time.perf_counter() - start)
            with np.errstate(all="ignore"):
                hit = any(np.isfinite(v := e(x)).all() and 1 - np.corrcoef(v, y)[0, 1] ** 2
                          < 1e-10 for e in formulas)
            found += hit
            print(f"{name:18s} x in [{low:.3g}, {high:.3g}], a = {a:.3g}: "
                  f"{'found' if hit else '-'}", flush=True)
    print(f"found {found} of {len(seconds)}; {np.mean(seconds):.2f} s a call "
          f"(slowest {max(seconds):.2f} s)")


if __name__ == "__main__":
    main()
