"""Accuracy from a trained supernet (Once-for-All / SPOS style one-shot evaluation).

Each candidate runs as a sub-network with the supernet's inherited weights; its batch
norm statistics are recalibrated on a few training batches first (the supernet's running
statistics mix every path and mislead a single one), then it is scored on the
validation split. The supernet comes from a differentiable search's run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from hwnas.data.datasets import Splits
from hwnas.errors import HwnasError
from hwnas.files import read_fields
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.train import accuracy, recalibrate_bn


def load_supernet(run_dir: str | Path, space: SearchSpace) -> nn.Module:
    from hwnas.spaces.stored import stored_space

    run = Path(run_dir)
    ckpt, recipe = run / "checkpoint.pt", run / "recipe.json"
    if not ckpt.is_file() or not recipe.is_file():
        raise HwnasError(f"{run} holds no trained supernet (checkpoint.pt and recipe.json); "
                         "train one with 'hwnas search --strategy proxyless|darts|gdas -o DIR'")
    r = read_fields(recipe, "search recipe", "search again into a new run directory", {})
    trained = stored_space(r, f"search recipe {recipe}")
    if trained != space:
        same = (trained.name, trained.preset) == (space.name, space.preset)
        detail = f" (overrides {trained.recipe()['overrides']} vs {space.recipe()['overrides']})" if same else ""
        raise HwnasError(f"the supernet in {run} is for {trained.name}/{trained.preset}, not {space.name}/"
                         f"{space.preset}{detail}")
    net = space.supernet()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state["net"])
    except RuntimeError as e:
        raise HwnasError(f"the supernet in {run} was trained by another hwnas version (its weights do not fit this "
                         f"supernet: {str(e).splitlines()[0]}); search again into a new run directory") from None
    return net


class SupernetAccuracy:
    """``run_dir``: a differentiable search's run directory, or the trained supernet itself."""

    #: a cluster gives its evaluations a GPU when it has one
    wants_gpu = True

    def __init__(self, run_dir: str | Path | nn.Module, space: SearchSpace, data: Splits, calib_batches: int = 8,
                 batch_size: int = 64, max_val: int | None = None) -> None:
        self.space, self.data = space, data
        self.net = run_dir if isinstance(run_dir, nn.Module) else load_supernet(run_dir, space)
        self.calib_batches, self.batch_size, self.max_val = calib_batches, batch_size, max_val
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.net.to(self.device)

    def accuracy(self, arch: Arch) -> float:
        self.net.fix(list(arch.indices()))
        try:
            recalibrate_bn(self.net, self.data, self.calib_batches, self.batch_size, self.device)
            return accuracy(self.net, self.data, "val", self.device, limit=self.max_val)
        finally:
            self.net.fix(None)

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([self.accuracy(a) for a in archs])
