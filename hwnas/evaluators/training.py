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

A multi-fidelity schedule (:mod:`hwnas.strategies.schedules`) scores a candidate at a
fraction of the full evaluation (``evaluate_at``): of the epochs (trained from scratch with
the cosine schedule fitted to the shorter run), of the train split (a seeded subset, all
epochs) or of the compute by image resolution (side x sqrt(fraction), rounded to a multiple
of 4 and at least 8 px, all epochs). A
``monitor`` (BOHB's pruner) sees the validation accuracy after every epoch and may stop the
run; its accuracy is then the last one observed, at a lower fidelity.

With ``inherit`` (a :class:`~hwnas.evaluators.inherit.CheckpointStore`) every trained network
is kept, and a candidate whose ``parent`` (a hint from the strategy) it grows from by network
morphism starts from the parent's weights and is fine-tuned for ``inherit_epochs`` instead of
trained from scratch (:mod:`hwnas.evaluators.inherit`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

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


FIDELITIES = ("epochs", "data", "resolution")
"""What a fraction of a training evaluation is a fraction of."""

Monitor = Callable[[int, float], bool]
"""``monitor(epoch, val_accuracy) -> stop now?`` (a pruner watching a run)."""

FINETUNE_LR = 0.005
"""Learning rate of an inherited child's fine-tuning: a tenth of training from scratch's 0.05;
at 0.05 the restarted schedule first knocks the grown network off its parent's accuracy
(``tools/bench_morphism.py``)."""

Hints = Sequence[dict[str, Any] | None]
"""Per architecture, what the search knows about it: ``monitor`` (a :data:`Monitor`) and
``parent`` (the architecture it was mutated from)."""


class TrainingAccuracy:
    #: a cluster gives its evaluations a GPU when it has one (hwnas.job.cluster)
    wants_gpu = True

    def __init__(self, data: Splits, epochs: int = 2, batch_size: int = 64, seed: int = 0,
                 calib_batches: int = 8, early_stop: float | None = None, min_epochs: int = 3,
                 fidelity: str = "epochs", inherit: Any = None, inherit_epochs: int | None = None,
                 finetune_lr: float = FINETUNE_LR) -> None:
        if epochs < 1:
            raise HwnasError("training accuracy needs at least 1 epoch")
        if early_stop is not None and not 0 < early_stop < 1:
            raise HwnasError(f"--early-stop is a probability in (0, 1) (e.g. 0.05), not {early_stop}")
        if early_stop is not None and epochs <= min_epochs:
            raise HwnasError(f"early stopping extrapolates from {min_epochs} epochs on, so it needs more than "
                             f"{min_epochs} epochs of training (--accuracy train:EPOCHS), not {epochs}")
        if fidelity not in FIDELITIES:
            raise HwnasError(f"unknown fidelity {fidelity!r}; use one of {', '.join(FIDELITIES)}")
        self.data, self.epochs, self.batch_size, self.seed = data, epochs, batch_size, seed
        self.calib_batches, self.early_stop, self.min_epochs = calib_batches, early_stop, min_epochs
        self.fidelity = fidelity
        self.inherit, self.finetune_lr = inherit, finetune_lr
        self.inherit_epochs = inherit_epochs if inherit_epochs is not None else max(1, epochs // 4)
        if not 1 <= self.inherit_epochs <= epochs:
            raise HwnasError(f"--inherit-epochs must be in [1, {epochs}] (the epochs of a full training), "
                             f"not {inherit_epochs}")
        #: the best final accuracy of a run trained to the end (what a run must be likely to beat)
        self.best: float | None = None
        self._reduced: dict[float, Splits] = {}

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.evaluate_with_cost(archs)[0]

    @property
    def inherits(self) -> bool:
        """Whether it wants each candidate's parent (as a hint)."""
        return self.inherit is not None

    def evaluate_with_cost(self, archs: Sequence[Arch],
                           hints: Hints | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        return self.evaluate_at(archs, 1.0, hints)

    def evaluate_at(self, archs: Sequence[Arch], fraction: float,
                    hints: Hints | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Accuracies and costs at ``fraction`` of the full evaluation (1: the full one)."""
        if not 0 < fraction <= 1:
            raise HwnasError(f"a fidelity is a fraction in (0, 1], not {fraction}")
        given = list(hints) if hints is not None else [None] * len(archs)
        out = [self._one(a, fraction, h or {}) for a, h in zip(archs, given)]
        return np.array([acc for acc, _ in out]), [cost for _, cost in out]

    def observe(self, trials: Sequence[Any]) -> None:
        """Past trials (a resumed search): the best of those trained fully to the end."""
        done = [t.accuracy for t in trials if t.accuracy is not None and not t.cached
                and not t.cost.get("stopped", False) and t.cost.get("fidelity", 1.0) >= 1.0]
        if done:
            self.best = max(done if self.best is None else [*done, self.best])

    def reduced(self, fraction: float) -> tuple[int, Splits, float]:
        """Epochs, data and the share of a full evaluation's work at ``fraction``."""
        if fraction >= 1:
            return self.epochs, self.data, 1.0
        if self.fidelity == "epochs":
            epochs = max(1, int(round(fraction * self.epochs)))
            return epochs, self.data, epochs / self.epochs
        if fraction not in self._reduced:
            if self.fidelity == "data":
                self._reduced[fraction] = self.data.with_train_fraction(fraction, self.seed)
            else:
                # a multiple of 4, so that the two reductions of a cell network halve even sides
                side = max(8, 4 * int(round(self.data.resolution * math.sqrt(fraction) / 4)))
                self._reduced[fraction] = self.data.at_resolution(side)
        data = self._reduced[fraction]
        work = len(data.train) / len(self.data.train) if self.fidelity == "data" else \
            (data.resolution / self.data.resolution) ** 2
        return self.epochs, data, work

    def _one(self, arch: Arch, fraction: float, hint: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        import torch

        from hwnas.evaluators.inherit import inherited_model
        from hwnas.train import accuracy, recalibrated, train_arch

        t0 = time.perf_counter()
        epochs, data, work = self.reduced(fraction)
        full = fraction >= 1
        monitor: Monitor | None = hint.get("monitor")
        start, parent = inherited_model(hint.get("parent"), arch, self.inherit) if full else (None, None)
        if start is not None:
            epochs, work = self.inherit_epochs, self.inherit_epochs / self.epochs
        curve: list[float] = []
        stop: dict[str, float] = {}
        watched = full and (self.early_stop is not None or monitor is not None)

        def on_epoch(epoch: int, model: Any) -> bool:
            if not watched:
                return False
            device = next(model.parameters()).device
            # scoring must not move the training's random state: a run that is not stopped ends
            # exactly as it would without early stopping
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                with recalibrated(model, data, self.calib_batches, self.batch_size, device):
                    curve.append(accuracy(model, data, "val", device))
            if monitor is not None and epoch < epochs and monitor(epoch, curve[-1]):
                stop["pruned"] = 1.0
                return True
            if self.early_stop is None:
                return False
            verdict = stop_verdict(curve, epochs, self.best, self.early_stop, self.min_epochs)
            if verdict is None:
                return False
            stop.update(verdict)
            return True

        result = train_arch(arch, data, epochs=epochs, batch_size=self.batch_size, seed=self.seed,
                            progress=False, train_split="train", eval_split="val", recalibrate=self.calib_batches,
                            on_epoch=on_epoch, start=start, **({"lr": self.finetune_lr} if start is not None else {}))
        if self.inherit is not None and full:
            self.inherit.put(arch, result.model.state_dict())
        used = len(result.history)
        cost: dict[str, Any] = {"epochs": used, "seconds": time.perf_counter() - t0,
                                "work": work * used / epochs}
        if not full:
            cost["fidelity"] = fraction
        if parent is not None:
            cost["inherited_from"] = parent
        if curve:
            cost["curve"] = list(curve)
        if stop.get("pruned"):
            cost.update(stopped=True, pruned=True, fidelity=used / epochs, observed_acc=curve[-1])
            return float(curve[-1]), cost
        if stop:
            cost.update(stopped=True, extrapolated_acc=stop["extrapolated"], chance=stop["chance"],
                        observed_acc=curve[-1])
            return float(stop["extrapolated"]), cost
        if full:
            self.best = result.test_acc if self.best is None else max(self.best, result.test_acc)
        return float(result.test_acc), cost
