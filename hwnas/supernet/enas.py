"""ENAS (Pham et al. 2018): an LSTM controller and a shared-weight supernet, trained in turn.

Every epoch has ENAS's two phases:

1. **Shared weights**: one pass over the training split; each batch trains the sub-network of
   an architecture sampled from the controller (the supernet runs that one path).
2. **Controller**: ``controller_steps`` REINFORCE steps, each on ``CONTROLLER_BATCH`` sampled
   architectures. An architecture's reward is its accuracy on one validation batch under the
   shared weights, times MnasNet's latency factor Π_d (LAT_d / T_d)^w with LAT_d the target's
   predicted latency: the latency term is in the reward, as in MnasNet and ProxylessNAS's
   REINFORCE variant. The advantage is the reward minus a moving baseline (scaled by its
   moving deviation), and an entropy bonus keeps the controller exploring.

Warm-up epochs train the shared weights on the controller's (initially near-uniform) samples
and leave the controller alone, so it first judges architectures once the weights mean something.

The answer (:meth:`EnasSearch.final_arch`): ``DERIVE_SAMPLES`` architectures sampled from the
trained controller; of those that are connected and meet every budget less the derivation
margin, the ``RESCORED`` best by accuracy on one validation batch (as ENAS scores them) are scored again with
batch norm re-estimated, and the best is the answer (ENAS's own derivation, budget-aware). If
no sample meets the budget, the base derivation runs on the controller's per-decision marginals.

Each epoch's log line has the fields of the other modes; its ``arch_loss`` is minus the mean
controller reward, and ``expected_ms`` the mean predicted latency of the controller's samples.

The checkpoint holds the controller, its optimiser, the baseline and the sampling generator,
so an interrupted search resumes where it stopped. Training runs in one process.
"""

from __future__ import annotations

import time
from itertools import cycle
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from hwnas.errors import HwnasError
from hwnas.nn.controller import MovingBaseline, Policy
from hwnas.spaces.base import Arch
from hwnas.supernet.search import DifferentiableSearch

CONTROLLER_BATCH = 10
"""Architectures per controller step (ENAS's ``controller_num_aggregate``)."""
ENTROPY = 1e-4
"""ENAS's entropy bonus weight."""
BASELINE_DECAY = 0.99
"""ENAS's baseline decay."""
HIDDEN = 64
DERIVE_SAMPLES = 100
RESCORED = 3
SCORE_BATCHES = 1
MARGINAL_SAMPLES = 400


