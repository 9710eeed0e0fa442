"""Weight sharing across an mbv2 block's candidates (hwnas.nn.shared)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.data.datasets import load
from hwnas.layers import LayerSpec
from hwnas.nn.blocks import InvertedResidual
from hwnas.spaces import get_space
from hwnas.nn.shared import CandidateView, SharedInvertedResidual


def spec(kernel: int, expand: int) -> LayerSpec:
    return LayerSpec("expanded_conv", (5, 5, 4), (5, 5, 4), kernel=kernel, expand=expand, stride=1, idskip=True)


def test_a_view_computes_the_standalone_block_with_the_sliced_weights() -> None:
    torch.manual_seed(0)
    shared = SharedInvertedResidual([spec(k, e) for k in (3, 5, 7) for e in (3, 6)])
    for bn in (shared.bn1, shared.bn2, shared.bn3):  # non-trivial statistics and affine terms
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    shared.eval()
    x = torch.randn(2, 4, 5, 5)
    for k, e in ((3, 3), (5, 6), (7, 3)):
        view = CandidateView(shared, spec(k, e))
        alone = InvertedResidual(spec(k, e)).eval()
        h, o = 4 * e, (7 - k) // 2
        conv_e, bn_e, _, conv_d, bn_d, _, conv_p, bn_p = alone.conv
        conv_e.weight.data.copy_(shared.expand_w[:h])
        conv_d.weight.data.copy_(shared.depthwise_w[:h, :, o:o + k, o:o + k])
        conv_p.weight.data.copy_(shared.project_w[:, :h])
        for mine, big, n in ((bn_e, shared.bn1, h), (bn_d, shared.bn2, h), (bn_p, shared.bn3, 4)):
            mine.running_mean.copy_(big.running_mean[:n])
            mine.running_var.copy_(big.running_var[:n])
            mine.weight.data.copy_(big.weight[:n])
            mine.bias.data.copy_(big.bias[:n])
        torch.testing.assert_close(view(x), alone(x), rtol=1e-5, atol=1e-6)
    assert list(view.parameters()) == []  # the view owns no weights


def test_the_supernet_holds_each_block_once() -> None:
    space = get_space("mbv2", "small")
    net = space.supernet()
    largest = space.from_choices([d.choices[-2] if d.choices[-1] == "zero" else d.choices[-1]
                                  for d in space.decisions()])  # k7e6 everywhere
    weights = sum(p.numel() for p in net.weight_parameters())
    assert weights == sum(p.numel() for p in largest.build().parameters())
    assert len(net.state_dict()) == len(set(net.state_dict()))


def test_single_path_training_learns_with_shared_weights() -> None:
    space = get_space("mbv2", "small")
    data = load("digits", resolution=space.input_shape()[1])
    torch.manual_seed(0)
    net = space.supernet()
    net.set_mode("proxyless", "weights")
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9, nesterov=True)
    losses = []
    net.train()
    for epoch in range(4):
        for x, y in data.loader("train", 32, True, 0, epoch):
            loss = F.cross_entropy(net(x), y)  # each block runs one uniformly sampled candidate
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if len(losses) == 160:
                break
        if len(losses) == 160:
            break
    # chance is ln 10 = 2.30; separate weights per candidate stayed there (session notes)
    assert np.mean(losses[:20]) > 1.5 and np.mean(losses[-40:]) < 1.0, (np.mean(losses[:20]), np.mean(losses[-40:]))
