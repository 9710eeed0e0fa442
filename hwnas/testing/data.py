"""Small real data for tests of anything that trains: scikit-learn's digits, cut down."""

from __future__ import annotations

import dataclasses

from torch.utils.data import Subset

from hwnas.data.datasets import Splits, load


def tiny_digits(resolution: int = 16, train: int = 192, val: int = 96) -> Splits:
    """The digits at ``resolution`` with the first ``train`` / ``val`` images of those splits."""
    data = load("digits", resolution=resolution)
    return dataclasses.replace(data, train=Subset(data.train, range(train)), val=Subset(data.val, range(val)))
