"""Random networks whose kernels cover the configurations real CNNs use.

Each sample network is a chain of blocks of the kinds classification networks are built
from (convolutions of every kernel size, stride and grouping with batch norm and an
activation; residual blocks; squeeze-and-excitation; pooling; dense concatenation, where a
layer reads all the maps before it as DenseNet's do; parallel branches joined as Inception's
are; channel shuffle, with ShuffleNetV2's channel split; ConvNeXt-style channels-last blocks with layer norm and GELU; a classifier head),
at resolutions from 224 to 7 and widths from 8 to 2048. Profiling one such network on a
device measures all its kernels in context (after the kernels before them, as in a real
model), so one measurement yields many samples. Some networks are one operator alone
(:data:`SINGLE_SHARE`), whose time is that kernel's. A network is a JSON spec, built the
same way from it every time, so a sample file says exactly what was measured.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch
from torch import nn

KINDS = ("conv", "residual", "se", "pool", "concat", "inception", "shuffle", "convnext", "head", "op")
WIDTHS = (8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 240, 256, 320, 384, 480, 512, 640, 768, 960,
          1024, 1280, 1536, 2048)
RESOLUTIONS = (224, 112, 56, 28, 14, 7)
ACTIVATIONS = ("relu", "relu6", "hardswish", "silu", "gelu", "sigmoid", "none")
MAX_BLOCK_MACS = 4e8
"""A block's multiply-accumulates at most (the largest layers of ResNet/VGG-sized models
are ~1e8-2e9); keeps one sample network to tens of milliseconds on a CPU core."""
MAX_ACTIVATION = 2_000_000
"""Elements of a feature map at most (64 x 112 x 112 in ResNet's stem is 0.8 M): real networks
are narrow where they are large."""
BLOCK_WEIGHTS = {"conv": 3.0, "residual": 2.0, "se": 1.0, "pool": 0.7, "concat": 1.0, "inception": 0.5,
                 "shuffle": 0.5, "convnext": 1.0}
"""How often each kind is drawn before adaptive sampling reweights them."""
SHORT_SHARE = 0.3
"""The share of networks with at most two blocks (or a classifier head alone). Kernels that
always travel together in long networks (a stem's padding and convolution, a head's pooling
and matrix product) are told apart by networks in which little else runs: without a
profiler (LiteRT) a kernel's time is only ever seen inside its network's."""
SINGLE_SHARE = 0.5
"""The share of networks that are one operator alone (an ``op`` block), as nn-Meter measures
its kernels: without a profiler such a network's time is its kernel's, plus what the runtime
spends on any network. They are cheap (a fraction of a second each to export and time), and
they pin the element-wise kernels (activations, additions, products) whose time is small
beside the convolutions they always travel with."""
SINGLE_OPS = {"conv": 4.0, "act": 2.0, "add": 1.0, "mul": 1.0, "gate": 1.0, "pool": 0.7, "mean": 0.7,
              "fc": 0.7, "fc_wide": 0.3, "concat": 0.7}
"""The operators of single-operator networks, and how often each is drawn. ``fc_wide`` is a
matrix product whose weights (10 MB to 150 MB) outgrow the caches, so its time follows memory
bandwidth rather than arithmetic: a regime of its own, which the adaptive sampling weighs on
its own."""
SAMPLED_KINDS = tuple(BLOCK_WEIGHTS) + tuple(f"op:{op}" for op in SINGLE_OPS)
"""What the adaptive sampling weighs: the block kinds, and each single operator as ``op:NAME``."""
FC_WIDTHS = (2560, 4096, 9216)
"""Matrix-product input widths beyond :data:`WIDTHS` (VGG's and AlexNet's classifiers)."""
GROUP_WIDTHS = (4, 8, 16, 24, 32, 48, 56, 64, 112, 128)
"""The channels per group that real networks use (ResNeXt's 4-128, RegNet's 8-112): half the
single grouped convolutions take one of these, the other half any width from 2 to 128
(:data:`ANY_GROUP_WIDTH`)."""
ANY_GROUP_WIDTH = (2, 128)
"""The range of the other half, drawn evenly in log: a runtime may run a group width that its
vector block divides (16 or 32 channels) on another path than one it does not (24 or 56),
and such a width's rate is learned from its neighbours only if widths between the usual
ones are timed too."""


def sampled_kind(block: dict[str, Any]) -> str:
    """The kind of a spec's block as the adaptive sampling weighs it (see :data:`SAMPLED_KINDS`)."""
    return f"op:{block['op']}" if block["kind"] == "op" else str(block["kind"])


def is_single(kind: str) -> bool:
    """Whether a :func:`sampled_kind` is a single operator (``op`` in files saved before the
    operators were told apart)."""
    return kind == "op" or kind.startswith("op:")


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "hardswish": nn.Hardswish(), "silu": nn.SiLU(),
            "gelu": nn.GELU(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[name]


def _conv_bn(cin: int, cout: int, k: int, s: int, g: int, bn: bool, act: str, dilation: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, dilation * (k // 2), dilation=dilation, groups=g,
                                         bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(_act(act))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _SE(nn.Module):
    """Squeeze-and-excitation as models write it: the squeeze as a global average pool
    (torchvision's ``AdaptiveAvgPool2d(1)``) or a mean, ReLU or SiLU inside, a sigmoid or
    hard-sigmoid gate."""

    def __init__(self, c: int, r: int, gate: str, squeeze: str = "pool", inner: str = "relu") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c, max(c // r, 8), 1)
        self.expand = nn.Conv2d(max(c // r, 8), c, 1)
        self.inner = _act(inner)
        self.gate = nn.Hardsigmoid() if gate == "hardsigmoid" else nn.Sigmoid()
        self.squeeze = squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.adaptive_avg_pool2d(x, 1) if self.squeeze == "pool" else x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.inner(self.reduce(s))))


class _Dense(nn.Module):
    """DenseNet's block: each layer reads every map before it, concatenated (one
    concatenation of 1, 2, ... inputs per layer), and the block returns all of them."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1) if len(features) > 1 else features[0]))
        return torch.cat(features, 1)


class _Branches(nn.Module):
    """Parallel branches on one input, their outputs concatenated (Inception's join)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class _Shuffle(nn.Module):
    """A channel shuffle; with a ``branch``, ShuffleNetV2's unit: the channels split in two
    halves, the branch on the second, the halves concatenated, then shuffled."""

    def __init__(self, groups: int, branch: nn.Module | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch is not None:
            left, right = x.chunk(2, dim=1)
            x = torch.cat([left, self.branch(right)], 1)
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class _ConvNeXt(nn.Module):
    def __init__(self, c: int, k: int, expand: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, k, 1, k // 2, groups=c)
        self.norm = nn.LayerNorm(c)
        self.up = nn.Linear(c, expand * c)
        self.down = nn.Linear(expand * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.down(nn.functional.gelu(self.up(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class _Single(nn.Module):
    """One operator: an element-wise addition or product of the input with itself, a gate
    (the input times its own channel means, as squeeze-and-excitation multiplies), a global
    mean, a matrix product on the flattened input, the input concatenated with itself."""

    def __init__(self, op: str, c: int, cout: int = 0) -> None:
        super().__init__()
        self.op = op
        self.fc = nn.Linear(c, cout) if op == "fc" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "add":
            return x + x
        if self.op == "mul":
            return x * x
        if self.op == "gate":
            return x * x.mean((2, 3), keepdim=True)
        if self.op == "mean":
            return x.mean((2, 3), keepdim=True)
        if self.op == "concat":
            return torch.cat([x, x], 1)
        if self.fc is not None:
            return self.fc(torch.flatten(x, 1))[:, :, None, None]
        raise ValueError(f"unknown single operator {self.op!r}")


class _Head(nn.Module):
    def __init__(self, c: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _near(widths: tuple[int, ...], c: int, rng: random.Random) -> int:
    """A width within a factor of ~4 of ``c`` (networks widen gradually)."""
    choices = [w for w in widths if c / 4 <= w <= c * 4] or list(widths)
    return rng.choice(choices)


def sample_spec(seed: int, weights: dict[str, float] | None = None, max_blocks: int = 14) -> dict[str, Any]:
    """A random network spec: its input shape and blocks (each a dict with its ``kind``)."""
    rng = random.Random(seed)
    ops = {op: w * (weights or {}).get(f"op:{op}", 1.0) for op, w in SINGLE_OPS.items()}
    weights = {k: BLOCK_WEIGHTS[k] * (weights or {}).get(k, 1.0) for k in BLOCK_WEIGHTS}
    hw = rng.choice(RESOLUTIONS)
    fits = [w for w in WIDTHS if w * hw * hw <= MAX_ACTIVATION]
    c = 3 if hw >= 112 and rng.random() < 0.6 else rng.choice(fits or [8])
    spec: dict[str, Any] = {"seed": seed, "input_shape": [c, hw, hw], "blocks": []}
    if rng.random() < SINGLE_SHARE:
        block = _single(c, rng.choice(fits or [8]), hw, rng, ops)
        spec["blocks"].append(block)
        spec["input_shape"] = [block["c"], block.get("in_hw", hw), block.get("in_hw", hw)]
        return spec
    short = rng.random() < SHORT_SHARE
    for _ in range(rng.randint(0, 2) if short else rng.randint(3, max_blocks)):
        kind = rng.choices(list(weights), weights=list(weights.values()))[0]
        block = _sample_block(kind, c, hw, rng)
        if block is None:
            continue
        spec["blocks"].append(block)
        c, hw = block["out"]
        if hw <= 1:
            break
    if rng.random() < 0.3 or not spec["blocks"]:
        spec["blocks"].append({"kind": "head", "c": c, "classes": rng.choice((10, 100, 1000)), "out": [0, 0]})
    return spec


def _stem(hw: int, rng: random.Random) -> dict[str, Any] | None:
    """A network's first convolution, on an image's 3 channels: a 3x3 to 7x7 kernel, mostly
    strided, to 16-96 channels."""
    k = rng.choice((3, 3, 5, 7, 7))
    s = 2 if rng.random() < 0.75 else 1
    cout = rng.choice((16, 24, 32, 48, 64, 96))
    out_hw = (hw + s - 1) // s
    if out_hw * out_hw * cout * 3 * k * k > MAX_BLOCK_MACS:
        return None
    return {"kind": "conv", "c": 3, "cout": cout, "k": k, "s": s, "g": 1, "bn": True, "act": "none",
            "dilation": 1, "out": [cout, out_hw]}


def _grouped(hw: int, rng: random.Random) -> dict[str, Any] | None:
    """A grouped convolution as RegNet and ResNeXt make them: a group width (:data:`GROUP_WIDTHS`
    or any other), then any number of groups (2-48, so 5 or 37 groups as often as 4 or 32),
    so that widths outside :data:`WIDTHS` (RegNet's 120, 336, 888) and odd group counts are
    sampled (None where it does not fit)."""
    lo, hi = ANY_GROUP_WIDTH
    gw = rng.choice(GROUP_WIDTHS) if rng.random() < 0.5 else int(round(math.exp(rng.uniform(math.log(lo),
                                                                                            math.log(hi)))))
    g = rng.randint(2, max(2, min(48, MAX_ACTIVATION // (hw * hw * gw), 2048 // gw)))
    c = gw * g
    k = rng.choice((1, 3, 3, 3, 5))
    s = 2 if hw > 7 and rng.random() < 0.25 else 1
    cout = c if rng.random() < 0.7 else g * _near(GROUP_WIDTHS, gw, rng)
    out_hw = (hw + s - 1) // s
    if c * hw * hw > MAX_ACTIVATION or out_hw * out_hw * cout * gw * k * k > MAX_BLOCK_MACS:
        return None
    return {"kind": "conv", "c": c, "cout": cout, "k": k, "s": s, "g": g, "bn": rng.random() < 0.85,
            "act": "none", "dilation": 1, "out": [cout, out_hw]}


def _single(c: int, wide: int, hw: int, rng: random.Random, ops: dict[str, float]) -> dict[str, Any]:
    """One operator alone on a ``c`` x ``hw`` x ``hw`` input (see :data:`SINGLE_SHARE`), drawn
    with the weights ``ops``; an image's 3 channels only for a convolution (a stem), ``wide``
    channels for the rest; a matrix product on a 1 x 1 map (``in_hw``)."""
    while True:
        op = rng.choices(list(ops), weights=list(ops.values()))[0]
        if op != "conv" and c == 3:
            c = wide
        if op == "conv":
            # grouped convolutions as often as the others: their rate moves with the group width
            if c == 3:
                block = _stem(hw, rng)
            elif rng.random() < 1 / 3:
                block = _grouped(hw, rng)
            else:
                block = _sample_block("conv", c, hw, rng, modes=(1.0, 1.0, 0.0))
            if block is None:
                continue
            block["act"] = rng.choice(("none", "relu", "relu6"))  # the activations a convolution takes in
            return {**block, "kind": "op", "op": "conv"}
        if op == "pool":
            block = _sample_block("pool", c, hw, rng)
            if block is None:
                continue
            return {**block, "kind": "op", "op": "pool", "pool": block["op"]}
        out = [c, hw]
        extra: dict[str, Any] = {}
        if op == "act":
            extra["act"] = rng.choice([a for a in ACTIVATIONS if a != "none"] + ["hardsigmoid"])
        elif op in ("fc", "fc_wide"):  # classifiers up to VGG's and AlexNet's
            c = rng.choice(FC_WIDTHS if op == "fc_wide" else WIDTHS)
            extra["cout"] = rng.choice((1000, 2048, 4096) if op == "fc_wide" else (10, 100, 1000) + WIDTHS)
            extra["in_hw"] = 1
            out = [extra["cout"], 1]
        elif op == "mean":
            out = [c, 1]
        elif op == "concat":
            out = [2 * c, hw]
        return {"kind": "op", "op": op, "c": c, **extra, "out": out}


def _sample_block(kind: str, c: int, hw: int, rng: random.Random,
                  modes: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> dict[str, Any] | None:
    """A block of ``kind`` on a ``c`` x ``hw`` x ``hw`` input (None where it does not fit); a
    convolution is full, depthwise or grouped with the weights ``modes``."""
    act = rng.choice(ACTIVATIONS)
    if kind == "conv":
        k = rng.choice((1, 1, 3, 3, 3, 5, 7))
        s = 2 if hw > 7 and rng.random() < 0.25 else 1
        mode = rng.choices(("full", "depthwise", "grouped"), weights=modes)[0]
        if mode == "depthwise" and c > 3:
            cout, g = c, c
        elif mode == "grouped" and c >= 16:
            # ResNeXt / RegNet: a group width of 4-64 channels
            g = rng.choice([c // gw for gw in (4, 8, 16, 24, 32, 48, 64) if c % gw == 0 and c // gw >= 2] or [1])
            fits = tuple(w for w in WIDTHS if w % g == 0)
            cout = c if rng.random() < 0.7 or not fits else _near(fits, c, rng)
        else:
            cout, g = _near(WIDTHS, c, rng), 1
        out_hw = (hw + s - 1) // s
        dilation = 2 if k == 3 and s == 1 and rng.random() < 0.05 else 1
        block = {"kind": kind, "c": c, "cout": cout, "k": k, "s": s, "g": g, "bn": rng.random() < 0.85,
                 "act": act, "dilation": dilation, "out": [cout, out_hw]}
        macs = out_hw * out_hw * cout * (c // g) * k * k
    elif kind == "residual":
        mid = _near(WIDTHS, c, rng)
        k = rng.choice((1, 3, 3, 5))
        dw = rng.random() < 0.5
        block = {"kind": kind, "c": c, "mid": mid, "k": k, "dw": dw, "act": act if act != "none" else "relu",
                 "out": [c, hw]}
        macs = hw * hw * (2 * c * mid + (mid * k * k if dw else mid * mid * k * k))
    elif kind == "se":
        block = {"kind": kind, "c": c, "r": rng.choice((4, 8, 16, 24)),
                 "gate": rng.choice(("sigmoid", "hardsigmoid")), "squeeze": rng.choice(("pool", "pool", "mean")),
                 "inner": rng.choice(("relu", "silu")), "out": [c, hw]}
        macs = hw * hw * c
    elif kind == "pool":
        if hw < 4:
            return None
        k = rng.choice((2, 3))
        block = {"kind": kind, "c": c, "op": rng.choice(("max", "avg")), "k": k,
                 "out": [c, (hw + 2 * ((k - 1) // 2) - k) // 2 + 1]}
        macs = hw * hw * c
    elif kind == "concat":
        growth = rng.choice((12, 16, 32, 48, 64))
        layers = rng.choice((1, 1, 2, 4, 8, 16))
        block = {"kind": kind, "c": c, "growth": growth, "k": rng.choice((1, 3)), "act": act, "layers": layers,
                 "out": [c + layers * growth, hw]}
        macs = hw * hw * growth * block["k"] ** 2 * sum(c + i * growth for i in range(layers))
    elif kind == "inception":
        ks = [rng.choice((1, 3, 5)) for _ in range(rng.choice((2, 3, 4)))]
        widths = [_near(WIDTHS, max(c // len(ks), 8), rng) for _ in ks]
        block = {"kind": kind, "c": c, "ks": ks, "widths": widths, "act": act, "out": [sum(widths), hw]}
        macs = hw * hw * c * sum(w * k * k for w, k in zip(widths, ks))
    elif kind == "shuffle":
        groups = [g for g in (2, 3, 4, 8) if c % g == 0 and c > g]
        if not groups:
            return None
        split = c % 2 == 0 and c >= 16 and rng.random() < 0.6
        block = {"kind": kind, "c": c, "groups": rng.choice(groups), "split": split, "out": [c, hw]}
        macs = hw * hw * c * (c // 2 + 9) if split else hw * hw * c
    elif kind == "convnext":
        if c < 8:
            return None
        block = {"kind": kind, "c": c, "k": rng.choice((3, 7, 7)), "expand": rng.choice((2, 4)), "out": [c, hw]}
        macs = hw * hw * c * (block["k"] ** 2 + 2 * block["expand"] * c)
    else:
        return None
    return block if macs <= MAX_BLOCK_MACS and block["out"][0] * block["out"][1] ** 2 <= MAX_ACTIVATION else None


def build(spec: dict[str, Any]) -> nn.Module:
    """The network a spec describes (random weights, eval mode; an ``nn.Sequential`` whose
    module ``i`` is block ``i``, so each kernel's name tells the block it came from)."""
    torch.manual_seed(int(spec.get("seed", 0)))
    return nn.Sequential(*(_module(b) for b in spec["blocks"])).eval()


def _module(b: dict[str, Any]) -> nn.Module:
    kind, c = b["kind"], b["c"]
    if kind == "conv":
        return _conv_bn(c, b["cout"], b["k"], b["s"], b["g"], b["bn"], b["act"], b.get("dilation", 1))
    if kind == "residual":
        mid, k = b["mid"], b["k"]
        if b["dw"]:
            body = nn.Sequential(_conv_bn(c, mid, 1, 1, 1, True, b["act"]), _conv_bn(mid, mid, k, 1, mid, True, b["act"]),
                                 _conv_bn(mid, c, 1, 1, 1, True, "none"))
        else:
            body = nn.Sequential(_conv_bn(c, mid, k, 1, 1, True, b["act"]), _conv_bn(mid, c, k, 1, 1, True, "none"))
        return _Residual(body)
    if kind == "se":
        return _SE(c, b["r"], b["gate"], b.get("squeeze", "mean"), b.get("inner", "relu"))
    if kind == "pool":
        pool = nn.MaxPool2d if b["op"] == "max" else nn.AvgPool2d
        return pool(b["k"], 2, (b["k"] - 1) // 2)
    if kind == "concat":
        growth, layers = b["growth"], b.get("layers", 1)
        return _Dense([_conv_bn(c + i * growth, growth, b["k"], 1, 1, True, b["act"]) for i in range(layers)])
    if kind == "inception":
        return _Branches([_conv_bn(c, w, k, 1, 1, True, b["act"]) for w, k in zip(b["widths"], b["ks"])])
    if kind == "shuffle":
        half = c // 2
        branch = nn.Sequential(_conv_bn(half, half, 1, 1, 1, True, "relu"), _conv_bn(half, half, 3, 1, half, True, "none"),
                               _conv_bn(half, half, 1, 1, 1, True, "relu")) if b.get("split") else None
        return _Shuffle(b["groups"], branch)
    if kind == "convnext":
        return _ConvNeXt(c, b["k"], b["expand"])
    if kind == "head":
        return _Head(c, b["classes"])
    if kind == "op":
        if b["op"] == "conv":
            return _module({**b, "kind": "conv"})
        if b["op"] == "pool":
            return _module({**b, "kind": "pool", "op": b["pool"]})
        if b["op"] == "act":
            return nn.Hardsigmoid() if b["act"] == "hardsigmoid" else _act(b["act"])
        return _Single("fc" if b["op"] == "fc_wide" else b["op"], c, b.get("cout", 0))
    raise ValueError(f"unknown block kind {kind!r}")
