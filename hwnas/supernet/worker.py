"""Train one supernet on N processes: the launcher (:func:`train_distributed`) and the
process torchrun starts (``python -m hwnas.supernet.worker RUN_DIR``).

The search's own process writes what the training needs into ``RUN_DIR/distributed.json``
(the space as a recipe, the data, the settings, each device's per-option latencies and
budget: numbers only, never a pickle), starts ``torchrun --standalone --nproc_per_node N``
on it and waits. The processes train together (:mod:`hwnas.supernet.distributed`); rank 0
writes the checkpoint and ``log.jsonl`` every epoch. The search's process then resumes the
finished checkpoint and derives the answer with the full latency models, exactly as after
a single-process search; an interrupted run resumes with any number of processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.files import read_json, write_atomic
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.option_table import OptionTable
from hwnas.target import Target

SPEC = "distributed.json"


class OptionLatency:
    """A latency model that is its per-option table (what the training processes need of a
    target: the expected-latency loss, and the epoch log's latency of the current argmax)."""

    def __init__(self, space: SearchSpace, table: OptionTable) -> None:
        self.space, self.table = space, table

    def predict(self, archs: Sequence[Any] | np.ndarray) -> np.ndarray:
        idx = archs if isinstance(archs, np.ndarray) else self.space.index_matrix(list(archs))
        return self.table.total(idx)

    def option_latency(self) -> OptionTable:
        return self.table


def train_distributed(nproc: int, run_dir: Path, space: SearchSpace, targets: list[Target], data: dict[str, Any],
                      config: Any, proxy: SearchSpace | None = None, stop_after: int | None = None,
                      progress: bool = True) -> None:
    """Train the supernet of ``run_dir`` on ``nproc`` processes to ``config.epochs`` (or
    ``stop_after`` more epochs). ``data``: ``{"name", "data_dir", "seed"}`` as ``load`` takes them."""
    if nproc < 2:
        raise HwnasError(f"distributed training needs 2 or more processes, not {nproc}")
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in asdict(config).items() if k != "torch_device"}
    spec = {"space_recipe": space.recipe(), "proxy_recipe": proxy.recipe() if proxy else None, "data": data,
            "config": settings, "stop_after": stop_after, "progress": progress,
            "targets": [{"name": t.name, "budget_ms": t.budget_ms, "options": t.option_latency().to_json()}
                        for t in targets]}
    write_atomic(run_dir / SPEC, json.dumps(spec, indent=1))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "hwnas.supernet.worker", str(run_dir)]
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise HwnasError(f"the {nproc} training processes stopped with exit code {done.returncode} (their output is "
                         f"above); run the same command again to resume from the last epoch's checkpoint")


def main(argv: list[str] | None = None) -> int:
    import torch.distributed as dist

    from hwnas.data.datasets import load
    from hwnas.spaces.stored import space_from_recipe
    from hwnas.supernet.distributed import World
    from hwnas.supernet.search import DifferentiableSearch, SearchConfig

    run_dir = Path((argv or sys.argv[1:])[0])
    spec = read_json(run_dir / SPEC, "distributed training spec", "start it with hwnas search --nproc N")
    world = World.join()
    try:
        space = space_from_recipe(spec["space_recipe"], str(run_dir / SPEC))
        proxy = space_from_recipe(spec["proxy_recipe"], str(run_dir / SPEC)) if spec["proxy_recipe"] else None
        trained = proxy or space
        d = spec["data"]
        data = load(d["name"], d.get("data_dir"), resolution=trained.input_shape()[1], seed=d.get("seed", 0))
        targets = [Target(t["name"], OptionLatency(space, OptionTable.from_json(t["options"])), t["budget_ms"])
                   for t in spec["targets"]]
        cfg = SearchConfig(**spec["config"], torch_device=world.device())
        search = DifferentiableSearch(space, targets, data, cfg, run_dir, progress=spec["progress"], proxy=proxy,
                                      world=world)
        search.run(stop_after=spec["stop_after"])
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
