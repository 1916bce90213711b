"""Training data as an indexable stream: sample ``i`` of a run is fixed by the seed alone.

Distributed training and exact resumption both follow from that: global batch ``s`` holds
samples ``s*B .. (s+1)*B - 1``, rank ``r`` of ``W`` takes its contiguous ``B/W`` of them, and a
run resumed at step ``s`` reads the same samples as the uninterrupted run. The data position is
the step number; nothing else needs saving.

Two sources: a file from ``chatsr generate`` (reshuffled every epoch with a seeded permutation),
or the generator itself, so a long run never sees the same sample twice.

>>> source = GeneratedSource(seed=0, max_vars=1, num_points=(10, 20))
>>> source[3]["id"] == source[3]["id"], source[3]["id"]
(True, 'sr_3')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from chatsr.data.generator import CHUNK_SIZE, GeneratorConfig, iter_samples
from chatsr.data.records import read_samples
from chatsr.model.processing import ChatSRProcessor

__all__ = ["SPARSE_POINTS", "FileSource", "GeneratedSource", "SampleSource", "TrainingBatches",
           "open_source"]

SPARSE_POINTS = 2  # what a sparse record keeps: a scale, not a shape


class SampleSource(Protocol):
    """Anything that returns sample ``i`` (a ChatSR JSON record) for every ``i >= 0``."""

    def __getitem__(self, index: int) -> dict: ...


class FileSource:
    """The records of a samples file, read in a fresh seeded order every epoch."""

    def __init__(self, path: str | Path, *, seed: int = 0):
        self.records = read_samples(path)
        if not self.records:
            raise ValueError(f"{path} holds no samples")
        self.seed = seed
        self._epoch, self._order = -1, np.arange(0)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        epoch, offset = divmod(index, len(self.records))
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self))
        return self.records[self._order[offset]]


class GeneratedSource:
    """Samples made on demand by `chatsr.data.generator.iter_samples` (one chunk cached)."""

    def __init__(self, *, seed: int = 0, config: GeneratorConfig | None = None, **options: Any):
        self.seed = seed
        self.config = GeneratorConfig(**options) if config is None else config
        self._chunk, self._records = -1, []

    def __getitem__(self, index: int) -> dict:
        chunk, offset = divmod(index, CHUNK_SIZE)
        if chunk != self._chunk:
            stream = iter_samples(self.seed, self.config, shard=(chunk, chunk + 1))
            self._records = [next(stream) for _ in range(CHUNK_SIZE)]
            if self._records[-1]["id"] != f"sr_{(chunk + 1) * CHUNK_SIZE - 1}":
                raise ValueError("the generator settings allow too few distinct formulas for "
                                 "on-the-fly training; widen them or train from a file")
            self._chunk = chunk
        return self._records[offset]


def open_source(path: str | Path | None, *, seed: int, generator: dict[str, Any] | None = None
                ) -> SampleSource:
    """A `FileSource` for ``path``, or a `GeneratedSource` with ``generator`` options."""
    if path is not None:
        return FileSource(path, seed=seed)
    return GeneratedSource(seed=seed, **(generator or {}))


class TrainingBatches:
    """This rank's micro-batches of global step ``step``, ready for the model.

    Each record keeps at most ``max_points`` of its points (a seeded random subset), so the
    encoder's cost is bounded; the rank's share of the global batch is sorted by length and cut
    into micro-batches of ``micro_batch_size``, which wastes less compute on padding.

    A share ``sparse_prob`` of the records keeps only `SPARSE_POINTS` points (modality
    dropout): with too few points to tell the formula, only the prompt's facts can lower the
    loss, so the model learns to read them rather than leaning on the data alone.
    """

    def __init__(self, source: SampleSource, processor: ChatSRProcessor, *, batch_size: int,
                 micro_batch_size: int, max_points: int, seed: int, rank: int = 0,
                 world_size: int = 1, sparse_prob: float = 0.0):
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must be a multiple of the number of "
                             f"processes ({world_size})")
        self.source, self.processor = source, processor
        self.batch_size, self.micro_batch_size = batch_size, micro_batch_size
        self.max_points, self.seed = max_points, seed
        self.rank, self.world_size = rank, world_size
        self.sparse_prob = sparse_prob

    def indices(self, step: int) -> range:
        """Global sample indices of this rank's share of step ``step``."""
        share = self.batch_size // self.world_size
        start = step * self.batch_size + self.rank * share
        return range(start, start + share)

    def __call__(self, step: int) -> list[dict[str, torch.Tensor]]:
        return self.collate([self.source[i] for i in self.indices(step)], self.indices(step))

    def collate(self, records: Sequence[dict], indices: Sequence[int]
                ) -> list[dict[str, torch.Tensor]]:
        """Micro-batches of ``records`` (sample ``indices[i]`` seeds its point subset)."""
        points = [self.points(r, i) for r, i in zip(records, indices, strict=True)]
        prompts = [r["conversations"][0]["value"] for r in records]
        answers = [r["expression_tokens"] for r in records]
        # characters, a proxy for tokens
        lengths = [len(p) + len(a) for p, a in zip(prompts, answers, strict=True)]
        order = np.argsort(lengths, kind="stable")
        return [self.processor([points[i] for i in part], [prompts[i] for i in part],
                               [answers[i] for i in part])
                for part in np.array_split(order, max(1, -(-len(order) //
                                                           self.micro_batch_size)))]

    def points(self, record: dict, index: int) -> np.ndarray:
        """Rows (n, max_dims + 1) of sample ``index``, at most ``max_points`` of them."""
        points = np.asarray(record["data_points"], dtype=np.float64)
        width = self.processor.max_dims + 1
        if points.shape[1] > width:  # a file written for more x columns than the model reads
            extra = points[:, self.processor.max_dims:-1]
            if extra.any():
                raise ValueError(f"sample {record.get('id', index)} uses x columns beyond the "
                                 f"model's {self.processor.max_dims}")
            points = np.concatenate([points[:, :self.processor.max_dims], points[:, -1:]], 1)
        elif points.shape[1] < width:
            pad = np.zeros((len(points), width - points.shape[1]))
            points = np.concatenate([points[:, :-1], pad, points[:, -1:]], axis=1)
        rng = np.random.default_rng([self.seed, index])
        sparse = self.sparse_prob and rng.random() < self.sparse_prob
        keep = SPARSE_POINTS if sparse else self.max_points
        if len(points) > keep:
            points = points[np.sort(rng.choice(len(points), keep, replace=False))]
        return points
