"""Differentiable search on tiny shapes, on the CPU."""

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
from hwnas.errors import HwnasError, RegistryError
from hwnas.predictors import FlopsPredictor
from hwnas.spaces.option_table import OptionTable
from hwnas.spaces import get_space
from hwnas.supernet.latency import ExpectedLatency
from hwnas.supernet.losses import BudgetTracker, get_loss
from hwnas.supernet.search import DifferentiableSearch, SearchConfig
from hwnas.target import Target

HWNAS = str(Path(sys.executable).parent / "hwnas")
ROOT = Path(__file__).resolve().parent.parent


def test_expected_latency_gradient_matches_finite_differences() -> None:
    table = OptionTable(1.5, [np.array([0.1, 0.4, 0.9]), np.array([0.0, 2.0])])
    lat = ExpectedLatency(table).double()
    alphas = [torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True),
              torch.tensor([0.1, 0.7], dtype=torch.float64, requires_grad=True)]

    def f(a: list[torch.Tensor]) -> torch.Tensor:
        total = torch.tensor(table.fixed, dtype=torch.float64)
        for i, x in enumerate(a):
            total = total + (torch.softmax(x, -1) * torch.tensor(table.options[i])).sum()
        return total

    assert float(lat(alphas).detach()) == pytest.approx(float(f(alphas).detach()), rel=1e-12)
    grads = torch.autograd.grad(lat(alphas), alphas)
    h = 1e-6
    for i, a in enumerate(alphas):
        for j in range(len(a)):
            plus = [x.detach().clone() for x in alphas]
            minus = [x.detach().clone() for x in alphas]
            plus[i][j] += h
            minus[i][j] -= h
            fd = (float(lat(plus)) - float(lat(minus))) / (2 * h)
            assert float(grads[i][j]) == pytest.approx(fd, abs=1e-8)
    torch.autograd.gradcheck(lambda *a: lat(list(a)), tuple(alphas))


def test_losses_on_known_values() -> None:
    ce = torch.tensor(2.0)
    # 1 ms against a 1 ms budget: the log ratio is 1, so the factor is alpha = 0.2
    mul = get_loss("mul#log")
    assert float(mul(ce, [torch.tensor(1.0)], [1.0])) == pytest.approx(0.4)
    over = float(mul(ce, [torch.tensor(2.0)], [1.0]))
    assert over == pytest.approx(2.0 * 0.2 * (np.log(2000) / np.log(1000)) ** 0.3)
    # two devices: one factor each
    assert float(mul(ce, [torch.tensor(1.0), torch.tensor(1.0)], [1.0, 1.0])) == pytest.approx(2.0 * 0.2 * 0.2)
    assert float(get_loss("add#linear", lam=0.5)(ce, [torch.tensor(1.5)], [1.0])) == pytest.approx(2.25)
    with pytest.raises(RegistryError, match="unknown latency loss 'mul#exp'; known: add#linear, mul#log"):
        get_loss("mul#exp")
    with pytest.raises(HwnasError, match="must be positive"):
        mul(ce, [torch.tensor(1.0)], [0.0])
    # a weight scales each term: 0 leaves alpha * CE (mul) or CE (add); 2 doubles the exponent or lambda
    assert float(mul(ce, [torch.tensor(2.0)], [1.0], [0.0])) == pytest.approx(0.4)
    assert float(mul(ce, [torch.tensor(2.0)], [1.0], [2.0])) == pytest.approx(
        2.0 * 0.2 * (np.log(2000) / np.log(1000)) ** 0.6)
    assert float(get_loss("add#linear", lam=0.5)(ce, [torch.tensor(1.5)], [1.0], [2.0])) == pytest.approx(2.5)