class EnasSearch(DifferentiableSearch):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.world.size > 1:
            raise HwnasError("ENAS trains its controller in one process; run it without --nproc")
        sizes = [len(d.choices) for d in self.space.decisions()]
        self.policy = Policy(sizes, HIDDEN, self.cfg.arch_lr, self.cfg.seed)
        self.baseline = MovingBaseline(BASELINE_DECAY)
        self.gen = torch.Generator().manual_seed(self.cfg.seed + 7)
        self._sampled_ms: list[list[float]] = []

    # -- the controller ---------------------------------------------------------------
    def sample(self, generator: torch.Generator | None = None) -> list[int]:
        """One architecture's indices drawn from the controller."""
        g = generator or self.gen
        return self.policy.decode(lambda p: int(torch.multinomial(torch.from_numpy(p), 1, generator=g)))

    def derive(self) -> Arch:
        """The controller's most likely architecture, decision by decision (greedy decoding)."""
        return self.space.from_indices(self.policy.decode(lambda p: int(np.argmax(p))))

    def probabilities(self) -> list[list[float]]:
        """Each decision's marginal probability under the controller, estimated from samples drawn
        with a generator of their own (the training's random state is left alone)."""
        g = torch.Generator().manual_seed(self.cfg.seed + 1000 * self.epoch)
        counts = [np.full(len(d.choices), 0.5) for d in self.space.decisions()]
        for _ in range(MARGINAL_SAMPLES):
            for c, i in zip(counts, self.sample(g)):
                c[i] += 1
        return [(c / c.sum()).tolist() for c in counts]

    def expected_ms(self) -> list[torch.Tensor]:
        """The mean predicted latency of the architectures the controller sampled this epoch."""
        if not self._sampled_ms:
            arch = self.derive()
            return [torch.tensor(t.predict_one(arch)) for t in self.targets]
        return [torch.tensor(float(np.mean(col))) for col in zip(*self._sampled_ms)]

    def reward(self, accuracy: float, indices: list[int]) -> float:
        arch = self.space.from_indices(indices)
        r = accuracy
        for t in self.targets:
            ms = t.predict_one(arch)
            r *= (ms / float(t.budget_ms)) ** self.cfg.mnas_w
        return float(r)

    # -- steps --------------------------------------------------------------------------
    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        self.net.fix(self.sample())
        try:
            return super().weight_step(x, y)
        finally:
            self.net.fix(None)

    @torch.no_grad()
    def batch_accuracy(self, indices: list[int], x: torch.Tensor, y: torch.Tensor) -> float:
        """A sub-network's accuracy on one batch, batch norm on the batch's statistics (the running
        averages belong to the mixture of every sampled path)."""
        self.net.fix(indices)
        try:
            self.net.train()
            with torch.autocast(self.device.type, enabled=self.device.type == "cuda", dtype=torch.float16):
                logits = self.net(x)
            return float((logits.argmax(1) == y).float().mean())
        finally:
            self.net.fix(None)

    def controller_step(self, batches: Any) -> float:
        """One REINFORCE step on ``CONTROLLER_BATCH`` sampled architectures; the mean reward."""
        rows, rewards = [], []
        for _ in range(CONTROLLER_BATCH):
            idx = self.sample()
            x, y = self._to(*next(batches))
            rewards.append(self.reward(self.batch_accuracy(idx, x, y), idx))
            rows.append(idx)
            arch = self.space.from_indices(idx)
            self._sampled_ms.append([t.predict_one(arch) for t in self.targets])
        self.policy.step(np.asarray(rows), self.baseline.advantages(rewards), ENTROPY)
        return float(np.mean(rewards))

    # -- the loop -----------------------------------------------------------------------
    def _one_epoch(self) -> None:
        c, e = self.cfg, self.epoch
        t0 = time.perf_counter()
        searching = e >= c.warmup_epochs
        self._sampled_ms = []
        train = self.data.loader("train", c.batch_size, True, c.seed, e)
        losses, accs = [], []
        bar = tqdm(train, desc=f"enas epoch {e + 1}/{c.epochs}" + ("" if searching else " (warm-up)"),
                   unit="batch", disable=not self.progress, leave=False)
        for x, y in bar:
            loss, acc = self.weight_step(*self._to(x, y))
            losses.append(loss)
            accs.append(acc)
            bar.set_postfix(loss=f"{loss:.3f}")
        self.sched.step()
        rewards = []
        if searching:
            val = cycle(self.data.loader("val", c.batch_size, True, c.seed + 1, e))
            for _ in tqdm(range(c.controller_steps), desc="controller", unit="step", disable=not self.progress,
                          leave=False):
                rewards.append(self.controller_step(val))
        self.epoch += 1
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            self._log_epoch(searching, float(np.mean(losses)), float(np.mean(accs)),
                            -float(np.mean(rewards)) if rewards else None, t0)
        self.save_checkpoint()

    # -- the answer -----------------------------------------------------------------------
    def final_arch(self) -> Arch:
        keep = 1.0 - self.cfg.derive_margin
        g = torch.Generator().manual_seed(self.cfg.seed + 99)
        seen: dict[str, Arch] = {}
        for _ in range(DERIVE_SAMPLES):
            arch = self.space.from_indices(self.sample(g))
            if self.space.connected(arch) and all(t.meets(t.predict_one(arch) / keep) for t in self.targets):
                seen.setdefault(str(arch), arch)
        if not seen:
            return super().final_arch()
        loader = self.data.loader("val", self.cfg.batch_size, False, self.cfg.seed, 0)
        batches = [self._to(x, y) for (x, y), _ in zip(loader, range(SCORE_BATCHES))]
        quick = sorted(seen.values(), key=lambda a: -np.mean([self.batch_accuracy(list(a.indices()), x, y)
                                                              for x, y in batches]))
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            return max(quick[:RESCORED], key=lambda a: self.evaluate(a, "val"))

    # -- checkpoint -----------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {"controller": self.policy.controller.state_dict(), "controller_opt": self.policy.opt.state_dict(),
                "baseline": torch.tensor([np.nan if self.baseline.mean is None else self.baseline.mean,
                                          self.baseline.variance], dtype=torch.float64),
                "controller_rng": self.gen.get_state()}

    def _load_extra(self, state: dict[str, Any]) -> None:
        if "controller" not in state:
            raise HwnasError("the run directory's checkpoint is not an ENAS search's (no controller); search into a "
                             "new run directory")
        self.policy.controller.load_state_dict(state["controller"])
        self.policy.opt.load_state_dict(state["controller_opt"])
        mean, var = state["baseline"].tolist()
        self.baseline.mean = None if np.isnan(mean) else float(mean)
        self.baseline.variance = float(var)
        self.gen.set_state(state["controller_rng"].cpu())
