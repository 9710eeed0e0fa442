"""One differentiable search's settings, :class:`SearchConfig`: a module of its own, without
torch, so that the search recipe (:mod:`hwnas.job.recipe`) takes its defaults from here
instead of writing them again."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from hwnas.errors import HwnasError


def _torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


SANDWICH = {
    "ce": "the largest path on the labels, beside the sampled path",
    "distill": "the largest path on the labels, the sampled path on the largest path's predictions "
               "(in-place distillation)",
}
"""The sandwich rule of slimmable networks, Once-for-All and BigNAS for path-sampling modes: a
path resampled every step leaves the shared weights of a cell space near chance on a task that
needs several convolutions to learn, because few sampled paths can fit it; the largest path,
trained every step as well, gives those weights something to learn. Whether a search gains
from it is measured by ``tools/bench_cells.py --sandwich`` (the README: not here, yet)."""


@dataclass
class SearchConfig:
    """One differentiable search's settings (the job fills them from the recipe)."""

    strategy: str = "proxyless"
    #: the latency loss (:mod:`hwnas.supernet.losses`) and its constants
    loss: str = "mul#log"
    alpha: float = 0.2
    beta: float = 0.3
    lam: float = 1.0
    epochs: int = 10
    warmup_epochs: int = 2
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 4e-5
    arch_lr: float = 6e-3
    arch_weight_decay: float = 0.0
    unrolled: bool = False
    #: PC-DARTS: searched layers see 1/K of the channels (memory); 1 is the full mixture
    partial_channels: int = 1
    #: scale the latency term by a weight that tracks the budget (dual ascent) instead of a fixed one
    budget_tracking: bool = False
    tracking_rate: float = 0.5
    #: the sandwich rule (:data:`SANDWICH`): each weight step also trains the space's largest path
    sandwich: str | None = None
    #: "argmax", or "budget": the most likely architecture with latency in [fill × budget, budget]
    derive: str = "argmax"
    fill: float = 0.9
    #: derive under (1 - margin) x budget: room for the predictor's error (e.g. its hold-out error)
    derive_margin: float = 0.0
    #: Gumbel-softmax temperature (gdas), annealed geometrically over the epochs
    tau_start: float = 5.0
    tau_end: float = 0.5
    #: ENAS: the controller's REINFORCE steps per epoch, and its reward's latency exponent (MnasNet's w)
    controller_steps: int = 30
    mnas_w: float = -0.07
    seed: int = 0
    torch_device: str = field(default_factory=_torch_device)

    @classmethod
    def of(cls, settings: Any, **overrides: Any) -> "SearchConfig":
        """The config whose fields take the values of ``settings``'s attributes of the same name
        (a search recipe, parsed arguments), then ``overrides``: a new setting is declared where
        the user sets it and here, and wired by its name."""
        names = {f.name for f in fields(cls)}
        values = {n: getattr(settings, n) for n in names if hasattr(settings, n)}
        return cls(**{**values, **overrides})

    def __post_init__(self) -> None:
        from hwnas.strategies.base import STRATEGIES, strategy_names
        from hwnas.supernet.derive import DERIVATIONS
        from hwnas.supernet.losses import LOSSES

        modes = strategy_names("differentiable")
        if self.strategy not in modes:
            raise HwnasError(f"unknown differentiable strategy {self.strategy!r}; use one of {', '.join(modes)}")
        LOSSES[self.loss]  # refuses an unknown loss, naming the known ones
        if self.derive not in DERIVATIONS:
            raise HwnasError(f"derive must be one of {', '.join(DERIVATIONS)}, not {self.derive!r}")
        if self.unrolled and not STRATEGIES[self.strategy].second_order:
            second = [n for n in modes if STRATEGIES[n].second_order]
            raise HwnasError(f"--unrolled (second-order) applies to {', '.join(second)} only")
        if getattr(STRATEGIES[self.strategy], "controller", False) and self.budget_tracking:
            raise HwnasError(f"{self.strategy}'s latency term is its reward's exponent (--mnas-w), not a loss weight; "
                             "drop --budget-tracking")
        if self.controller_steps < 1 or self.mnas_w > 0:
            raise HwnasError(f"controller steps must be >= 1 (got {self.controller_steps}) and the latency exponent "
                             f"<= 0 (got {self.mnas_w})")
        if self.sandwich is not None:
            if self.sandwich not in SANDWICH:
                raise HwnasError(f"--sandwich must be one of {', '.join(SANDWICH)}, not {self.sandwich!r}")
            if not STRATEGIES[self.strategy].samples_paths:
                sampling = [n for n in modes if STRATEGIES[n].samples_paths]
                raise HwnasError(f"--sandwich trains the largest path beside the sampled one, which {self.strategy} "
                                 f"does not sample; it applies to {', '.join(sampling)}")
        if self.partial_channels < 1:
            raise HwnasError(f"--partial-channels is a channel divisor >= 1 (1: the full mixture), not "
                             f"{self.partial_channels}")
        if not 0.0 <= self.derive_margin < 1.0:
            raise HwnasError(f"the derivation margin is a fraction of the budget in [0, 1), not {self.derive_margin}")
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs + 1:
            raise HwnasError(f"epochs must be >= 1 (got {self.epochs}) and warm-up epochs between 0 and the epochs "
                             f"(got {self.warmup_epochs})")
