"""Train a standalone architecture from scratch and evaluate it."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from hwnas.data.datasets import Splits
from hwnas.spaces.base import Arch


@dataclass
class TrainResult:
    model: nn.Module
    test_acc: float  # accuracy on the evaluation split (``test`` unless told otherwise)
    history: list[dict]
    seconds: float


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: Splits, batches: int, batch_size: int = 64,
                   device: torch.device | None = None) -> None:
    """Batch-norm running statistics re-estimated as a plain average over ``batches`` training
    batches. After a few hundred steps, or with inherited supernet weights, the running
    averages lag behind the weights and evaluation is near chance though training loss is low."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    for i, (x, _) in enumerate(data.loader("train", batch_size, True, seed=0)):
        if i >= batches:
            break
        model(x.to(device) if device is not None else x)


@contextmanager
def recalibrated(model: nn.Module, data: Splits, batches: int, batch_size: int = 64,
                 device: torch.device | None = None) -> Iterator[None]:
    """Inside: batch-norm statistics re-estimated (:func:`recalibrate_bn`); after: the model's
    statistics and momenta as they were (a supernet scoring one sub-network mid-training)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.running_mean is None else m.running_mean.clone(),
              None if m.running_var is None else m.running_var.clone(),
              None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    try:
        recalibrate_bn(model, data, batches, batch_size, device)
        yield
    finally:
        with torch.no_grad():
            for m, (momentum, mean, var, count) in zip(norms, saved):
                m.momentum = momentum
                for buf, old in ((m.running_mean, mean), (m.running_var, var), (m.num_batches_tracked, count)):
                    if buf is not None and old is not None:
                        buf.copy_(old)


@torch.no_grad()
def accuracy(model: nn.Module, data: Splits, split: str, device: torch.device, limit: int | None = None,
             channels_last: bool = False) -> float:
    """Top-1 accuracy on a split (the first ``limit`` samples or so, when given): the one loop
    that final training, the supernet's epochs and one-shot evaluation all score with."""
    model.eval()
    correct = total = 0
    for x, y in data.loader(split, 256, shuffle=False):
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        correct += int((model(x).argmax(1) == y.to(device)).sum())
        total += len(y)
        if limit is not None and total >= limit:
            break
    return correct / max(total, 1)


def train_arch(arch: Arch, data: Splits, epochs: int = 10, batch_size: int = 64, lr: float = 0.05,
               weight_decay: float = 4e-5, seed: int = 0, device: str | None = None,
               progress: bool = True, train_split: str = "trainval", eval_split: str = "test",
               recalibrate: int = 0, on_epoch: Callable[[int, nn.Module], bool] | None = None,
               start: nn.Module | None = None) -> TrainResult:
    """SGD (Nesterov momentum) with a cosine schedule on ``train_split`` (train + val);
    accuracy on ``eval_split`` (test). A search's accuracy evaluator trains on ``train``
    and scores on ``val``, keeping the test split for the final report; after its short
    training it re-estimates batch-norm statistics on ``recalibrate`` batches first.
    ``on_epoch(epoch, model)`` runs after each epoch; when it answers True training stops
    there (early stopping; the history then has fewer epochs). ``start``: the network to train
    instead of a freshly initialised one (inherited weights, fine-tuned)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    model = (start if start is not None else arch.build()).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    history = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        losses = []
        bar = tqdm(data.loader(train_split, batch_size, True, seed, epoch), desc=f"train {epoch + 1}/{epochs}",
                   unit="batch", disable=not progress, leave=False)
        for x, y in bar:
            x, y = x.to(dev), y.to(dev)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
        history.append({"epoch": epoch + 1, "loss": sum(losses) / max(len(losses), 1)})
        if on_epoch is not None and on_epoch(epoch + 1, model):
            break
    if recalibrate:
        recalibrate_bn(model, data, recalibrate, batch_size, dev)
    return TrainResult(model.cpu().eval(), accuracy(model.cpu(), data, eval_split, torch.device("cpu")), history,
                       time.perf_counter() - t0)


def retrain_run(run: Path, epochs: int, quiet: bool = False) -> dict:
    """Train a search run's architecture from scratch; weights to ``model.safetensors``."""
    import json

    from safetensors.torch import save_file

    from hwnas.data.datasets import load
    from hwnas.export.run import load_run

    space, arch, _, recipe = load_run(run)
    data = load(recipe.get("data", "digits"), recipe.get("data_dir"), resolution=space.input_shape()[1],
                seed=recipe.get("seed", 0))
    trained = train_arch(arch, data, epochs=epochs, seed=recipe.get("seed", 0), progress=not quiet)
    save_file({k: v.contiguous() for k, v in trained.model.state_dict().items()}, str(run / "model.safetensors"),
              metadata={"arch": str(arch), "space": space.name, "preset": space.preset})
    out = {"arch": str(arch), "epochs": epochs, "test_acc": trained.test_acc, "seconds": trained.seconds,
           "weights": str(run / "model.safetensors"), "history": trained.history}
    (run / "train.json").write_text(json.dumps(out, indent=1))
    return out
