"""``clutter``: an offline proxy task harder than digits, built from what ships with scikit-learn.

Plain digits saturates: almost any network reaches 97-99 %, so it cannot tell a good
architecture from a poor one. ``clutter`` composites the same 1,797 handwritten digits,
each randomly scaled, rotated, moved and coloured, over random crops of the two photos that
scikit-learn ships (``china.jpg``, ``flower.jpg``, recoloured by a random channel
permutation and gain), adds a faint second digit as a distractor and pixel noise. To read
the digit a network must separate a thin coloured shape from textured clutter at several
scales, which is what separates architectures on CIFAR-10 too (tools/bench_proxy.py
measures how well the two rankings agree).

Deterministic for a seed. The originals are split 40/40/20 before generation, so the test
split shows digits written by nobody the network trained on; each split is ``per_digit``
composites per original.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from hwnas.data.datasets import MEAN, STD

PHOTO_SIDE = 160
"""The photos are shrunk to this height first; crops are taken from the shrunk copy."""
SEED_OFFSET = 2718
"""Split ``k`` of seed ``s`` is generated with seed ``10 s + k + SEED_OFFSET``."""


@lru_cache(maxsize=1)
def _photos() -> torch.Tensor:
    """The two photos, decoded and shrunk once per process (every split crops from them)."""
    from sklearn.datasets import load_sample_images

    imgs = torch.tensor(np.stack(load_sample_images().images), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    h, w = imgs.shape[-2:]
    return F.interpolate(imgs, size=(PHOTO_SIDE, int(PHOTO_SIDE * w / h)), mode="bilinear", antialias=True,
                         align_corners=False)


def _glyphs(images: np.ndarray, idx: np.ndarray, g: torch.Generator, resolution: int,
            scale: tuple[float, float]) -> torch.Tensor:
    """N x 1 x R x R masks: each digit scaled, rotated and moved with a random affine map."""
    n = len(idx)
    src = torch.tensor(images[idx], dtype=torch.float32).unsqueeze(1) / 16.0
    src = F.interpolate(src, size=(16, 16), mode="bilinear", align_corners=False)
    s = torch.empty(n).uniform_(*scale, generator=g)  # glyph side as a fraction of the canvas
    angle = torch.empty(n).uniform_(-0.45, 0.45, generator=g)
    room = (1.0 - s).clamp(min=0.0)
    tx = (torch.rand(n, generator=g) * 2 - 1) * room
    ty = (torch.rand(n, generator=g) * 2 - 1) * room
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, -(cos * tx - sin * ty)], 1),
                         torch.stack([sin, cos, -(sin * tx + cos * ty)], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, resolution, resolution], align_corners=False)
    return F.grid_sample(src, grid, padding_mode="zeros", align_corners=False).clamp(0, 1)


def _backgrounds(photos: torch.Tensor, n: int, g: torch.Generator, resolution: int) -> torch.Tensor:
    """N x 3 x R x R random crops of the photos (side 20-80 % of the photo height), recoloured."""
    out = torch.empty(n, 3, resolution, resolution)
    _, _, h, w = photos.shape
    which = torch.randint(0, len(photos), (n,), generator=g)
    side = torch.empty(n).uniform_(0.2, 0.8, generator=g)
    cx = torch.rand(n, generator=g) * 2 - 1
    cy = torch.rand(n, generator=g) * 2 - 1
    for p in range(len(photos)):
        sel = torch.nonzero(which == p).flatten()
        if not len(sel):
            continue
        sx, sy = side[sel] * h / w, side[sel]
        theta = torch.zeros(len(sel), 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = sx, sy
        theta[:, 0, 2], theta[:, 1, 2] = cx[sel] * (1 - sx), cy[sel] * (1 - sy)
        for start in range(0, len(sel), 512):
            part = sel[start:start + 512]
            grid = F.affine_grid(theta[start:start + 512], [len(part), 3, resolution, resolution], align_corners=False)
            out[part] = F.grid_sample(photos[p:p + 1].expand(len(part), -1, -1, -1), grid, align_corners=False)
    perm = torch.stack([torch.randperm(3, generator=g) for _ in range(n)])
    out = torch.gather(out, 1, perm.view(n, 3, 1, 1).expand_as(out))
    gain = torch.empty(n, 3, 1, 1).uniform_(0.6, 1.3, generator=g)
    return (out * gain).clamp(0, 1)


def composite(images: np.ndarray, labels: np.ndarray, per_digit: int, resolution: int,
              seed: int) -> TensorDataset:
    """``per_digit`` cluttered composites of each given 8x8 digit, normalised like ImageNet."""
    g = torch.Generator().manual_seed(seed)
    idx = np.repeat(np.arange(len(images)), per_digit)
    n = len(idx)
    bg = _backgrounds(_photos(), n, g, resolution)
    mask = _glyphs(images, idx, g, resolution, (0.5, 0.9))
    other = np.asarray(torch.randint(0, len(images), (n,), generator=g))
    distractor = _glyphs(images, other, g, resolution, (0.3, 0.6)) * torch.empty(n, 1, 1, 1).uniform_(
        0.2, 0.45, generator=g)
    colour = torch.rand(n, 3, 1, 1, generator=g)
    # push the digit's colour away from the background's mean so the task stays solvable
    mean = bg.mean(dim=(2, 3), keepdim=True)
    colour = torch.where((colour - mean).abs() < 0.25, (mean + 0.5) % 1.0, colour)
    d_colour = torch.rand(n, 3, 1, 1, generator=g)
    alpha = torch.empty(n, 1, 1, 1).uniform_(0.7, 1.0, generator=g)
    x = bg * (1 - distractor) + d_colour * distractor
    x = x * (1 - alpha * mask) + colour * alpha * mask
    x = (x + 0.04 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return TensorDataset(x.contiguous(), torch.tensor(labels[idx], dtype=torch.long))


def clutter_splits(resolution: int = 32, seed: int = 0, per_digit: int = 8) -> tuple[TensorDataset, ...]:
    """train, val and test: the digits split 40/40/20, ``per_digit`` composites of each."""
    from sklearn.datasets import load_digits

    d = load_digits()
    perm = np.random.default_rng(seed).permutation(len(d.target))
    a, b = int(0.4 * len(perm)), int(0.8 * len(perm))
    parts = (perm[:a], perm[a:b], perm[b:])
    return tuple(composite(d.images[p], d.target[p], per_digit, resolution, seed * 10 + k + SEED_OFFSET)
                 for k, p in enumerate(parts))
