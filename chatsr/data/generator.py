"""Synthetic training samples: random formulas, data drawn from them, ChatSR's JSON format.

How a sample is made, and why it differs from the reference generator (SPEC.md):

1. **Formula skeleton.** ``k ~ U{1..max_vars}`` variables and a length ``m`` uniform over the
   feasible lengths in ``[min_length, max_length]``; then a tree shape drawn *uniformly* among the
   unary–binary shapes with ``m`` nodes and at least ``k`` leaves, by counting completions as
   Lample & Charton (2019) do with D(e, n) (their count is over operators, ours over all nodes
   and with the leaf condition, so no shape is rejected). Operators are drawn by weight within
   each arity; leaves are ``x1..xk`` (each at least once), ``C`` placeholders and, rarely, the
   integers ``const_1..5``.
2. **Guards.** Cheap structural rules (no operator of constants only, no inverse pairs such as
   ``exp(log(·))``, no ``a - a``), then the canonical key (:mod:`chatsr.symbolic.skeletons`):
   the key must still contain every variable (``x2 - x2`` cancels) and as many constants as the
   tree (``C*C*x`` has one), must not be a benchmark skeleton
   (:class:`~chatsr.symbolic.skeletons.ExclusionSet`) and, with ``unique``, must not repeat.
3. **Data.** Each variable gets its own support (symmetric, positive or log-uniform ranges, of
   many scales); constants are drawn per sample (log-uniform magnitude, random sign, sometimes
   a small integer); 10–800 points log-uniform. Targets with too many non-finite values, huge
   values or no variation are redrawn, then the formula is dropped; a few non-finite points are
   dropped. Optional Gaussian noise relative to std(y).
4. **Canonical target** (``canonical=True``, the default): the formula and its constants are
   rewritten into one preorder spelling (:func:`chatsr.symbolic.canonical.canonical`), checked
   against the drawn targets, which are computed again from it.
5. **Units** (w.p. ``units_prob``): SI units for every variable and the target that make the
   formula dimensionally consistent, solved from its linear conditions
   (:func:`chatsr.symbolic.units.linear_dimensions`); formulas with none go without.
6. **Prompt.** The human turn may state true facts about the target (:mod:`chatsr.data.prompts`)
   and states the units when the sample has them.

A share ``science_weight`` of the formulas comes from a science-shaped prior instead of step 1
(:class:`chatsr.data.trees._ScienceSampler`): power laws with rational exponents of up to
``science_max_vars`` variables, sums of a few, functions of ratios (``exp(-a/b)``,
``1/sqrt(1 - v**2/c**2)``) and norms, on positive supports; the same guards and exclusions
apply.

Randomness is seeded per chunk of ``CHUNK_SIZE`` samples (``default_rng([seed, chunk])``), and
chunks are merged in order, so the output depends on the seed and never on ``workers``.

The parts: :mod:`chatsr.data.generator_config` (the settings), :mod:`chatsr.data.trees` (step 1,
the structural guards and the science-shaped prior), :mod:`chatsr.data.sampler` (steps 2 to 6);
this module runs them in seeded chunks.

>>> samples = generate_samples(3, max_vars=2, num_points=20, seed=0, progress=False)
>>> [s["id"] for s in samples], samples[0]["num_points"], len(samples[0]["data_points"][0])
(['sr_0', 'sr_1', 'sr_2'], 20, 11)
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from chatsr.data.generator_config import DEFAULT_OPERATORS, GeneratorConfig
from chatsr.data.sampler import _sampler

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_OPERATORS",
    "GeneratorConfig",
    "generate_samples",
    "iter_samples",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 32  # samples per seeded chunk: the unit of work of one process
_MAX_TRIES = 50 * CHUNK_SIZE  # candidates per chunk before it returns short
_MAX_STALE = 20  # chunks in a row without a new sample before generation gives up


def _chunk(config: GeneratorConfig, seed: int, chunk: int, unique: bool
           ) -> tuple[list[tuple[str, dict]], Counter]:
    """``CHUNK_SIZE`` samples (with their skeleton keys) from their own seeded stream, or
    fewer if ``_MAX_TRIES`` candidates do not give them."""
    sampler = _sampler(config)
    rng = np.random.default_rng([seed, chunk])
    out: list[tuple[str, dict]] = []
    seen: set[str] | None = set() if unique else None
    stats: Counter = Counter()
    with np.errstate(all="ignore"):
        for _ in range(_MAX_TRIES):  # fewer samples only where the settings allow few formulas
            result = sampler.sample(rng, seen)
            if isinstance(result, str):
                stats[result] += 1
                continue
            out.append(result)
            if len(out) == CHUNK_SIZE:
                break
    stats["accepted"] += len(out)
    return out, stats


def _too_few(found: int, stats: Counter) -> RuntimeError:
    rejected = {k: v for k, v in stats.most_common() if k != "accepted"}
    return RuntimeError(f"only {found} sample(s) after {sum(stats.values())} candidate formulas "
                        f"(rejected: {rejected}); ask for fewer samples, allow longer formulas "
                        f"or more operators, or allow repeated skeletons (unique=False)")


def _chunks(config: GeneratorConfig, seed: int, chunk_ids: Iterable[int], unique: bool,
            workers: int) -> Iterator[tuple[list[tuple[str, dict]], Counter]]:
    """Chunk results in the order of ``chunk_ids``, computed by ``workers`` processes."""
    if workers == 1:
        for chunk in chunk_ids:
            yield _chunk(config, seed, chunk, unique)
        return
    ids = iter(chunk_ids)
    # Not multiprocessing.Pool: a consumer that stops early left it to terminate(), which can
    # deadlock on the task queue's lock (seen in CI). The executor cancels what has not started
    # and waits for the chunks in progress (each under a second) instead.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context())
    try:
        pending = deque(pool.submit(_chunk, config, seed, chunk, unique)
                        for chunk in itertools.islice(ids, 2 * workers))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(_chunk, config, seed, chunk, unique)
                           for chunk in itertools.islice(ids, 1))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _resolve(config: GeneratorConfig | None, options: dict[str, Any]) -> GeneratorConfig:
    config = config or GeneratorConfig()
    unknown = set(options) - {f.name for f in dataclasses.fields(GeneratorConfig)}
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}: the options are the "
                        f"fields of GeneratorConfig")
    return dataclasses.replace(config, **options) if options else config


def _check_count(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _finish(record: dict, index: int) -> dict:
    """Give a record from :func:`_chunk` its id and JSON-ready data points."""
    record["id"] = f"sr_{index}"
    record["data_points"] = record["data_points"].tolist()
    return record


def generate_samples(num_samples: int, config: GeneratorConfig | None = None, *, seed: int = 0,
                     workers: int = 1, unique: bool = True, progress: bool = True,
                     **options: Any) -> list[dict]:
    """Generate ``num_samples`` samples in ChatSR's JSON format (with ``constants``).

    Parameters
    ----------
    num_samples
        How many samples.
    config
        A :class:`GeneratorConfig`; ``options`` override its fields, e.g. ``max_length=15,
        min_length=1, max_vars=3, max_dims=10, num_points=(10, 800), noise=0.0,
        operators=None, exclude="benchmarks"``.
    seed
        The output depends on the seed only, not on ``workers``.
    workers
        Processes generating chunks of ``CHUNK_SIZE`` samples in parallel.
    unique
        Every skeleton at most once (by :func:`chatsr.symbolic.skeletons.skeleton_key`), so no
        skeleton is in two splits.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of dict
        Samples with ids ``sr_0, sr_1, …`` in random order.

    Examples
    --------
    >>> from chatsr.symbolic.expressions import Expression
    >>> s = generate_samples(1, max_vars=1, num_points=5, seed=1, progress=False)[0]
    >>> X, y = np.array(s["data_points"])[:, :1], np.array(s["data_points"])[:, -1]
    >>> bool(np.allclose(Expression.parse(s["expression_tokens"])(X, s["constants"]), y))
    True
    """
    _check_count("num_samples", num_samples, 0)
    _check_count("workers", workers, 1)
    _check_count("seed", seed, 0)
    config = _resolve(config, options)
    _sampler(config)  # configuration errors surface here, not in a worker
    samples: list[dict] = []
    seen: set[str] = set()
    stats: Counter = Counter()
    stale = 0  # consecutive chunks that added nothing new
    with tqdm(total=num_samples, disable=not progress, desc="generating", unit="sample") as bar:
        chunks = _chunks(config, seed, itertools.count(), unique, workers)
        try:
            while len(samples) < num_samples:
                pairs, chunk_stats = next(chunks)
                stats += chunk_stats
                before = len(samples)
                for key, record in pairs:
                    if unique and key in seen:
                        stats["duplicate"] += 1
                        continue
                    seen.add(key)
                    samples.append(_finish(record, len(samples)))
                    if len(samples) == num_samples:
                        break
                bar.update(len(samples) - before)
                stale = 0 if len(samples) > before else stale + 1
                if stale == _MAX_STALE:
                    raise _too_few(len(samples), stats)
        finally:
            chunks.close()
    logger.info("generated %d samples; rejected candidates: %s", len(samples),
                {k: v for k, v in stats.items() if k != "accepted"})
    return samples


def iter_samples(seed: int = 0, config: GeneratorConfig | None = None, *,
                 shard: tuple[int, int] = (0, 1), **options: Any) -> Iterator[dict]:
    """An endless stream of samples for on-the-fly training; it never repeats a sample.

    Shard ``(i, n)`` yields chunks ``i, i+n, i+2n, …`` of the seed's stream, so ``n`` data-loader
    workers each with their own ``i`` together see every chunk once. Skeletons may recur (the
    short ones must), with fresh constants and points; ids are ``sr_<position in the stream>``.

    >>> stream = iter_samples(seed=3, max_vars=2, num_points=(10, 20))
    >>> [next(stream)["id"] for _ in range(2)]
    ['sr_0', 'sr_1']
    """
    _check_count("seed", seed, 0)
    index, count = shard
    if not (isinstance(count, int) and count >= 1 and isinstance(index, int)
            and 0 <= index < count):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    config = _resolve(config, options)
    for chunk in itertools.count(index, count):
        pairs, stats = _chunk(config, seed, chunk, unique=False)
        if not pairs:
            raise _too_few(0, stats)
        for j, (_, record) in enumerate(pairs):
            yield _finish(record, chunk * CHUNK_SIZE + j)
