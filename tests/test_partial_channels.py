"""PC-DARTS's partial channels (the supernet's memory option): the exact shuffle, which
layers see a fraction of the channels, that recomputation changes no gradient, and a search
that runs with the option from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hwnas.data.datasets import load
from hwnas.errors import HwnasError
from hwnas.nn.mixed import MixedOp, channel_shuffle
from hwnas.predictors import FlopsPredictor
from hwnas.spaces import get_space
from hwnas.supernet.search import DifferentiableSearch, SearchConfig
from hwnas.target import Target

HWNAS = str(Path(sys.executable).parent / "hwnas")


def test_channel_shuffle_interleaves_the_groups() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert torch.equal(channel_shuffle(channel_shuffle(x, 2), 3), x)  # (2 x 3)^T^T


def test_a_partial_op_transforms_a_quarter_and_passes_the_rest() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 2, 1, bias=False)
    op = MixedOp([conv], partial=4)
    x = torch.randn(2, 8, 3, 3)
    y = op(x, torch.zeros(1))
    unshuffled = channel_shuffle(y, 2)  # a shuffle with K groups is undone by one with C/K groups
    assert torch.allclose(unshuffled[:, :2], conv(x[:, :2]))
    assert torch.equal(unshuffled[:, 2:], x[:, 2:])


def test_nb201_edges_are_built_for_a_fraction_of_the_channels() -> None:
    space = get_space("nb201")
    full, pc = space.supernet(), space.supernet(partial_channels=4)
    convs = [m for m in pc.mixed_ops()[0].modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.in_channels == 16 // 4 for m in convs)
    assert all(op.partial == 4 for op in pc.mixed_ops())
    n_full = sum(p.numel() for p in full.weight_parameters())
    assert sum(p.numel() for p in pc.weight_parameters()) < n_full / 4
    pc.set_mode("darts")
    out = pc(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10) and all(a.grad is not None for a in pc.alphas)
    with pytest.raises(HwnasError, match="must divide every searched layer's channels"):
        space.supernet(partial_channels=3)


def test_mbv2_blocks_that_change_shape_are_recomputed_with_the_same_gradients() -> None:
    space = get_space("mbv2", "small", resolution=16)
    torch.manual_seed(0)
    net = space.supernet(partial_channels=2)
    ops = net.mixed_ops()
    kept = [i for i, d in enumerate(space.decisions()) if "zero" in d.choices]  # the blocks that keep the shape
    assert [op.partial for op in ops] == [2 if i in kept else 1 for i in range(len(ops))]
    assert [op.checkpointed for op in ops] == [i not in kept for i in range(len(ops))]
    net.set_mode("darts")
    net.eval()  # batch-norm statistics fixed: the recomputed forward is the same function
    x = torch.randn(3, 3, 16, 16)

    def grads() -> list[torch.Tensor]:
        net.zero_grad()
        net(x).square().sum().backward()
        return [p.grad.clone() for p in net.parameters() if p.grad is not None]

    recomputed = grads()
    for op in ops:
        op.checkpointed = False
    kept_in_memory = grads()
    assert len(recomputed) == len(kept_in_memory)
    for a, b in zip(recomputed, kept_in_memory):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_partial_channel_search_derives_a_cell(tmp_path: Path) -> None:
    space = get_space("nb201", channels=8, cells_per_stage=1, resolution=16)
    data = load("digits", resolution=16)
    archs = space.sample(40, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    budget = float(pred.predict(space.sample(200, seed=1)).mean())
    cfg = SearchConfig(strategy="darts", epochs=1, warmup_epochs=0, batch_size=256, partial_channels=4,
                       derive="budget", torch_device="cpu")
    result = DifferentiableSearch(space, [Target("flops", pred, budget)], data, cfg, tmp_path, progress=False).run()
    arch = space.parse(result["arch"])
    assert space.connected(arch) and float(pred.predict([arch])[0]) <= budget
    assert result["config"]["partial_channels"] == 4
    with pytest.raises(HwnasError, match="channel divisor >= 1"):
        SearchConfig(strategy="darts", partial_channels=0)


def test_the_command_line_takes_partial_channels(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "latency_tables"
    r = subprocess.run([HWNAS, "search", "--strategy", "darts", "--space", "mbv2", "--preset", "small",
                        "--predictor", str(root / "mbv2-small.cpu-ort.learned.json"), "--budget-ms", "1",
                        "--partial-channels", "5", "--epochs", "1", "-o", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "must divide every searched layer's channels (24 does not" in r.stderr, r.stderr
    assert json.loads((tmp_path / "run" / "recipe.json").read_text())["partial_channels"] == 5
