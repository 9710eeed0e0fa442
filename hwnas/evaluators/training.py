"""Accuracy by short training from scratch: train on the train split, score on val.

Batch-norm statistics are re-estimated on a few training batches before scoring: after a
short training they lag behind the weights (mbv2/small on digits: 11 % on val after one
epoch with the running statistics, though the training loss was 2.06 and falling).

With ``early_stop`` (P) a run is scored after every epoch and its learning curve is
extrapolated to the final epoch (:mod:`hwnas.evaluators.curves`); once at least
``min_epochs`` are in and the chance that it ends above the best accuracy of the runs
completed so far falls below P, it stops, and its accuracy is the extrapolated final one
(Domhan et al. 2015). Each trial's cost records the epochs it used, whether it stopped and
what it was extrapolated to.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from hwnas.data.datasets import Splits
from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch


def stop_verdict(curve: Sequence[float], epochs: int, best: float | None, p: float,
                 min_epochs: int = 3) -> dict[str, float] | None:
    """Whether a run whose validation accuracy after epochs 1..n is ``curve`` stops now:
    ``{"extrapolated": final accuracy expected, "chance": of ending above best}`` when, with
    at least ``min_epochs`` in and epochs left, that chance is below ``p``; else None."""
    n = len(curve)
    if n < min_epochs or n >= epochs or best is None:
        return None
    from hwnas.evaluators.curves import CurveExtrapolation

    ex = CurveExtrapolation().fit(range(1, n + 1), curve)
    if not ex.fits:
        return None
    chance = ex.probability_above(epochs, best)
    return {"extrapolated": ex.predict(epochs)[0], "chance": chance} if chance < p else None


class TrainingAccuracy:
    def __init__(self, data: Splits, epochs: int = 2, batch_size: int = 64, seed: int = 0,
                 calib_batches: int = 8, early_stop: float | None = None, min_epochs: int = 3) -> None:
        if epochs < 1:
            raise HwnasError("training accuracy needs at least 1 epoch")
        if early_stop is not None and not 0 < early_stop < 1:
            raise HwnasError(f"--early-stop is a probability in (0, 1) (e.g. 0.05), not {early_stop}")
        if early_stop is not None and epochs <= min_epochs:
            raise HwnasError(f"early stopping extrapolates from {min_epochs} epochs on, so it needs more than "
                             f"{min_epochs} epochs of training (--accuracy train:EPOCHS), not {epochs}")
        self.data, self.epochs, self.batch_size, self.seed = data, epochs, batch_size, seed
        self.calib_batches, self.early_stop, self.min_epochs = calib_batches, early_stop, min_epochs
        #: the best final accuracy of a run trained to the end (what a run must be likely to beat)
        self.best: float | None = None

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.evaluate_with_cost(archs)[0]

    def evaluate_with_cost(self, archs: Sequence[Arch]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        out = [self._one(a) for a in archs]
        return np.array([acc for acc, _ in out]), [cost for _, cost in out]

    def observe(self, trials: Sequence[Any]) -> None:
        """Past trials (a resumed search): the best of those trained to the end."""
        done = [t.accuracy for t in trials if t.accuracy is not None and not t.cached
                and not t.cost.get("stopped", False)]
        if done:
            self.best = max(done if self.best is None else [*done, self.best])

    def _one(self, arch: Arch) -> tuple[float, dict[str, Any]]:
        import torch

        from hwnas.train import accuracy, recalibrated, train_arch

        t0 = time.perf_counter()
        curve: list[float] = []
        stop: dict[str, float] = {}

        def on_epoch(epoch: int, model: Any) -> bool:
            if self.early_stop is None:
                return False
            device = next(model.parameters()).device
            # scoring must not move the training's random state: a run that is not stopped ends
            # exactly as it would without early stopping
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                with recalibrated(model, self.data, self.calib_batches, self.batch_size, device):
                    curve.append(accuracy(model, self.data, "val", device))
            verdict = stop_verdict(curve, self.epochs, self.best, self.early_stop, self.min_epochs)
            if verdict is None:
                return False
            stop.update(verdict)
            return True

        result = train_arch(arch, self.data, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                            progress=False, train_split="train", eval_split="val", recalibrate=self.calib_batches,
                            on_epoch=on_epoch)
        used = len(result.history)
        cost: dict[str, Any] = {"epochs": used, "seconds": time.perf_counter() - t0}
        if stop:
            cost.update(stopped=True, extrapolated_acc=stop["extrapolated"], chance=stop["chance"],
                        observed_acc=curve[-1])
            return float(stop["extrapolated"]), cost
        self.best = result.test_acc if self.best is None else max(self.best, result.test_acc)
        return float(result.test_acc), cost
