"""Random search: uniform, without repeats (the baseline every strategy must beat)."""

from __future__ import annotations

from hwnas.spaces.base import Arch
from hwnas.strategies.base import Strategy, Trial, register_strategy


@register_strategy
class RandomSearch(Strategy):
    name = "random"
    asynchronous = True

    def ask(self, n: int = 1) -> list[Arch]:
        return [self.fresh(self.random_arch) for _ in range(n)]

    def _tell(self, trials: list[Trial]) -> None:
        pass
