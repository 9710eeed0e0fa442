"""Accuracy by short training from scratch: train on the train split, score on val.

Batch-norm statistics are re-estimated on a few training batches before scoring: after a
short training they lag behind the weights (mbv2/small on digits: 11 % on val after one
epoch with the running statistics, though the training loss was 2.06 and falling).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.data.datasets import Splits
from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch


class TrainingAccuracy:
    def __init__(self, data: Splits, epochs: int = 2, batch_size: int = 64, seed: int = 0,
                 calib_batches: int = 8) -> None:
        if epochs < 1:
            raise HwnasError("training accuracy needs at least 1 epoch")
        self.data, self.epochs, self.batch_size, self.seed = data, epochs, batch_size, seed
        self.calib_batches = calib_batches

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        from hwnas.train import train_arch

        return np.array([train_arch(a, self.data, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                                    progress=False, train_split="train", eval_split="val",
                                    recalibrate=self.calib_batches).test_acc
                         for a in archs])
