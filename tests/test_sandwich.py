"""The sandwich rule (``--sandwich``): every weight step of a path-sampling search also trains
the space's largest path, and with ``distill`` the sampled path learns its predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hwnas.data.datasets import load
from hwnas.errors import HwnasError
from hwnas.predictors import FlopsPredictor
from hwnas.spaces import get_space
from hwnas.supernet.search import DifferentiableSearch, SearchConfig
from hwnas.target import Target

HWNAS = str(Path(sys.executable).with_name("hwnas"))


def _search(tmp_path: Path, sandwich: str | None) -> DifferentiableSearch:
    space = get_space("nb201", channels=8, cells_per_stage=1, resolution=16)
    archs = space.sample(40, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    cfg = SearchConfig(strategy="proxyless", epochs=1, warmup_epochs=0, batch_size=32, sandwich=sandwich,
                       torch_device="cpu")
    return DifferentiableSearch(space, [Target("flops", pred, 1e9)], load("digits", resolution=16), cfg, tmp_path,
                                progress=False)


def _skips_only(s: DifferentiableSearch) -> None:
    """Every sampled path all ``skip_connect``: no convolution is on it."""
    skip = s.space.decisions()[0].choices.index("skip_connect")
    with torch.no_grad():
        for a in s.net.alphas:
            a.fill_(-1e4)
            a[skip] = 0.0


def _conv3x3_weights(s: DifferentiableSearch) -> list[torch.Tensor]:
    big = s.space.decisions()[0].choices.index("nor_conv_3x3")
    return [p.detach().clone() for m in s.net.mixed_ops() for p in m.candidates[big].parameters()]


@pytest.mark.parametrize("sandwich", [None, "ce", "distill"])
def test_the_largest_path_is_trained_beside_the_sampled_one(sandwich: str | None, tmp_path: Path) -> None:
    s = _search(tmp_path, sandwich)
    _skips_only(s)
    x, y = next(iter(torch.utils.data.DataLoader(s.data.train, batch_size=32)))
    before = _conv3x3_weights(s)
    s.weight_step(x, y)
    moved = [not torch.equal(a, b) for a, b in zip(before, _conv3x3_weights(s))]
    # without the rule no sampled path holds a 3x3 convolution, so none of them is touched
    assert all(moved) if sandwich else not any(moved)
    assert all(m.fixed is None for m in s.net.mixed_ops())  # sampling resumes after the largest path


def test_distillation_is_the_sampled_paths_loss_on_the_largest_paths_predictions(tmp_path: Path) -> None:
    s = _search(tmp_path, "distill")
    x, y = next(iter(torch.utils.data.DataLoader(s.data.train, batch_size=32)))
    s.net.train()
    logits = torch.randn(32, 10)
    s.net.fix(s.largest)
    torch.manual_seed(0)
    big_logits = s.net(x)
    s.net.fix(None)
    torch.manual_seed(0)
    loss = s._sandwich(x, y, F.cross_entropy(logits, y), logits)
    teacher = F.softmax(big_logits.detach(), dim=1)
    expected = F.cross_entropy(big_logits, y) + F.kl_div(F.log_softmax(logits, 1), teacher, reduction="batchmean")
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert s.largest == [s.space.decisions()[0].choices.index("nor_conv_3x3")] * 6


def test_the_rule_is_refused_where_it_cannot_apply(tmp_path: Path) -> None:
    with pytest.raises(HwnasError, match="darts does not sample; it applies to gdas, proxyless"):
        SearchConfig(strategy="darts", sandwich="ce")
    with pytest.raises(HwnasError, match="--sandwich must be one of ce, distill, not 'slice'"):
        SearchConfig(strategy="gdas", sandwich="slice")
    with pytest.raises(HwnasError, match="randwire names none"):
        space = get_space("randwire", "small")
        archs = space.sample(10, seed=0)
        pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
        DifferentiableSearch(space, [Target("flops", pred, 1e9)], load("digits", resolution=16),
                             SearchConfig(strategy="proxyless", sandwich="ce", torch_device="cpu"), tmp_path,
                             progress=False)


def test_the_command_line_takes_the_rule_and_refuses_it_for_a_mixture(tmp_path: Path) -> None:
    table = Path(__file__).resolve().parent.parent / "latency_tables" / "mbv2-small.cpu-ort.lut.json"
    args = [HWNAS, "search", "--space", "mbv2", "--preset", "small", "--lut", str(table), "--budget-quantile", "0.5",
            "--sandwich", "ce", "--epochs", "1", "-o", str(tmp_path / "run")]
    r = subprocess.run([*args, "--strategy", "darts"], capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "which darts does not sample; it applies to gdas, proxyless" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads((tmp_path / "run" / "recipe.json").read_text())["sandwich"] == "ce"
