"""Supernet training on several processes (gloo on this CPU): two real processes started by
torchrun train one epoch of a path-sampling search together, the run resumes on one
process, the processes' disagreement is detected, and ``hwnas search --nproc 2`` runs the
whole job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hwnas.data.datasets import load
from hwnas.errors import HwnasError
from hwnas.job.recipe import SearchRecipe
from hwnas.paths import REPO_ROOT
from hwnas.spaces import get_space
from hwnas.spaces.option_table import OptionTable
from hwnas.supernet.distributed import World
from hwnas.supernet.search import DifferentiableSearch, SearchConfig
from hwnas.supernet.worker import OptionLatency, train_distributed
from hwnas.target import Target

TABLE = REPO_ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"


def test_two_processes_train_one_epoch_then_one_process_resumes(tmp_path: Path) -> None:
    # a small NAS-Bench-201 skeleton and per-option latencies made up for it: the test is about
    # training, not latency
    space = get_space("nb201", resolution=8, channels=4, cells_per_stage=1)
    costs = OptionTable(1.0, [np.array([0.0, 0.1, 0.5, 1.0, 0.3]) for _ in space.decisions()])
    target = Target("made-up", OptionLatency(space, costs), 3.0)
    # batch 48: 719 training images make 15 batches, the last one of 47, so the two processes
    # see batches of different sizes but must still sample the same paths
    cfg = SearchConfig(strategy="gdas", epochs=2, warmup_epochs=0, batch_size=48, torch_device="cpu")
    data = {"name": "digits", "data_dir": None, "seed": 0}
    train_distributed(2, tmp_path, space, [target], data, cfg, stop_after=1, progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["processes"] == 2 and (tmp_path / "checkpoint.pt").is_file()
    after_two = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    search = DifferentiableSearch(space, [target], load("digits", resolution=8), cfg, tmp_path, progress=False)
    out = search.run()  # resumes the two processes' checkpoint, one process from here
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["processes"] for r in log] == [2, 1] and out["epochs"] == 2
    assert not torch.equal(after_two["net"]["alphas.0"], search.net.alphas[0].detach())  # it went on searching
    assert out["meets_all_budgets"] and space.connected(space.parse(out["arch"]))


def _disagree(rank: int, store: str, errors: "mp.Queue") -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    world = World.current()
    try:
        world.check_identical([torch.ones(3)], "weights")  # the same: passes
        world.check_identical([torch.full((3,), float(rank))], "weights")
    except HwnasError as e:
        errors.put(str(e))
    finally:
        dist.destroy_process_group()


def test_processes_that_disagree_are_stopped(tmp_path: Path) -> None:
    errors = mp.get_context("spawn").Queue()
    mp.start_processes(_disagree, args=(str(tmp_path / "store"), errors), nprocs=2, start_method="spawn")
    said = [errors.get(timeout=60) for _ in range(2)]
    assert all("the processes' weights differ" in s for s in said)


def test_world_shards_batches_evenly() -> None:
    batches = list(range(7))
    assert [list(World(r, 2).shard(batches, 7)) for r in (0, 1)] == [[0, 2, 4], [1, 3, 5]]
    assert list(World().shard(batches, 7)) == batches


def _hwnas(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "hwnas.cli.main", *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd, env=env)


def test_cli_search_on_two_processes(tmp_path: Path) -> None:
    r = _hwnas("search", "--strategy", "proxyless", "--space", "mbv2", "--preset", "small", "--lut", str(TABLE),
               "--budget-quantile", "0.5", "--data", "digits", "--epochs", "1", "--warmup-epochs", "0", "--quiet",
               "--batch-size", "240", "--nproc", "2", "-o", str(tmp_path / "run"), cwd=tmp_path)
    assert r.returncode in (0, 3), r.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["processes"] for x in log] == [2]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["strategy"] == "proxyless"


def test_recipe_takes_nproc_for_supernets_and_lets_a_resume_change_it() -> None:
    flags = {"strategy": "gdas", "space": "mbv2", "preset": "small", "lut": [str(TABLE)], "budget_ms": [0.2],
             "output": "run"}
    stored = SearchRecipe.parse(flags={**flags, "nproc": 2}).to_json()
    assert SearchRecipe.parse(flags={**flags, "nproc": 1}).differences(stored) == []
    with pytest.raises(HwnasError, match="applies to the differentiable modes, not to evolution"):
        SearchRecipe.parse(flags={**flags, "strategy": "evolution", "nproc": 2})
    with pytest.raises(HwnasError, match="--nproc .* must be in \\[1, inf\\)"):
        SearchRecipe.parse(flags={**flags, "nproc": 0})
