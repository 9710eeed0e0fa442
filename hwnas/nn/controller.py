"""The controller network of :mod:`hwnas.strategies.reinforce` and :mod:`hwnas.strategies.ppo`:
an LSTM that emits an architecture's decisions one by one, its policy-gradient and PPO
steps, and its state as JSON."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

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


@contextmanager
def single_thread() -> Iterator[None]:
    """torch on one intra-op thread while the block runs: the controller's tensors are tiny, and
    a thread pool sized for the machine spins and stalls when another job holds the cores."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


class MovingBaseline:
    """REINFORCE's baseline: advantages are the reward minus an exponential moving average of
    the reward, over the root of a moving average of the squared advantage (rewards such as
    accuracy cluster in a narrow band, so unscaled advantages barely move the policy)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.mean: float | None = None
        self.variance = 0.0

    def advantages(self, rewards: Iterable[float]) -> list[float]:
        """The rewards' advantages, updating the averages as it goes."""
        out = []
        d = self.decay
        for r in rewards:
            if self.mean is None:
                self.mean = r
            adv = r - self.mean
            self.variance = d * self.variance + (1 - d) * adv * adv
            self.mean = d * self.mean + (1 - d) * r
            out.append(adv / (np.sqrt(self.variance) + 1e-8) if self.variance > 0 else 0.0)
        return out


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
        with single_thread():
            return self._decode(pick)

    def _decode(self, pick: Callable[[np.ndarray], int]) -> list[int]:
        ctl = self.controller
        x = ctl.start
        hc = (torch.zeros_like(x), torch.zeros_like(x))
        idx: list[int] = []
        for i in range(len(ctl.sizes)):
            logits, hc = ctl.step_logits(x, hc, i)
            idx.append(pick(torch.softmax(logits[0].double(), -1).numpy()))
            x = ctl.embed[i](torch.tensor([idx[-1]]))
        return idx

    def log_probs(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(arch) and the policy's entropy, per index row (differentiable)."""
        rows = torch.tensor(idx, dtype=torch.long)
        logp = torch.zeros(len(rows))
        ent = torch.zeros(len(rows))
        for i, lg in enumerate(self.controller.logits(rows)):
            lsm = torch.log_softmax(lg, -1)
            logp = logp + lsm.gather(1, rows[:, i:i + 1]).squeeze(1)
            ent = ent - (lsm.exp() * lsm).sum(-1)
        return logp, ent

    def step(self, idx: np.ndarray, advantages: list[float], entropy: float) -> None:
        """One policy-gradient step: -(advantage · log p(arch)) minus the entropy bonus."""
        with single_thread():
            logp, ent = self.log_probs(idx)
            adv = torch.tensor(advantages, dtype=torch.float32)
            self._apply(-(adv * logp).mean() - entropy * ent.mean())

    def ppo_steps(self, idx: np.ndarray, advantages: list[float], entropy: float, clip: float, epochs: int) -> None:
        """PPO (Schulman et al. 2017) as NASNet trains its controller: ``epochs`` steps on the
        clipped surrogate -min(ρ A, clip(ρ, 1 ± clip) A), ρ = p(arch) / p_old(arch), p_old the
        policy that sampled the batch, minus the entropy bonus."""
        with single_thread():
            with torch.no_grad():
                old, _ = self.log_probs(idx)
            adv = torch.tensor(advantages, dtype=torch.float32)
            for _ in range(epochs):
                logp, ent = self.log_probs(idx)
                ratio = torch.exp(logp - old)
                surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
                self._apply(-surrogate.mean() - entropy * ent.mean())

    def _apply(self, loss: torch.Tensor) -> None:
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
