"""Accuracy from a SMASH hypernetwork (``--accuracy hypernet:RUN_DIR``): each candidate is
scored on the validation split with the weights the hypernetwork generates for it, no
training of its own (:mod:`hwnas.nn.hypernet`).

``hwnas hypernet train`` trains one on randomly sampled architectures (one per batch, SGD
with a cosine schedule on the train split) and writes ``hypernet.safetensors`` (weights,
never a pickle) and ``hypernet.json`` (the space, its size, what it cost) to a run
directory; an interrupted training restarts from scratch (it is the cheap part).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hwnas.data.datasets import Splits
from hwnas.errors import HwnasError
from hwnas.files import read_fields, write_json
from hwnas.spaces.base import Arch, SearchSpace

FORMAT = "hwnas.hypernet"


def train_hypernet(space: SearchSpace, data: Splits, epochs: int = 10, batch_size: int = 64, lr: float = 0.05,
                   seed: int = 0, hidden: int = 64, progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """A hypernetwork trained on one random architecture per batch, and what it cost."""
    from hwnas.nn.hypernet import CellHyperNet

    if space.name != "nb201":
        raise HwnasError(f"the SMASH hypernetwork generates nb201 cells; --space {space.name} has none")
    if epochs < 1:
        raise HwnasError("train the hypernetwork for at least 1 epoch")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = CellHyperNet(space, hidden)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=4e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    sizes = [len(d.choices) for d in space.decisions()]
    t0, steps = time.perf_counter(), 0
    net.train()
    for epoch in tqdm(range(epochs), desc="hypernet", unit="epoch", disable=not progress, leave=False):
        for x, y in data.loader("train", batch_size, True, seed, epoch):
            arch = space.from_indices([int(rng.integers(k)) for k in sizes])
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x, arch), y).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            steps += 1
        sched.step()
    return net, {"epochs": epochs, "steps": steps, "seconds": time.perf_counter() - t0, "hidden": hidden}


def save_hypernet(run_dir: str | Path, net: Any, space: SearchSpace, info: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(run / "hypernet.safetensors"))
    write_json(run / "hypernet.json", {"format": FORMAT, "space_recipe": space.recipe(), **info})


def load_hypernet(run_dir: str | Path, space: SearchSpace) -> tuple[Any, dict[str, Any]]:
    from safetensors.torch import load_file

    from hwnas.nn.hypernet import CellHyperNet
    from hwnas.spaces.stored import stored_space

    run = Path(run_dir)
    meta, weights = run / "hypernet.json", run / "hypernet.safetensors"
    if not meta.is_file() or not weights.is_file():
        raise HwnasError(f"{run} holds no hypernetwork (hypernet.json and hypernet.safetensors); train one with "
                         "'hwnas hypernet train -o DIR'")
    info = read_fields(meta, "hypernetwork", "train it again", {"format": str, "space_recipe": dict, "hidden": int})
    if info["format"] != FORMAT:
        raise HwnasError(f"{meta} is not an hwnas hypernetwork (format {info['format']!r})")
    trained = stored_space(info, f"hypernetwork {meta}")
    if trained != space:
        raise HwnasError(f"the hypernetwork in {run} generates {trained.name}/{trained.preset} "
                         f"{trained.recipe()['overrides']}, not {space.name}/{space.preset} {space.recipe()['overrides']}")
    net = CellHyperNet(space, info["hidden"])
    try:
        net.load_state_dict(load_file(str(weights)))
    except RuntimeError as e:
        raise HwnasError(f"the weights in {weights} do not fit this hypernetwork ({str(e).splitlines()[0]}); "
                         "train it again") from None
    return net, info


class HypernetAccuracy:
    """Validation accuracy with generated weights (batch statistics from the validation batches)."""

    #: a cluster gives its evaluations a GPU when it has one
    wants_gpu = True

    def __init__(self, run_dir: str | Path | Any, space: SearchSpace, data: Splits, batch_size: int = 256) -> None:
        self.net = run_dir if isinstance(run_dir, torch.nn.Module) else load_hypernet(run_dir, space)[0]
        self.space, self.data, self.batch_size = space, data, batch_size

    def accuracy(self, arch: Arch) -> float:
        self.net.train()  # batch statistics: a generated network has no running ones
        correct = total = 0
        with torch.no_grad():
            for x, y in self.data.loader("val", self.batch_size, False):
                correct += int((self.net(x, arch).argmax(1) == y).sum())
                total += len(y)
        return correct / max(total, 1)

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([self.accuracy(a) for a in archs])
