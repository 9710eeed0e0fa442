"""Tabular lookups: a benchmark's per-architecture accuracy or latency as batched functions.

NAS-Bench-201's ``accuracy.csv`` (test accuracy, percent, per dataset) and
``latency_ms.csv`` (one column per device) map every cell of the space to a number; a
lookup turns a batch of architectures into an array through a mixed-radix code of their
decision indices, so a simulated search costs microseconds per candidate.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.paths import shared_data_dir
from hwnas.spaces.base import Arch, SearchSpace


def nb201_file(name: str) -> Path:
    path = shared_data_dir() / "nb201" / name
    if not path.is_file():
        raise HwnasError(f"NAS-Bench-201 data {path} is missing; set HWNAS_DATA to the folder holding nb201/")
    return path


class TableLookup:
    """One numeric column of a CSV keyed by arch string, covering the whole space."""

    def __init__(self, space: SearchSpace, path: str | Path, column: str, scale: float = 1.0) -> None:
        path = Path(path)
        if not path.is_file():
            raise HwnasError(f"{path} does not exist")
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "arch" not in fields or column not in fields:
                raise HwnasError(f"{path} has no column {column!r}; columns: {', '.join(c for c in fields if c != 'arch')}")
            rows = [(r["arch"], r[column]) for r in reader]
        self.space, self.column, self.path = space, column, path
        self.radix = self._radix(space)
        size = int(np.prod([len(d.choices) for d in space.decisions()]))
        self.values = np.full(size, np.nan)
        for text, value in rows:
            self.values[self.code_of(space.parse(text).indices())] = float(value) * scale
        missing = int(np.isnan(self.values).sum())
        if missing:
            raise HwnasError(f"{path}: column {column!r} misses {missing} of the space's {size} architectures")

    @staticmethod
    def _radix(space: SearchSpace) -> np.ndarray:
        sizes = [len(d.choices) for d in space.decisions()]
        return np.array([int(np.prod(sizes[i + 1:])) for i in range(len(sizes))], dtype=np.int64)

    def code_of(self, indices: Sequence[int]) -> int:
        return int(np.dot(np.asarray(indices, dtype=np.int64), self.radix))

    def lookup_indices(self, idx: np.ndarray) -> np.ndarray:
        return self.values[np.asarray(idx, dtype=np.int64) @ self.radix]

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.lookup_indices(self.space.index_matrix(archs))

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        """As an accuracy evaluator."""
        return self(archs)

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        """As a latency model (a device column standing for the device)."""
        return self(archs)

    def all_indices(self) -> np.ndarray:
        """Every architecture's decision indices, in code order."""
        sizes = [len(d.choices) for d in self.space.decisions()]
        return np.stack(np.unravel_index(np.arange(len(self.values)), sizes), axis=1)


NB201_DATASETS = ("cifar10", "cifar100", "imagenet16_120")


def nb201_accuracy(space: SearchSpace, dataset: str = "cifar10") -> TableLookup:
    """NAS-Bench-201 test accuracy as a fraction in [0, 1]."""
    if space.name != "nb201":
        raise HwnasError(f"tabular accuracy exists for the nb201 space only, not {space.name}")
    if dataset not in NB201_DATASETS:
        raise HwnasError(f"unknown NAS-Bench-201 dataset {dataset!r}; use one of {', '.join(NB201_DATASETS)}")
    return TableLookup(space, nb201_file("accuracy.csv"), dataset, scale=0.01)


def nb201_latency(space: SearchSpace, device: str) -> TableLookup:
    """Measured NAS-Bench-201 latency (ms) of one device column."""
    return TableLookup(space, nb201_file("latency_ms.csv"), device)
