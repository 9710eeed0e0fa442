"""REINFORCE with an LSTM controller (Zoph & Le 2017; ENAS, Pham et al. 2018).

The controller emits the architecture's decisions one by one: at each step an LSTM cell
reads the embedding of the previous choice and a per-decision head gives the logits of
this decision's options (``tanh_c · tanh(logits)``, as in ENAS). After each batch of
told trials the policy gradient ``-(R - b)·log p(arch)`` minus an entropy bonus is
applied, with ``b`` an exponential moving average of the reward and the advantage
divided by a moving standard deviation of the reward (rewards such as accuracy cluster in a
narrow band, so unscaled advantages barely move the policy). Candidates a hard budget
rejected get reward 0 (the worst accuracy), so the controller learns to avoid them.

Sampling draws from the strategy's numpy RNG, so the whole state (weights, Adam moments,
baseline, RNG) is JSON and a resumed search equals an uninterrupted one.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import Strategy, Trial, register_strategy


class Controller(nn.Module):
    def __init__(self, sizes: list[int], hidden: int = 64, tanh_c: float = 2.5) -> None:
        super().__init__()
        self.sizes, self.tanh_c = sizes, tanh_c
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.ModuleList(nn.Embedding(k, hidden) for k in sizes)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in sizes)

    def logits(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every decision for a batch of index rows (teacher forcing)."""
        n = idx.shape[0]
        x = self.start.expand(n, -1)
        h = c = torch.zeros_like(x)
        out = []
        for i, head in enumerate(self.heads):
            h, c = self.cell(x, (h, c))
            out.append(self.tanh_c * torch.tanh(head(h)))
            x = self.embed[i](idx[:, i])
        return out

    def step_logits(self, x: torch.Tensor, hc: tuple[torch.Tensor, torch.Tensor], i: int
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = self.cell(x, hc)
        return self.tanh_c * torch.tanh(self.heads[i](h)), (h, c)


def _tensors_to_json(d: dict[str, Any]) -> Any:
    if isinstance(d, torch.Tensor):
        return {"__tensor__": d.tolist(), "dtype": str(d.dtype).removeprefix("torch.")}
    if isinstance(d, dict):
        return {str(k): _tensors_to_json(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_tensors_to_json(v) for v in d]
    return d


def _json_to_tensors(d: Any) -> Any:
    if isinstance(d, dict) and "__tensor__" in d:
        return torch.tensor(d["__tensor__"], dtype=getattr(torch, d["dtype"]))
    if isinstance(d, dict):
        return {k: _json_to_tensors(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_json_to_tensors(v) for v in d]
    return d


@register_strategy
class Reinforce(Strategy):
    name = "reinforce"

    def __init__(self, space: SearchSpace, seed: int = 0, lr: float = 0.05, entropy: float = 1e-3,
                 baseline_decay: float = 0.9, hidden: int = 64) -> None:
        super().__init__(space, seed)
        self.lr, self.entropy, self.baseline_decay, self.hidden = lr, entropy, baseline_decay, hidden
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
            self.controller = Controller([len(d.choices) for d in space.decisions()], hidden)
        self.opt = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.baseline: float | None = None
        self.variance = 0.0

    def params(self) -> dict[str, Any]:
        return {"lr": self.lr, "entropy": self.entropy, "baseline_decay": self.baseline_decay, "hidden": self.hidden}

    @torch.no_grad()
    def _decode(self, pick: Callable[[np.ndarray], int]) -> Arch:
        """Run the controller decision by decision, ``pick`` choosing from the probabilities."""
        ctl = self.controller
        x = ctl.start
        hc = (torch.zeros_like(x), torch.zeros_like(x))
        idx = []
        for i in range(len(ctl.sizes)):
            logits, hc = ctl.step_logits(x, hc, i)
            idx.append(pick(torch.softmax(logits[0].double(), -1).numpy()))
            x = ctl.embed[i](torch.tensor([idx[-1]]))
        return self.space.from_indices(idx)

    def _sample(self) -> Arch:
        return self._decode(lambda p: int(self.rng.choice(len(p), p=p / p.sum())))

    def greedy(self) -> Arch:
        """The controller's most likely architecture."""
        return self._decode(lambda p: int(np.argmax(p)))

    def ask(self, n: int = 1) -> list[Arch]:
        return [self.fresh(self._sample, tries=20) for _ in range(n)]

    def _tell(self, trials: list[Trial]) -> None:
        if not trials:
            return
        rewards = np.array([0.0 if t.reward is None else t.reward for t in trials])
        advantages = []
        d = self.baseline_decay
        for r in rewards:
            if self.baseline is None:
                self.baseline = float(r)
            adv = float(r) - self.baseline
            self.variance = d * self.variance + (1 - d) * adv * adv
            self.baseline = d * self.baseline + (1 - d) * float(r)
            advantages.append(adv / (np.sqrt(self.variance) + 1e-8) if self.variance > 0 else 0.0)
        idx = torch.tensor(self.space.index_matrix([t.arch for t in trials]), dtype=torch.long)
        logp = torch.zeros(len(trials))
        ent = torch.zeros(len(trials))
        for i, lg in enumerate(self.controller.logits(idx)):
            lsm = torch.log_softmax(lg, -1)
            logp = logp + lsm.gather(1, idx[:, i:i + 1]).squeeze(1)
            ent = ent - (lsm.exp() * lsm).sum(-1)
        adv = torch.tensor(advantages, dtype=torch.float32)
        loss = -(adv * logp).mean() - self.entropy * ent.mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def _state(self) -> dict[str, Any]:
        return {"controller": _tensors_to_json(self.controller.state_dict()),
                "opt": _tensors_to_json(self.opt.state_dict()), "baseline": self.baseline,
                "variance": self.variance}

    def _load(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(_json_to_tensors(state["controller"]))
        opt = _json_to_tensors(state["opt"])
        opt["state"] = {int(k): v for k, v in opt["state"].items()}
        self.opt.load_state_dict(opt)
        self.baseline = state["baseline"]
        self.variance = float(state["variance"])