def test_budget_tracker_on_known_values() -> None:
    t = BudgetTracker(2, rate=0.5, ceiling=1.0)
    assert t.weights == [0.0, 0.0]
    t.update([12.0, 4.0], [10.0, 5.0])  # 20 % over the first budget, 20 % under the second
    assert t.weights == pytest.approx([0.1, 0.0])
    t.update([9.0, 4.0], [10.0, 5.0])  # back under: the weight falls, never below 0
    assert t.weights == pytest.approx([0.05, 0.0])
    for _ in range(20):
        t.update([40.0, 4.0], [10.0, 5.0])
    assert t.weights == pytest.approx([1.0, 0.0])  # the ceiling
    with pytest.raises(HwnasError, match="tracks 1 budgets, this search 2"):
        t.load([0.3])
    with pytest.raises(HwnasError, match="rate must be positive"):
        BudgetTracker(1, rate=0.0)


@pytest.fixture(scope="module")
def tiny():
    space = get_space("mbv2", "small", resolution=16)
    data = load("digits", resolution=16)
    archs = space.sample(40, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    return space, data, pred


@pytest.mark.parametrize("mode", ["darts", "proxyless", "gdas"])
def test_each_mode_moves_expected_latency_toward_the_budget(mode: str, tiny, tmp_path: Path) -> None:
    space, data, pred = tiny
    data = few(data, 256)
    budget = pred.option_latency().smallest() * 1.05
    cfg = SearchConfig(strategy=mode, epochs=1, warmup_epochs=0, batch_size=128, arch_lr=0.05, loss="add#linear",
                       lam=5.0, torch_device="cpu")
    s = DifferentiableSearch(space, [Target("flops", pred, budget)], data, cfg, tmp_path, progress=False)
    before = float(s.expected_ms()[0])
    s.run()
    after = float(s.expected_ms()[0])
    assert after < before
    log = [json.loads(line) for line in open(tmp_path / "log.jsonl")]
    assert log[-1]["epoch"] == 1 and set(log[-1]) >= {"train_loss", "train_acc", "expected_ms", "arch", "probabilities"}
    derived = space.parse(log[-1]["arch"])
    assert space.parse(str(derived)) == derived == s.derive()


def few(data: Splits, n: int = 128) -> Splits:
    """The first ``n`` images of each split: what a test of the mechanics (not of learning) needs."""
    return dataclasses.replace(data, train=Subset(data.train, range(n)), val=Subset(data.val, range(n)),
                               test=Subset(data.test, range(min(n, len(data.test)))))


def test_second_order_darts_runs(tiny, tmp_path: Path) -> None:
    space, data, pred = tiny
    data = few(data)
    cfg = SearchConfig(strategy="darts", unrolled=True, epochs=1, warmup_epochs=0, batch_size=256, torch_device="cpu")
    s = DifferentiableSearch(space, [Target("flops", pred, 1.0)], data, cfg, tmp_path, progress=False)
    before = [a.detach().clone() for a in s.net.alphas]
    s.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, s.net.alphas))


