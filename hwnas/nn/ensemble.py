"""An ensemble of small MLP regressors trained together: the surrogate of BANANAS and PNAS.

The members differ only in their random initialisation (as in BANANAS, White et al. 2021);
their spread is the uncertainty an acquisition function uses. All members train at once,
as batched matrix products over a leading member axis, full batch with Adam on the mean
squared error of standardised targets, on one thread (the tensors are tiny). A seed fixes
the result, so a strategy that fits one after every batch resumes exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from hwnas.nn.controller import single_thread


class MLPEnsemble:
    """``members`` MLPs with ``hidden`` widths and ReLU; ``fit(x, y)`` then ``predict(x)``."""

    def __init__(self, members: int = 5, hidden: tuple[int, ...] = (32, 32), steps: int = 300, lr: float = 0.01,
                 weight_decay: float = 1e-4, seed: int = 0) -> None:
        if members < 1 or steps < 1 or lr <= 0 or not hidden or min(hidden) < 1:
            raise ValueError("an ensemble needs members >= 1, steps >= 1, lr > 0 and hidden widths >= 1")
        self.members, self.hidden, self.steps, self.lr = members, tuple(hidden), steps, lr
        self.weight_decay, self.seed = weight_decay, seed
        self.params: list[torch.Tensor] = []
        self.y_mean, self.y_std = 0.0, 1.0

    def _init(self, d: int, gen: torch.Generator) -> None:
        widths = (d, *self.hidden, 1)
        self.params = []
        for a, b in zip(widths[:-1], widths[1:]):
            bound = 1.0 / np.sqrt(a)  # torch.nn.Linear's default initialisation
            w = (torch.rand(self.members, a, b, generator=gen) * 2 - 1) * bound
            bias = (torch.rand(self.members, 1, b, generator=gen) * 2 - 1) * bound
            self.params += [w.requires_grad_(), bias.requires_grad_()]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(self.members, *x.shape)
        last = len(self.params) // 2 - 1
        for k in range(0, len(self.params), 2):
            h = torch.baddbmm(self.params[k + 1], h, self.params[k])
            if k // 2 < last:
                h = torch.relu(h)
        return h.squeeze(-1)  # (members, n)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "MLPEnsemble":
        x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or len(x) != len(y) or len(y) < 1:
            raise ValueError(f"fit needs a 2-d x and one target per row, got x {x.shape} and y {y.shape}")
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        with single_thread():
            gen = torch.Generator().manual_seed(self.seed)
            self._init(x.shape[1], gen)
            xt = torch.from_numpy(x)
            yt = torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
            opt = torch.optim.Adam(self.params, lr=self.lr, weight_decay=self.weight_decay)
            for _ in range(self.steps):
                opt.zero_grad()
                loss = ((self._forward(xt) - yt) ** 2).mean()
                loss.backward()
                opt.step()
        return self

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """(members, n) predictions in the targets' units."""
        if not self.params:
            raise RuntimeError("the ensemble is not fitted: call fit(x, y) first")
        with single_thread(), torch.no_grad():
            out = self._forward(torch.from_numpy(np.asarray(x, dtype=np.float32))).double().numpy()
        return out * self.y_std + self.y_mean

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the members, each of shape (n,)."""
        p = self.predict_members(x)
        return p.mean(axis=0), p.std(axis=0)
