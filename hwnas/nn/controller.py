"""The REINFORCE controller's network (:mod:`hwnas.strategies.reinforce`): an LSTM that emits
an architecture's decisions one by one, its policy-gradient step, and its state as JSON."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn


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


class Policy:
    """The controller with its Adam optimiser, seeded; numbers in, numbers out."""

    def __init__(self, sizes: list[int], hidden: int, lr: float, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
            self.controller = Controller(sizes, hidden)
        self.opt = torch.optim.Adam(self.controller.parameters(), lr=lr)

    @torch.no_grad()
    def decode(self, pick: Callable[[np.ndarray], int]) -> list[int]:
        """Run the controller decision by decision, ``pick`` choosing from the probabilities."""
        ctl = self.controller
        x = ctl.start
        hc = (torch.zeros_like(x), torch.zeros_like(x))
        idx: list[int] = []
        for i in range(len(ctl.sizes)):
            logits, hc = ctl.step_logits(x, hc, i)
            idx.append(pick(torch.softmax(logits[0].double(), -1).numpy()))
            x = ctl.embed[i](torch.tensor([idx[-1]]))
        return idx

    def step(self, idx: np.ndarray, advantages: list[float], entropy: float) -> None:
        """One policy-gradient step: -(advantage · log p(arch)) minus the entropy bonus."""
        rows = torch.tensor(idx, dtype=torch.long)
        logp = torch.zeros(len(rows))
        ent = torch.zeros(len(rows))
        for i, lg in enumerate(self.controller.logits(rows)):
            lsm = torch.log_softmax(lg, -1)
            logp = logp + lsm.gather(1, rows[:, i:i + 1]).squeeze(1)
            ent = ent - (lsm.exp() * lsm).sum(-1)
        adv = torch.tensor(advantages, dtype=torch.float32)
        loss = -(adv * logp).mean() - entropy * ent.mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def state(self) -> dict[str, Any]:
        return {"controller": _tensors_to_json(self.controller.state_dict()),
                "opt": _tensors_to_json(self.opt.state_dict())}

    def load(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(_json_to_tensors(state["controller"]))
        opt = _json_to_tensors(state["opt"])
        opt["state"] = {int(k): v for k, v in opt["state"].items()}
        self.opt.load_state_dict(opt)