@pytest.mark.parametrize("mode, tracking", [("proxyless", False), ("darts", False), ("gdas", True)])
def test_resume_reproduces_the_uninterrupted_run(mode: str, tracking: bool, tiny, tmp_path: Path) -> None:
    space, data, pred = tiny
    data = few(data)
    budget = pred.option_latency().quantile(space, 0.2)

    def make(d: Path) -> DifferentiableSearch:
        cfg = SearchConfig(strategy=mode, epochs=2, warmup_epochs=0 if tracking else 1, batch_size=256, torch_device="cpu",
                           seed=3, budget_tracking=tracking)
        return DifferentiableSearch(space, [Target("f", pred, budget)], data, cfg, d, progress=False)

    whole = make(tmp_path / "a")
    whole.run()
    first = make(tmp_path / "b")
    first.run(stop_after=1)
    resumed = make(tmp_path / "b")  # a new process would do exactly this
    resumed.run()
    for (k, v), (k2, v2) in zip(whole.net.state_dict().items(), resumed.net.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    if tracking:  # the budget-tracking weights resume too (and moved: the search started over the budget)
        assert resumed.tracker.weights == whole.tracker.weights and whole.tracker.weights[0] > 0


def test_nb201_supernet_searches(tmp_path: Path) -> None:
    space = get_space("nb201", resolution=8)
    data = load("digits", resolution=8)
    archs = space.sample(60, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    cfg = SearchConfig(strategy="gdas", epochs=1, warmup_epochs=0, batch_size=256, torch_device="cpu")
    s = DifferentiableSearch(space, [Target("flops", pred, 5.0)], data, cfg, tmp_path,
                             progress=False)
    result = s.run()
    found = space.parse(result["arch"])
    assert space.connected(found) and result["meets_all_budgets"]
    argmax = s.derive()
    if space.connected(argmax) and pred.predict([argmax])[0] <= 5.0:
        assert found == argmax


def test_nb201_derivation_is_connected_and_fills_the_budget(tmp_path: Path) -> None:
    """Probabilities that favour ``none`` everywhere (a collapsed supernet) still derive a connected
    cell, in the band [0.9, 1] x budget, under both derivations."""
    space = get_space("nb201", resolution=8)
    data = load("digits", resolution=8)
    archs = space.sample(60, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    budget = pred.option_latency().quantile(space, 0.3)
    for derive in ("argmax", "budget"):
        cfg = SearchConfig(strategy="darts", epochs=1, warmup_epochs=0, derive=derive, torch_device="cpu")
        s = DifferentiableSearch(space, [Target("flops", pred, budget)], data, cfg, tmp_path / derive,
                                 progress=False)
        with torch.no_grad():
            for a in s.net.alphas:
                a.copy_(torch.tensor([3.0, 1.0, 0.0, 0.0, 0.0]))  # none, then skip_connect
        assert not space.connected(s.derive())
        found = s.final_arch()
        assert space.connected(found) and pred.predict([found])[0] <= budget
        if derive == "budget":
            assert pred.predict([found])[0] >= 0.9 * budget


def test_cli_search_with_recipe_and_override(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[search]\nstrategy = "proxyless"\nspace = "mbv2"\npreset = "small"\n'
                      f'lut = "{ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"}"\nbudget-quantile = 0.5\n'
                      f'epochs = 3\nwarmup-epochs = 0\nbatch-size = 256\nbudget-tracking = true\n'
                      f'derive-margin = 0.05\noutput = "{tmp_path / "ignored"}"\n')
    run = tmp_path / "run"
    r = subprocess.run([HWNAS, "search", "--recipe", str(recipe), "--epochs", "1", "--strategy", "gdas",
                        "-o", str(run), "--retrain-epochs", "1", "--quiet", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["strategy"] == "gdas" and result["epochs"] == 1
    assert result["devices"][0]["budget_ms"] > 0 and "meets_budget" in result["devices"][0]
    assert (run / "model.onnx").exists() and (run / "model.safetensors").exists()
    assert result["export"]["onnx_parity"]["ok"] is True and result["retrain"]["epochs"] == 1
    assert not (tmp_path / "ignored").exists()
    assert json.loads((run / "recipe.json").read_text())["budget_tracking"] is True
    assert result["config"]["budget_tracking"] is True and result["config"]["derive_margin"] == 0.05


@pytest.mark.parametrize("args,fragment", [
    (["--lut", "x.json", "--budget-ms", "1", "-o", "r"], "does not exist"),
    (["--budget-ms", "1", "-o", "r"], "latency table"),
    (["--lut", str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"), "-o", "r", "--preset", "small"],
     "give a budget"),
    (["--lut", str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"), "--preset", "small",
      "--budget-ms", "0.0001", "-o", "r"], "smallest predicted latency in the space is"),
    (["--recipe", "nope.toml", "-o", "r"], "recipe nope.toml does not exist"),
])
def test_cli_search_errors(args: list[str], fragment: str, tmp_path: Path) -> None:
    r = subprocess.run([HWNAS, "search", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr
