"""ENAS: the controller and the shared weights trained in turn, on both spaces, on tiny data."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from hwnas.data.datasets import Splits, load
from hwnas.errors import HwnasError
from hwnas.job.recipe import SearchRecipe
from hwnas.predictors import FlopsPredictor
from hwnas.spaces import get_space
from hwnas.supernet.enas import EnasSearch
from hwnas.supernet.search import SearchConfig, make_search
from hwnas.target import Target

HWNAS = str(Path(sys.executable).parent / "hwnas")
TABLE = Path(__file__).resolve().parent.parent / "latency_tables" / "mbv2-small.cpu-ort.lut.json"


def few(data: Splits, n: int) -> Splits:
    return dataclasses.replace(data, train=Subset(data.train, range(n)), val=Subset(data.val, range(n)),
                               test=Subset(data.test, range(min(n, len(data.test)))))


@pytest.fixture(scope="module")
def cell() -> tuple:
    space = get_space("nb201", resolution=8, channels=8, cells_per_stage=1)
    archs = space.sample(60, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    return space, few(load("digits", resolution=8), 256), pred


def config(**kw: object) -> SearchConfig:
    base = dict(strategy="enas", epochs=2, warmup_epochs=0, batch_size=64, torch_device="cpu", controller_steps=4)
    return SearchConfig(**{**base, **kw})


def sampled_ms(search: EnasSearch, pred: FlopsPredictor, n: int = 300) -> float:
    g = torch.Generator().manual_seed(5)
    return float(np.mean(pred.predict([search.space.from_indices(search.sample(g)) for _ in range(n)])))


def test_enas_is_a_controller_search_and_its_reward_pulls_latency_down(cell, tmp_path: Path) -> None:
    """A strong latency exponent: the controller's samples get faster; the shared weights learn."""
    space, data, pred = cell
    budget = pred.option_latency().quantile(space, 0.3)
    s = make_search(space, [Target("flops", pred, budget)], data, config(mnas_w=-2.0, arch_lr=0.02,
                                                                         controller_steps=8), tmp_path, progress=False)
    assert isinstance(s, EnasSearch)
    before = sampled_ms(s, pred)
    result = s.run()
    assert sampled_ms(s, pred) < 0.8 * before
    log = [json.loads(line) for line in open(tmp_path / "log.jsonl")]
    assert [r["epoch"] for r in log] == [1, 2] and all(r["arch_loss"] is not None for r in log)
    assert log[-1]["train_acc"] > 0.15  # ten classes: the sampled paths train
    probs = s.probabilities()
    assert all(len(p) == 5 and sum(p) == pytest.approx(1.0) for p in probs)
    found = space.parse(result["arch"])
    assert space.connected(found) and pred.predict([found])[0] <= budget and result["meets_all_budgets"]


def test_enas_resume_reproduces_the_uninterrupted_run(cell, tmp_path: Path) -> None:
    space, data, pred = cell
    target = Target("flops", pred, pred.option_latency().quantile(space, 0.5))

    def make(d: Path) -> EnasSearch:
        return make_search(space, [target], data, config(epochs=2, warmup_epochs=1, seed=4), d, progress=False)

    whole = make(tmp_path / "a")
    whole.run()
    first = make(tmp_path / "b")
    first.run(stop_after=1)
    resumed = make(tmp_path / "b")
    resumed.run()
    for (k, v), (k2, v2) in zip(whole.net.state_dict().items(), resumed.net.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    for v, v2 in zip(whole.policy.controller.state_dict().values(), resumed.policy.controller.state_dict().values()):
        assert torch.equal(v, v2)
    assert whole.baseline.mean == resumed.baseline.mean and whole.sample() == resumed.sample()


def test_enas_on_the_chain_space_with_an_impossible_budget_falls_back(tmp_path: Path) -> None:
    """mbv2: the controller samples a block per decision; a budget no sample meets still derives
    the base derivation's answer (the cheapest the controller's marginals allow)."""
    space = get_space("mbv2", "small", resolution=16)
    archs = space.sample(40, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    smallest = pred.option_latency().smallest()
    s = make_search(space, [Target("flops", pred, smallest * 1.001)], few(load("digits", resolution=16), 128),
                    config(epochs=1, controller_steps=2), tmp_path, progress=False)
    result = s.run()
    assert result["strategy"] == "enas" and len(s.derive().indices()) == len(space.decisions())
    assert pred.predict([space.parse(result["arch"])])[0] <= smallest * 1.001


def test_enas_refuses_what_does_not_apply(cell, tmp_path: Path) -> None:
    with pytest.raises(HwnasError, match="budget-tracking"):
        config(budget_tracking=True)
    with pytest.raises(HwnasError, match="exponent"):
        config(mnas_w=0.5)
    with pytest.raises(HwnasError, match="second-order"):
        config(unrolled=True)
    with pytest.raises(HwnasError, match="differentiable modes, not to enas"):
        SearchRecipe.parse(flags={"strategy": "enas", "nproc": 2, "lut": ["t.json"], "budget_ms": [1.0], "output": "r"})
    with pytest.raises(HwnasError, match="controller_steps"):
        SearchRecipe.parse(flags={"strategy": "enas", "controller_steps": 0, "lut": ["t.json"], "budget_ms": [1.0], "output": "r"})
    space, data, pred = cell
    target = Target("flops", pred, 5.0)
    make_search(space, [target], data, SearchConfig(strategy="gdas", epochs=1, warmup_epochs=0, batch_size=128,
                                                    torch_device="cpu"), tmp_path, progress=False).run()
    with pytest.raises(HwnasError, match="not an ENAS search"):
        make_search(space, [target], data, config(), tmp_path, progress=False).run()


def test_cli_enas_search_end_to_end(tmp_path: Path) -> None:
    """``hwnas search --strategy enas`` on the shipped table: the job, the recipe and the result file."""
    out = tmp_path / "run"
    cmd = [HWNAS, "search", "--strategy", "enas", "--space", "mbv2", "--preset", "small", "--lut", str(TABLE),
           "--budget-quantile", "0.5", "--data", "digits", "--epochs", "1", "--warmup-epochs", "0",
           "--controller-steps", "2", "--batch-size", "64", "-o", str(out), "--quiet", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["strategy"] == "enas" and get_space("mbv2", "small").parse(answer["arch"])
    assert all(d["meets_budget"] for d in answer["devices"])
    assert json.loads((out / "recipe.json").read_text())["controller_steps"] == 2
