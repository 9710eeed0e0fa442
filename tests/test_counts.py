"""Exact counts on tiny shapes, and counts equal to what the built module has."""

from __future__ import annotations

import hashlib

import pytest
import torch

from hwnas.counting import module_counts
from hwnas.layers import LayerSpec
from hwnas.ops import Counts, build_layer, count_layer
from hwnas.spaces import get_space


def test_conv3x3_on_5x5_input() -> None:
    # 1 -> 1 channel, 3x3, padding 1: 25 outputs x 9 taps; weights 9 + BN 2.
    spec = LayerSpec("Conv", (5, 5, 1), (5, 5, 1), kernel=3, stride=1)
    assert count_layer(spec) == Counts(params=11, macs=225)
    assert module_counts(build_layer(spec), (1, 5, 5)) == Counts(11, 225)


def test_strided_conv_on_5x5_input() -> None:
    # 2 -> 4 channels, 3x3 stride 2 on 5x5: 3x3 outputs x 4 channels x (2 x 9) taps.
    spec = LayerSpec("Conv", (5, 5, 2), (3, 3, 4), kernel=3, stride=2)
    assert count_layer(spec) == Counts(params=4 * 2 * 9 + 8, macs=3 * 3 * 4 * 2 * 9)
    assert module_counts(build_layer(spec), (2, 5, 5)) == count_layer(spec)


def test_inverted_residual_by_hand() -> None:
    # 4 -> 8 channels, expand 3 (hidden 12), kernel 5, stride 2, on 6x6 -> 3x3.
    spec = LayerSpec("expanded_conv", (6, 6, 4), (3, 3, 8), kernel=5, expand=3, stride=2, idskip=False)
    params = (4 * 12 + 24) + (12 * 25 + 24) + (12 * 8 + 16)
    macs = 6 * 6 * 4 * 12 + 3 * 3 * 12 * 25 + 3 * 3 * 12 * 8
    assert count_layer(spec) == Counts(params, macs)
    assert module_counts(build_layer(spec), (4, 6, 6)) == Counts(params, macs)


def test_nb201_ops_by_hand() -> None:
    shape = (4, 4, 2)
    assert count_layer(LayerSpec("nor_conv_3x3", shape, shape, kernel=3, stride=1)) == Counts(2 * 2 * 9 + 4, 16 * 2 * 2 * 9)
    assert count_layer(LayerSpec("nor_conv_1x1", shape, shape, kernel=1, stride=1)) == Counts(4 + 4, 16 * 4)
    for op in ("none", "skip_connect", "avg_pool_3x3"):
        assert count_layer(LayerSpec(op, shape, shape, stride=1)) == Counts(0, 0)
    rb = LayerSpec("resblock", (4, 4, 2), (2, 2, 4), kernel=3, stride=2)
    expected = Counts(4 * 2 * 9 + 8, 4 * 4 * 2 * 9) + Counts(4 * 4 * 9 + 8, 4 * 4 * 4 * 9) + Counts(2 * 4, 4 * 4 * 2)
    assert count_layer(rb) == expected
    assert module_counts(build_layer(rb), (2, 4, 4)) == expected


@pytest.mark.parametrize("name,preset", [("mbv2", "small"), ("mbv2", "proxyless"), ("nb201", "cifar"), ("randwire", "small"),
                                         ("hierarchical", "small")])
def test_counts_equal_the_built_module(name: str, preset: str) -> None:
    space = get_space(name, preset)
    refs = space.references()
    for arch in space.sample(3, seed=5) + [refs[name] for name in {"largest", next(iter(refs))} & set(refs)]:
        assert module_counts(arch.build(), space.input_shape()) == arch.counts(), str(arch)


# torchvision 0.29.1's mobilenet_v2(width_mult=w): trainable parameters, state-dict tensors
# and a digest of their shapes in order (sha256 of repr(list of shape tuples), first 16 hex
# digits). torchvision is not a dependency (no build of it runs with the CPU torch), so its
# figures are recorded here rather than recomputed.
TORCHVISION_MOBILENETV2 = {1.0: (3504872, 314, "69c1c9f4a348949d"), 0.5: (1968680, 314, "077bfa2ecb04dd4a")}


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_mobilenetv2_matches_torchvision(width: float) -> None:
    space = get_space("mbv2", "mobilenetv2", num_classes=1000, width_mult=width)
    arch = space.resolve("mobilenetv2")
    params, tensors, digest = TORCHVISION_MOBILENETV2[width]
    assert arch.counts().params == params
    if width == 1.0:
        assert arch.counts() == Counts(params=3504872, macs=300774272)  # the paper's 300 M multiply-adds
    shapes = [tuple(v.shape) for v in arch.build().state_dict().values()]
    assert len(shapes) == tensors
    assert hashlib.sha256(repr(shapes).encode()).hexdigest()[:16] == digest


def test_built_models_train() -> None:
    for name, preset in [("mbv2", "small"), ("nb201", "cifar")]:
        space = get_space(name, preset)
        model = space.sample(1, seed=0)[0].build().train()
        x = torch.randn(4, *space.input_shape())
        loss = model(x).logsumexp(dim=1).mean()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
