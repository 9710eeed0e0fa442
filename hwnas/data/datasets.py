"""Datasets: an offline default (scikit-learn's 8x8 digits, resized), CIFAR-10 from a
local folder, and any ImageFolder.

Every dataset comes as three splits: ``train`` (weight steps), ``val`` (architecture
steps; searches train on ``train`` and ``val`` alternately) and ``test`` (final
evaluation). Retraining a derived network uses ``train`` + ``val``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset

from hwnas.errors import HwnasError

DATASETS = ("digits", "cifar10", "imagefolder")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Splits:
    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    resolution: int

    def loader(self, split: str, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0) -> DataLoader:
        """Shuffling is a function of (seed, epoch), so a resumed run sees the same batches."""
        ds = {"train": self.train, "val": self.val, "test": self.test,
              "trainval": ConcatDataset([self.train, self.val])}[split]
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=False)


def _split_indices(n: int, seed: int, fractions: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a = int(n * fractions[0])
    b = a + int(n * fractions[1])
    return perm[:a], perm[a:b], perm[b:]


def digits(resolution: int = 32, seed: int = 0) -> Splits:
    """1,797 8x8 grey digits shipped with scikit-learn, resized to ``resolution`` and
    repeated to 3 channels: 40 % train, 40 % val, 20 % test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    y = torch.tensor(d.target, dtype=torch.long)
    tr, va, te = _split_indices(len(y), seed, (0.4, 0.4))
    full = TensorDataset(x, y)
    return Splits("digits", Subset(full, tr.tolist()), Subset(full, va.tolist()), Subset(full, te.tolist()), 10,
                  resolution)


def _transform(resolution: int):
    from torchvision import transforms

    return transforms.Compose([transforms.Resize((resolution, resolution)), transforms.ToTensor(),
                               transforms.Normalize(MEAN, STD)])


def cifar10(data_dir: str | None, resolution: int = 32, seed: int = 0) -> Splits:
    from torchvision.datasets import CIFAR10

    if not data_dir:
        raise HwnasError("--data cifar10 needs --data-dir DIR holding cifar-10-batches-py/ (the python version "
                         "of CIFAR-10, extracted; hwnas does not download)")
    root = Path(data_dir)
    if not (root / "cifar-10-batches-py").is_dir():
        raise HwnasError(f"{root} has no cifar-10-batches-py/ folder: extract cifar-10-python.tar.gz there")
    try:
        train = CIFAR10(str(root), train=True, download=False, transform=_transform(resolution))
        test = CIFAR10(str(root), train=False, download=False, transform=_transform(resolution))
    except RuntimeError as e:
        raise HwnasError(f"CIFAR-10 in {root} is incomplete or corrupt: {e}") from None
    tr, va, _ = _split_indices(len(train), seed, (0.5, 0.5))
    return Splits("cifar10", Subset(train, tr.tolist()), Subset(train, va.tolist()), test, 10, resolution)


def image_folder(data_dir: str | None, resolution: int, seed: int = 0) -> Splits:
    from torchvision.datasets import ImageFolder

    if not data_dir:
        raise HwnasError("--data imagefolder needs --data-dir DIR with one sub-folder of images per class")
    root = Path(data_dir)
    if not root.is_dir():
        raise HwnasError(f"data folder {root} does not exist")
    try:
        ds = ImageFolder(str(root), transform=_transform(resolution))
    except (FileNotFoundError, RuntimeError) as e:
        raise HwnasError(f"{root} is not an image folder (one sub-folder per class with images): {e}") from None
    if len(ds.classes) < 2:
        raise HwnasError(f"{root} has {len(ds.classes)} class folder(s); need at least 2")
    tr, va, te = _split_indices(len(ds), seed, (0.4, 0.4))
    return Splits(f"imagefolder:{root}", Subset(ds, tr.tolist()), Subset(ds, va.tolist()), Subset(ds, te.tolist()),
                  len(ds.classes), resolution)


def load(name: str, data_dir: str | None = None, resolution: int = 32, seed: int = 0) -> Splits:
    if name == "digits":
        return digits(resolution, seed)
    if name == "cifar10":
        return cifar10(data_dir, resolution, seed)
    if name == "imagefolder":
        return image_folder(data_dir, resolution, seed)
    raise HwnasError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
