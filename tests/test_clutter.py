"""The offline proxy task: deterministic, balanced, test digits unseen, and images that are
actually cluttered (not plain digits on black)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.data.clutter import MEAN, STD, composite
from hwnas.data.datasets import load


@pytest.fixture(scope="module")
def splits():
    return load("clutter", resolution=16, seed=0)


def test_splits_sizes_classes_and_determinism(splits) -> None:
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5744, 5752, 2880)
    assert splits.name == "clutter" and splits.num_classes == 10 and splits.resolution == 16
    x, y = splits.train.tensors
    assert x.shape == (5744, 3, 16, 16) and torch.isfinite(x).all()
    counts = np.bincount(y.numpy(), minlength=10)
    assert counts.min() > 0.8 * counts.mean()  # every digit, roughly balanced
    again = load("clutter", resolution=16, seed=0)
    assert torch.equal(again.test.tensors[0], splits.test.tensors[0])
    other = load("clutter", resolution=16, seed=1)
    assert not torch.equal(other.test.tensors[0], splits.test.tensors[0])


def test_images_are_cluttered(splits) -> None:
    x = splits.test.tensors[0] * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert float(x.min()) >= -1e-5 and float(x.max()) <= 1 + 1e-5
    # the background is a photo, not black: most pixels of most images are lit, in colour
    assert float((x.mean(dim=1) > 0.1).float().mean()) > 0.8
    assert float((x.std(dim=1)).mean()) > 0.05


def test_each_original_gives_per_digit_composites() -> None:
    images = np.zeros((3, 8, 8))
    images[:, 2:6, 3:5] = 16  # a bar
    ds = composite(images, np.array([4, 7, 1]), per_digit=2, resolution=12, seed=3)
    assert ds.tensors[0].shape == (6, 3, 12, 12)
    assert ds.tensors[1].tolist() == [4, 4, 7, 7, 1, 1]
