"""Datasets that need no download: scikit-learn's digits and MNIST from IDX files.

Images are float32 in [0, 1] with shape (N, C, H, W); labels are int64.
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class ImageDataset:
    """A labelled image set: ``images`` (N, C, H, W) in [0, 1], ``labels`` (N,)."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "ImageDataset":
        return ImageDataset(self.name, self.images[index], self.labels[index], self.num_classes)


def load_digits() -> tuple[ImageDataset, ImageDataset]:
    """scikit-learn's bundled 8x8 digits (1,797 images, real data, no download).

    Returns (train, test): a fixed, stratified 80/20 split (seed 0), so that the
    test set is the same for every run.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    bunch = _load()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels)
    full = ImageDataset("digits", images, labels, 10)
    return full.subset(train_idx), full.subset(test_idx)


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped), as MNIST and Fashion-MNIST ship.

    Raises ValueError naming the file when the header does not match its size.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} ({int(np.prod(dims))} values), "
                         f"file holds {data.size}")
    return data.reshape(dims)


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).exists():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: no {stem} or {stem}.gz (MNIST IDX files expected here)")


def load_mnist(data_dir: str | Path) -> tuple[ImageDataset, ImageDataset]:
    """MNIST from the four IDX files in ``data_dir`` (gzipped or not); no download."""
    data_dir = Path(data_dir)
    out = []
    for split in ("train", "t10k"):
        images = read_idx(_find(data_dir, f"{split}-images-idx3-ubyte"))
        labels = read_idx(_find(data_dir, f"{split}-labels-idx1-ubyte"))
        if len(images) != len(labels):
            raise ValueError(f"{data_dir}: {split} has {len(images)} images but {len(labels)} labels")
        out.append(ImageDataset("mnist", (images / 255.0).astype(np.float32)[:, None],
                                labels.astype(np.int64), 10))
    return out[0], out[1]


def load_dataset(name: str, data_dir: str | Path | None = None) -> tuple[ImageDataset, ImageDataset]:
    """(train, test) for ``name`` in {'digits', 'mnist'}."""
    if name == "digits":
        return load_digits()
    if name == "mnist":
        if data_dir is None:
            raise ValueError("mnist needs --data-dir (a folder with the four IDX files)")
        return load_mnist(data_dir)
    raise ValueError(f"unknown dataset {name!r}: expected 'digits' or 'mnist'")


def train_val_split(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of range(n) into (train, validation) indices, 80/20 by default."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
