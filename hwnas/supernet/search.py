"""Differentiable search: alternate weight steps (train split) and architecture steps
(val split) on a supernet, with the expected-latency loss; checkpoint every epoch.

Run directory: ``checkpoint.pt`` (weights only, loaded with ``weights_only=True``) and
``log.jsonl`` (one line per epoch); ``run()`` returns the derived architecture.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from itertools import cycle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hwnas.data.datasets import Splits
from hwnas.errors import HwnasError
from hwnas.nn.supernets import Supernet
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import STRATEGIES
from hwnas.supernet.config import SearchConfig
from hwnas.supernet.derive import derive
from hwnas.supernet.distributed import World
from hwnas.supernet.latency import ExpectedLatency
from hwnas.supernet.losses import BudgetTracker, get_loss
from hwnas.target import Target


class DifferentiableSearch:
    def __init__(self, space: SearchSpace, targets: list[Target], data: Splits, config: SearchConfig,
                 run_dir: str | Path, progress: bool = True, proxy: SearchSpace | None = None,
                 world: World | None = None) -> None:
        """``proxy``: train the supernet of this skeleton instead (the same decisions, e.g. fewer
        channels and cells: the DARTS practice of searching on a smaller network); architectures,
        latencies and results stay those of ``space``. ``world``: this process's place among
        several training one supernet (:mod:`hwnas.supernet.distributed`; default: the current
        process group, else alone)."""
        if not targets:
            raise HwnasError("a latency-aware search needs at least one device with a budget")
        if proxy is not None and [d.choices for d in proxy.decisions()] != [d.choices for d in space.decisions()]:
            raise HwnasError(f"the proxy skeleton {proxy.name}/{proxy.preset} does not have the decisions of "
                             f"{space.name}/{space.preset}; a proxy may change widths and depths, not choices")
        self.space, self.targets, self.data, self.cfg = space, targets, data, config
        self.world = world or World.current()
        self.run_dir = Path(run_dir)
        self.progress = progress and self.world.main
        torch.manual_seed(config.seed)
        self.device = torch.device(config.torch_device)
        trained = proxy or space
        self.largest = self._largest(trained) if config.sandwich else None
        k = config.partial_channels
        self.net: Supernet = (trained.supernet(partial_channels=k) if k > 1 else trained.supernet()).to(self.device)
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.net.sampler.manual_seed(config.seed)
        self.options = [t.option_latency() for t in targets]
        self.lat = [ExpectedLatency(o).to(self.device) for o in self.options]
        self.loss = get_loss(config.loss, alpha=config.alpha, beta=config.beta, lam=config.lam)
        self.tracker = BudgetTracker(len(targets), config.tracking_rate) if config.budget_tracking else None
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                     weight_decay=config.weight_decay)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=config.arch_lr, betas=(0.5, 0.999),
                                      weight_decay=config.arch_weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, T_max=config.epochs)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda")
        self.epoch = 0

    @staticmethod
    def _largest(space: SearchSpace) -> list[int]:
        """The option indices of ``space``'s largest architecture (its ``largest`` reference),
        which the sandwich rule trains every weight step."""
        largest = space.references().get("largest")
        if largest is None:
            raise HwnasError(f"--sandwich trains the space's largest architecture, and {space.name} names none "
                             "(its references() has no 'largest'); drop --sandwich")
        return list(largest.indices())

    # -- losses ---------------------------------------------------------------------
    def expected_ms(self) -> list[torch.Tensor]:
        return [lat(self.net.decision_logits()) for lat in self.lat]

    def budgets(self) -> list[float]:
        return [float(t.budget_ms) for t in self.targets]

    def objective(self, ce: torch.Tensor) -> torch.Tensor:
        weights = self.tracker.weights if self.tracker is not None else None
        return self.loss(ce, self.expected_ms(), self.budgets(), weights)

    def _forward_ce(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, enabled=self.device.type == "cuda", dtype=torch.float16):
            logits = self.net(x)
            return F.cross_entropy(logits.float(), y), logits

    # -- steps ----------------------------------------------------------------------
    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        self.net.set_mode(self.cfg.strategy, "weights", self.tau)
        self.net.train()
        self.w_opt.zero_grad(set_to_none=True)
        ce, logits = self._forward_ce(x, y)
        self.scaler.scale(self._sandwich(x, y, ce, logits) if self.largest is not None else ce).backward()
        self.scaler.unscale_(self.w_opt)
        self.world.average([p.grad for p in self.net.weight_parameters() if p.grad is not None])
        torch.nn.utils.clip_grad_norm_(self.net.weight_parameters(), 5.0)
        self.scaler.step(self.w_opt)
        self.scaler.update()
        return float(ce.detach()), float((logits.detach().argmax(1) == y).float().mean())

    def _sandwich(self, x: torch.Tensor, y: torch.Tensor, ce: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The weight step's loss under the sandwich rule: the largest path's loss on the labels,
        plus the sampled path's (``ce``, its ``logits``) on the labels, or with ``distill`` on the
        largest path's predictions (in-place distillation, as BigNAS trains its small models)."""
        self.net.fix(self.largest)
        try:
            big, big_logits = self._forward_ce(x, y)
        finally:
            self.net.fix(None)
        if self.cfg.sandwich != "distill":
            return big + ce
        teacher = F.softmax(big_logits.detach().float(), dim=1)
        return big + F.kl_div(F.log_softmax(logits.float(), dim=1), teacher, reduction="batchmean")

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor | None = None,
                  yt: torch.Tensor | None = None) -> float:
        self.net.set_mode(self.cfg.strategy, "arch", self.tau)
        self.net.train()
        self.a_opt.zero_grad(set_to_none=True)
        if self.cfg.unrolled and xt is not None:
            loss = self._unrolled(x, y, xt, yt)
        else:
            ce, _ = self._forward_ce(x, y)
            loss = self.objective(ce)
            loss.backward()
            if STRATEGIES[self.cfg.strategy].binary_gates:
                for m in self.net.mixed_ops():
                    a = self.net.alphas[m.decision]
                    a.grad = (a.grad if a.grad is not None else torch.zeros_like(a)) + m.binary_alpha_grad(a)
        self.world.average([a.grad for a in self.net.arch_parameters() if a.grad is not None])
        self.a_opt.step()
        if self.tracker is not None:
            self.tracker.update([float(e.detach()) for e in self.expected_ms()], self.budgets())
        for p in self.net.weight_parameters():
            p.grad = None
        return float(loss.detach())

    def _unrolled(self, xv: torch.Tensor, yv: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor) -> torch.Tensor:
        """DARTS second order: grad_a L_val(w', a) - eta * (d2 L_train / da dw) grad_w' L_val, with
        w' = w - eta grad_w L_train and the Hessian-vector product by finite differences."""
        weights, alphas = self.net.weight_parameters(), self.net.arch_parameters()
        eta = self.w_opt.param_groups[0]["lr"]
        backup = [p.detach().clone() for p in weights]
        g = torch.autograd.grad(F.cross_entropy(self.net(xt), yt), weights, allow_unused=True)
        with torch.no_grad():
            for p, gi in zip(weights, g):
                if gi is not None:
                    p.sub_(eta * gi)
        loss = self.objective(F.cross_entropy(self.net(xv), yv))
        grads = torch.autograd.grad(loss, alphas + weights, allow_unused=True)
        d_alpha = [gi if gi is not None else torch.zeros_like(a) for gi, a in zip(grads[:len(alphas)], alphas)]
        vec = [gi if gi is not None else torch.zeros_like(p) for gi, p in zip(grads[len(alphas):], weights)]
        eps = 0.01 / (torch.sqrt(sum((v ** 2).sum() for v in vec)) + 1e-12)
        hess = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, v in zip(weights, backup, vec):
                    p.copy_(b + sign * eps * v)
            ga = torch.autograd.grad(F.cross_entropy(self.net(xt), yt), alphas, allow_unused=True)
            hess.append([gi if gi is not None else torch.zeros_like(a) for gi, a in zip(ga, alphas)])
        with torch.no_grad():
            for p, b in zip(weights, backup):
                p.copy_(b)
        for a, da, hp, hm in zip(alphas, d_alpha, *hess):
            a.grad = da - eta * (hp - hm) / (2 * eps)
        return loss.detach()

    @property
    def tau(self) -> float:
        c = self.cfg
        frac = self.epoch / max(c.epochs - 1, 1)
        return c.tau_start * (c.tau_end / c.tau_start) ** frac

    # -- derive, evaluate -------------------------------------------------------------
    def derive(self) -> Arch:
        return self.space.from_indices(self.net.derive_indices())

    def probabilities(self) -> list[list[float]]:
        """Each decision's probability of each option under the learnt architecture distribution."""
        return self.net.probabilities()

    def final_arch(self) -> Arch:
        """The run's answer, always connected and (if any connected architecture can) within every
        budget less the derivation margin: argmax when that is so, else (or with derive="budget")
        the most likely architecture that fills the first device's budget, checked against every
        predictor."""
        keep = 1.0 - self.cfg.derive_margin
        fill = self.cfg.fill

        def predicted(arch: Arch) -> list[float]:
            return [t.predict_one(arch) for t in self.targets]

        def fits(latencies: list[float]) -> bool:
            return all(t.meets(p / keep) for t, p in zip(self.targets, latencies))

        if self.cfg.derive == "argmax":
            arch = self.derive()
            if self.space.connected(arch) and fits(predicted(arch)):
                return arch
            fill = 0.0
        probs = self.probabilities()
        budget = float(self.targets[0].budget_ms) * keep
        fallback = self.derive()
        for _ in range(6):
            idx = derive(probs, self.options[0], budget, fill=fill,
                         accept=lambda i: self.space.connected(self.space.from_indices(i)),
                         predict=None if self.options[0].exact else self.targets[0].predict)
            if idx is None:
                break
            arch = fallback = self.space.from_indices(idx)
            latencies = predicted(arch)
            if fits(latencies):
                return arch
            budget /= max(p / (float(t.budget_ms) * keep) for t, p in zip(self.targets, latencies)) * 1.002
        return fallback

    def evaluate(self, arch: Arch, split: str = "val", calibration_batches: int = 10) -> float:
        """The sub-network's accuracy with the supernet's weights, its batch-norm statistics
        re-estimated first (the running averages belong to the mixture of paths, not to it)."""
        from hwnas.train import accuracy, recalibrated

        self.net.fix(list(arch.indices()))
        try:
            with recalibrated(self.net, self.data, calibration_batches, self.cfg.batch_size, self.device):
                return accuracy(self.net, self.data, split, self.device, channels_last=self.device.type == "cuda")
        finally:
            self.net.fix(None)

    def _to(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    # -- the loop -------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train to ``epochs`` (resuming from the run directory's checkpoint if any);
        ``stop_after`` ends early after that many epochs of this call (tests, time boxes)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.load_checkpoint()
        done_now = 0
        while self.epoch < self.cfg.epochs and (stop_after is None or done_now < stop_after):
            self._one_epoch()
            done_now += 1
        return self.result()

    def _one_epoch(self) -> None:
        c, e = self.cfg, self.epoch
        t0 = time.perf_counter()
        searching = e >= c.warmup_epochs
        val_loader = self.data.loader("val", c.batch_size, True, c.seed + 1, e)
        val = cycle(self.world.shard(val_loader, len(val_loader)))
        train_loader = self.data.loader("train", c.batch_size, True, c.seed, e)
        train = self.world.shard(train_loader, len(train_loader))
        losses, accs, arch_losses = [], [], []
        bar = tqdm(train, desc=f"{c.strategy} epoch {e + 1}/{c.epochs}" + ("" if searching else " (warm-up)"),
                   unit="batch", disable=not self.progress, leave=False, total=len(train_loader) // self.world.size)
        for x, y in bar:
            x, y = self._to(x, y)
            if searching:
                xv, yv = self._to(*next(val))
                arch_losses.append(self.arch_step(xv, yv, x, y))
            loss, acc = self.weight_step(x, y)
            losses.append(loss)
            accs.append(acc)
            bar.set_postfix(loss=f"{loss:.3f}", lat=f"{float(self.expected_ms()[0].detach()):.3f}ms")
        self.sched.step()
        self.epoch += 1
        self._agree()
        train_loss, train_acc = self.world.mean(float(np.mean(losses))), self.world.mean(float(np.mean(accs)))
        arch_loss = self.world.mean(float(np.mean(arch_losses))) if arch_losses else None
        if self.world.main:
            # scoring draws from torch's generator (a data loader's seed); training must not see
            # that, or a rank-0-only evaluation would make rank 0 sample other paths than the rest
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                self._log_epoch(searching, train_loss, train_acc, arch_loss, t0)
            self.save_checkpoint()

    def _log_epoch(self, searching: bool, train_loss: float, train_acc: float, arch_loss: float | None,
                   t0: float) -> None:
        arch = self.derive()
        record = {"epoch": self.epoch, "phase": "search" if searching else "warmup", "tau": self.tau,
                  "train_loss": train_loss, "train_acc": train_acc, "arch_loss": arch_loss,
                  "processes": self.world.size,
                  "val_acc": self.evaluate(arch, "val"),
                  "expected_ms": {t.name: float(v.detach()) for t, v in zip(self.targets, self.expected_ms())},
                  "arch": str(arch),
                  "arch_latency_ms": {t.name: t.predict_one(arch) for t in self.targets},
                  "latency_weights": self.tracker.state() if self.tracker is not None else None,
                  "probabilities": self.probabilities(), "seconds": time.perf_counter() - t0}
        with open(self.run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _agree(self) -> None:
        """Several processes: rank 0's batch-norm statistics for all, and a check that the
        weights and architecture parameters are the same everywhere."""
        if self.world.size == 1:
            return
        self.world.broadcast([b for b in self.net.buffers() if b.is_floating_point()])
        self.world.check_identical(self.net.arch_parameters(), "architecture parameters")
        self.world.check_identical(self.net.weight_parameters(), "weights")

    def result(self) -> dict[str, Any]:
        arch = self.final_arch()
        devices = []
        for t in self.targets:
            lat = t.predict_one(arch)
            devices.append({"device": t.name, "budget_ms": t.budget_ms, "predicted_ms": lat,
                            "meets_budget": t.meets(lat)})
        out = {"space": self.space.name, "preset": self.space.preset, "strategy": self.cfg.strategy,
               "arch": str(arch), "epochs": self.epoch, "devices": devices,
               "meets_all_budgets": all(d["meets_budget"] for d in devices),
               "supernet_val_acc": self.evaluate(arch, "val"), "config": asdict(self.cfg)}
        return out

    # -- checkpoints ----------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Rank 0 writes; the state holds nothing of the process count, so a run resumes on any."""
        if not self.world.main:
            return
        state = {"epoch": self.epoch, "net": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
                 "a_opt": self.a_opt.state_dict(), "sched": self.sched.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": torch.get_rng_state(),
                 "sampler_rng": self.net.sampler.get_state(),
                 "latency_weights": torch.tensor(self.tracker.state() if self.tracker is not None else [],
                                                dtype=torch.float64)}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        state.update(self._extra_state())
        tmp = self.run_dir / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.run_dir / "checkpoint.pt")

    def load_checkpoint(self) -> bool:
        path = self.run_dir / "checkpoint.pt"
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        try:
            self.net.load_state_dict(state["net"])
        except RuntimeError as e:
            raise HwnasError(f"{path} holds a supernet this version cannot resume ({str(e).splitlines()[0]}); "
                             "search into a new run directory, or delete the checkpoint to start over") from None
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sched.load_state_dict(state["sched"])
        self.scaler.load_state_dict(state["scaler"])
        if self.tracker is not None and len(state.get("latency_weights", [])):
            self.tracker.load(state["latency_weights"].tolist())
        torch.set_rng_state(state["rng"].cpu())
        if "sampler_rng" in state:
            self.net.sampler.set_state(state["sampler_rng"].cpu())
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self._load_extra(state)
        self.epoch = int(state["epoch"])
        return True

    def _extra_state(self) -> dict[str, Any]:
        """What a subclass adds to the checkpoint (tensors, numbers, dicts of them: no pickles)."""
        return {}

    def _load_extra(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_extra_state` saved."""


def make_search(space: SearchSpace, targets: list[Target], data: Splits, config: SearchConfig,
                run_dir: str | Path, **kwargs: Any) -> DifferentiableSearch:
    """The search that trains ``config.strategy``'s supernet: a controller-driven one (ENAS) or
    the relaxed architecture parameters of the differentiable modes."""
    if getattr(STRATEGIES[config.strategy], "controller", False):
        from hwnas.supernet.enas import EnasSearch

        return EnasSearch(space, targets, data, config, run_dir, **kwargs)
    return DifferentiableSearch(space, targets, data, config, run_dir, **kwargs)
