"""Supernet training on several processes: data parallel, with torch.distributed.

Every process holds the whole supernet and takes its own share of each epoch's batches
(training and validation); after every backward pass the gradients are averaged across
processes with one all-reduce, so every process takes the same optimiser step: the weights
and the architecture parameters stay identical, and N processes at batch B follow the curve
of one process at batch N·B. Path sampling (ProxylessNAS, GDAS) draws from torch's random
generator, seeded alike on every process and consumed alike, so every process samples the
same path at every step, as one process would.

This is DistributedDataParallel's scheme written with its collectives rather than its
module wrapper: the search alternates weight and architecture steps on two parameter
groups, leaves most weights unused in a path-sampling step, and the second-order DARTS step
differentiates with ``torch.autograd.grad``, which the wrapper does not support. Batch-norm
statistics are each process's own during an epoch and rank 0's after it (broadcast), as
the wrapper's ``broadcast_buffers`` does. At the end of every epoch the processes check
that their architecture parameters and weights agree, and stop with an error if not.

gloo on the CPU, NCCL on CUDA (one GPU per process, by local rank).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator, TypeVar

import torch
import torch.distributed as dist

from hwnas.errors import HwnasError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the processes training one supernet (rank 0 of 1 alone)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 logs, checkpoints and derives."""
        return self.rank == 0

    @classmethod
    def current(cls) -> "World":
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @classmethod
    def join(cls) -> "World":
        """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ...), once."""
        if "WORLD_SIZE" not in os.environ:
            raise HwnasError("not started by torchrun (no WORLD_SIZE); use hwnas search --nproc N")
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend)
        return cls.current()

    def device(self) -> str:
        return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"

    # -- data -----------------------------------------------------------------------
    def shard(self, batches: Iterable[T], count: int) -> Iterator[T]:
        """This process's batches: every size-th of ``count``, from its rank on; each process
        gets count // size of them, so every process takes the same number of steps."""
        keep = (count // self.size) * self.size if self.size > 1 else count
        for i, b in enumerate(batches):
            if i >= keep:
                return
            if i % self.size == self.rank:
                yield b

    # -- collectives ----------------------------------------------------------------
    def average(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its mean over the processes (one all-reduce)."""
        if self.size == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1).float() for t in tensors])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t).to(t.dtype))
            offset += t.numel()

    def mean(self, value: float) -> float:
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device())
        dist.all_reduce(t)
        return float(t) / self.size

    def broadcast(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values to every process."""
        if self.size == 1:
            return
        for t in tensors:
            dist.broadcast(t, 0)

    def check_identical(self, tensors: list[torch.Tensor], what: str) -> None:
        """Raise when ``tensors`` differ between processes (compared by a checksum each)."""
        if self.size == 1:
            return
        mine = torch.stack([t.detach().double().sum() for t in tensors] + [torch.zeros((), dtype=torch.float64,
                                                                                      device=tensors[0].device)])
        everyone = [torch.zeros_like(mine) for _ in range(self.size)]
        dist.all_gather(everyone, mine)
        spread = max(float((e - everyone[0]).abs().max()) for e in everyone)
        if spread > 1e-6 * (1.0 + float(everyone[0].abs().max())):
            raise HwnasError(f"the processes' {what} differ (checksum spread {spread:.3g}): a process sampled "
                             "another path or skipped a step; report this with the command")
