"""Datasets: two offline ones (scikit-learn's 8x8 digits, resized: the quick default; and
``clutter``, the same digits composited over photo clutter, a proxy task that separates
architectures, see :mod:`hwnas.data.clutter`), CIFAR-10 from a local folder, and any
ImageFolder.

Every dataset comes as three splits: ``train`` (weight steps), ``val`` (architecture
steps; searches train on ``train`` and ``val`` alternately) and ``test`` (final
evaluation). Retraining a derived network uses ``train`` + ``val``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset

from hwnas.errors import HwnasError

DATASETS = ("digits", "clutter", "cifar10", "imagefolder")
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

    def with_train_fraction(self, fraction: float, seed: int = 0) -> "Splits":
        """The same splits with a seeded ``fraction`` of the train split (a cheaper fidelity)."""
        n = len(self.train)
        keep = np.sort(np.random.default_rng(seed).permutation(n)[:max(1, int(round(fraction * n)))])
        return replace(self, train=Subset(self.train, keep.tolist()))

    def at_resolution(self, resolution: int) -> "Splits":
        """The same images resized to ``resolution`` (bilinear), every split, computed once."""
        if resolution == self.resolution:
            return self
        return replace(self, train=resized(self.train, resolution), val=resized(self.val, resolution),
                       test=resized(self.test, resolution), resolution=resolution)


def resized(ds: Dataset, resolution: int) -> TensorDataset:
    """A dataset's images resized, batch by batch, into memory (a lower resolution is smaller)."""
    xs, ys = [], []
    for x, y in DataLoader(ds, batch_size=512, shuffle=False):
        xs.append(F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False))
        ys.append(y)
    return TensorDataset(torch.cat(xs), torch.cat(ys))


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


def clutter(resolution: int = 32, seed: int = 0) -> Splits:
    """Digits over photo clutter (:mod:`hwnas.data.clutter`): 8 composites of each digit,
    5,744 train, 5,752 val and 2,880 test images."""
    from hwnas.data.clutter import clutter_splits

    train, val, test = clutter_splits(resolution, seed)
    return Splits("clutter", train, val, test, 10, resolution)


def _normalise(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 N x 3 x H x W images -> float, resized to ``resolution``, normalised."""
    x = x.float() / 255.0
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


CIFAR_RECORD = 1 + 3 * 32 * 32
"""A record of the binary CIFAR-10: one label byte, then the red, green and blue 32x32 planes."""


def _cifar_batches(folder: Path, names: list[str]) -> TensorDataset:
    raw = []
    for name in names:
        f = folder / name
        if not f.is_file():
            raise HwnasError(f"CIFAR-10 in {folder} is incomplete: {name} is missing")
        data = np.fromfile(f, dtype=np.uint8)
        if data.size == 0 or data.size % CIFAR_RECORD:
            raise HwnasError(f"{f} is not a CIFAR-10 binary batch ({data.size} bytes, not a multiple of "
                             f"{CIFAR_RECORD}-byte records)")
        raw.append(data.reshape(-1, CIFAR_RECORD))
    records = np.concatenate(raw)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise HwnasError(f"CIFAR-10 in {folder} has label {labels.max()} (0-9 expected): is it the binary version?")
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())
    return TensorDataset(images, torch.from_numpy(labels))


class _Resized(Dataset):
    """Normalises and resizes a uint8 image dataset batch by batch, on access."""

    def __init__(self, base: TensorDataset, resolution: int) -> None:
        self.base, self.resolution = base, resolution

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base[i]
        return _normalise(x.unsqueeze(0), self.resolution)[0], y


def cifar10(data_dir: str | None, resolution: int = 32, seed: int = 0) -> Splits:
    """CIFAR-10 from its binary version (``cifar-10-batches-bin``): fixed-size records of raw
    bytes, read with numpy. (The python version is pickled, and hwnas never unpickles a
    file it is handed.)"""
    if not data_dir:
        raise HwnasError("--data cifar10 needs --data-dir DIR holding cifar-10-batches-bin/ (the binary version "
                         "of CIFAR-10, cifar-10-binary.tar.gz extracted; hwnas does not download)")
    root = Path(data_dir)
    folder = root / "cifar-10-batches-bin"
    if not folder.is_dir():
        hint = (" (that is the pickled python version, which hwnas does not read: use the binary version, "
                "cifar-10-binary.tar.gz)") if (root / "cifar-10-batches-py").is_dir() else ""
        raise HwnasError(f"{root} has no cifar-10-batches-bin/ folder: extract cifar-10-binary.tar.gz there{hint}")
    train = _Resized(_cifar_batches(folder, [f"data_batch_{i}.bin" for i in range(1, 6)]), resolution)
    test = _Resized(_cifar_batches(folder, ["test_batch.bin"]), resolution)
    tr, va, _ = _split_indices(len(train), seed, (0.5, 0.5))
    return Splits("cifar10", Subset(train, tr.tolist()), Subset(train, va.tolist()), test, 10, resolution)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


class _ImageFiles(Dataset):
    """Image files read with PIL on access, as RGB, resized and normalised."""

    def __init__(self, files: list[tuple[Path, int]], resolution: int) -> None:
        self.files, self.resolution = files, resolution

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image, UnidentifiedImageError

        path, label = self.files[i]
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB").resize((self.resolution, self.resolution), Image.BILINEAR))
        except (UnidentifiedImageError, OSError) as e:
            raise HwnasError(f"{path} is not an image PIL can read ({e})") from None
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).unsqueeze(0)
        return _normalise(x, self.resolution)[0], label


def image_folder(data_dir: str | None, resolution: int, seed: int = 0) -> Splits:
    """One sub-folder of images per class (torchvision's ImageFolder layout): classes in
    sorted folder order, 40 % train, 40 % val, 20 % test."""
    if not data_dir:
        raise HwnasError("--data imagefolder needs --data-dir DIR with one sub-folder of images per class")
    root = Path(data_dir)
    if not root.is_dir():
        raise HwnasError(f"data folder {root} does not exist")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = [(f, label) for label, c in enumerate(classes) for f in sorted((root / c).rglob("*"))
             if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    if len(classes) < 2:
        raise HwnasError(f"{root} has {len(classes)} class folder(s); need at least 2 (one sub-folder per class)")
    empty = [c for i, c in enumerate(classes) if not any(label == i for _, label in files)]
    if empty:
        raise HwnasError(f"{root}: class folder(s) {', '.join(empty)} hold no images ({', '.join(IMAGE_SUFFIXES)})")
    ds = _ImageFiles(files, resolution)
    tr, va, te = _split_indices(len(ds), seed, (0.4, 0.4))
    return Splits(f"imagefolder:{root}", Subset(ds, tr.tolist()), Subset(ds, va.tolist()), Subset(ds, te.tolist()),
                  len(classes), resolution)


def load(name: str, data_dir: str | None = None, resolution: int = 32, seed: int = 0) -> Splits:
    if name == "digits":
        return digits(resolution, seed)
    if name == "clutter":
        return clutter(resolution, seed)
    if name == "cifar10":
        return cifar10(data_dir, resolution, seed)
    if name == "imagefolder":
        return image_folder(data_dir, resolution, seed)
    raise HwnasError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
