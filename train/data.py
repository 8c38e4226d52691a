"""Image datasets: scikit-learn's digits (bundled), MNIST and Fashion-MNIST
(IDX files), CIFAR-10 (the python pickle batches); event datasets (N-MNIST,
SHD) live in ``events.py``. Each reads the publisher's on-disk format and
downloads only when asked (``download=True``; see ``download.py``).

Images are float32 in [0, 1] with shape (N, C, H, W); labels are int64.
"""
from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lavasparse.defaults import DATASETS

from .download import check_sha256sums, download as fetch
from .events import load_nmnist, load_shd


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
    # scikit-learn: only digits needs it, and it takes a second to import
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


def _find(data_dir: Path, stem: str, what: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).exists():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: no {stem} or {stem}.gz ({what} IDX files expected here; "
                            f"--download fetches them where you are online)")


def _prepare(dataset: str, data_dir: str | Path | None, download: bool) -> Path:
    if data_dir is None:
        raise ValueError(f"{dataset} needs --data-dir (where its files are, or go with --download)")
    data_dir = Path(data_dir)
    if download:
        fetch(dataset, data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: no such folder ({dataset}; --download fetches the files)")
    check_sha256sums(data_dir)
    return data_dir


def load_idx_dataset(name: str, data_dir: str | Path, download: bool = False) -> tuple[ImageDataset, ImageDataset]:
    """MNIST or Fashion-MNIST (``name``) from the four IDX files in ``data_dir``
    (gzipped or not), as both publishers ship them."""
    data_dir = _prepare(name, data_dir, download)
    out = []
    for split in ("train", "t10k"):
        images = read_idx(_find(data_dir, f"{split}-images-idx3-ubyte", name))
        labels = read_idx(_find(data_dir, f"{split}-labels-idx1-ubyte", name))
        if len(images) != len(labels):
            raise ValueError(f"{data_dir}: {split} has {len(images)} images but {len(labels)} labels")
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{data_dir}: {split} images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
        out.append(ImageDataset(name, (images / 255.0).astype(np.float32)[:, None],
                                labels.astype(np.int64), 10))
    return out[0], out[1]


def load_mnist(data_dir: str | Path, download: bool = False) -> tuple[ImageDataset, ImageDataset]:
    """MNIST from the four IDX files in ``data_dir`` (gzipped or not)."""
    return load_idx_dataset("mnist", data_dir, download)


def _cifar_folder(data_dir: Path) -> Path:
    """The folder holding the batches: data_dir itself, its
    cifar-10-batches-py, or the official tar.gz unpacked into data_dir."""
    for cand in (data_dir, data_dir / "cifar-10-batches-py"):
        if (cand / "data_batch_1").exists():
            return cand
    archive = data_dir / "cifar-10-python.tar.gz"
    if archive.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(data_dir, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(data_dir)
        return data_dir / "cifar-10-batches-py"
    raise FileNotFoundError(f"{data_dir}: no CIFAR-10 python batches (data_batch_1..5, test_batch) nor "
                            f"cifar-10-python.tar.gz; --download fetches it")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (images uint8 (N, 3, 32, 32), labels int64).
    The file is a pickled dict with b'data' (N, 3072: 1024 red, 1024 green,
    1024 blue values, rows top to bottom) and b'labels'. Errors name file and key."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (a pickled {type(batch).__name__})")
    for key in (b"data", b"labels"):
        if key not in batch:
            raise ValueError(f"{path}: missing key {key.decode()!r}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise ValueError(f"{path}: 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(data_dir: str | Path, download: bool = False) -> tuple[ImageDataset, ImageDataset]:
    """CIFAR-10 from the python version's pickled batches (50,000 + 10,000 RGB 32x32)."""
    folder = _cifar_folder(_prepare("cifar10", data_dir, download))
    parts = [read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test = read_cifar_batch(folder / "test_batch")
    to_set = lambda x, y: ImageDataset("cifar10", (x / 255.0).astype(np.float32), y, 10)
    return (to_set(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
            to_set(*test))


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False):
    """(train, test) for ``name`` in DATASETS: ImageDatasets, or EventDatasets
    for nmnist and shd. Only digits needs no files."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_idx_dataset(name, data_dir, download)
    if name == "cifar10":
        return load_cifar10(data_dir, download)
    if name in ("nmnist", "shd"):
        return (load_nmnist if name == "nmnist" else load_shd)(_prepare(name, data_dir, download))
    raise ValueError(f"unknown dataset {name!r}: expected one of {DATASETS}")


def train_val_split(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of range(n) into (train, validation) indices, 80/20 by default."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
