"""Event datasets, read from the publishers' files: N-MNIST (Orchard et al.
2015, binary event files) and SHD (Cramer et al. 2020, HDF5). Events are kept
sparse (one int32 neuron index and one float32 time per event) and binned
into a sample's time steps only when a batch is drawn.
"""
from __future__ import annotations

import gzip
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch


@dataclass
class EventDataset:
    """Labelled event streams. Sample i's events are ``neuron[offsets[i]:
    offsets[i+1]]`` (flat index into ``shape``) at ``times`` (seconds from the
    sample's start); ``duration`` (seconds) is the window binned into steps."""

    name: str
    shape: tuple[int, ...]
    offsets: np.ndarray          # (N + 1,) int64
    neuron: np.ndarray           # (E,) int32
    times: np.ndarray            # (E,) float32, seconds
    labels: np.ndarray           # (N,) int64
    num_classes: int
    duration: float

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "EventDataset":
        index = np.asarray(index)
        starts, ends = self.offsets[index], self.offsets[index + 1]
        take = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(index) else np.zeros(0, int)
        offsets = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
        return EventDataset(self.name, self.shape, offsets, self.neuron[take], self.times[take],
                            self.labels[index], self.num_classes, self.duration)

    def spikes(self, index: np.ndarray, steps: int) -> torch.Tensor:
        """Samples ``index`` as 0/1 spikes (B, *shape, steps), float32: a neuron
        spikes in a step when it has at least one event in that step's share
        of ``duration``; later events are dropped."""
        index = np.asarray(index)
        n = int(np.prod(self.shape))
        out = torch.zeros(len(index), n * steps)
        for row, i in enumerate(index):
            a, b = self.offsets[i], self.offsets[i + 1]
            step = np.floor(self.times[a:b] / self.duration * steps).astype(np.int64)
            keep = (step >= 0) & (step < steps)
            flat = self.neuron[a:b][keep].astype(np.int64) * steps + step[keep]
            out[row, torch.as_tensor(np.unique(flat))] = 1.0
        return out.reshape(len(index), *self.shape, steps)


def decode_nmnist(raw: bytes, where: str = "") -> np.ndarray:
    """Events of one N-MNIST .bin file as (E, 4) int64 columns x, y, polarity,
    time (µs). Each event is 40 bits: x (8), y (8), polarity (1), time (23,
    big-endian). An event with y == 240 marks a timer overflow: later times
    grow by 2**13 µs (as in Orchard's reader)."""
    if len(raw) % 5:
        raise ValueError(f"{where}: {len(raw)} bytes is not a whole number of 5-byte N-MNIST events")
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = b[:, 0], b[:, 1]
    p = b[:, 2] >> 7
    t = ((b[:, 2] & 127) << 16) | (b[:, 3] << 8) | b[:, 4]
    overflow = y == 240
    t = t + np.cumsum(overflow) * (1 << 13)
    keep = ~overflow
    ev = np.stack([x[keep], y[keep], p[keep], t[keep]], axis=1)
    if len(ev) and (ev[:, 0].max() >= 34 or ev[:, 1].max() >= 34):
        raise ValueError(f"{where}: event outside the 34x34 sensor")
    return ev


def encode_nmnist(events: np.ndarray) -> bytes:
    """The inverse of ``decode_nmnist`` for times below 2**23 µs (used by tests
    to write files in the exact format)."""
    ev = np.asarray(events, dtype=np.int64)
    out = np.zeros((len(ev), 5), np.uint8)
    out[:, 0], out[:, 1] = ev[:, 0], ev[:, 1]
    out[:, 2] = (ev[:, 2] << 7) | ((ev[:, 3] >> 16) & 127)
    out[:, 3] = (ev[:, 3] >> 8) & 255
    out[:, 4] = ev[:, 3] & 255
    return out.tobytes()


def _nmnist_split(root: Path, split: str) -> tuple[list[np.ndarray], list[int]]:
    """Read <root>/<split>/<digit>/*.bin, unzipping <root>/<split>.zip first if needed."""
    folder = root / split
    if not folder.is_dir() and (root / f"{split}.zip").exists():
        with zipfile.ZipFile(root / f"{split}.zip") as z:
            z.extractall(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"{root}: no {split}/ folder nor {split}.zip (N-MNIST: {split}/0..9/*.bin; "
                                f"--download fetches it)")
    events, labels = [], []
    for digit in range(10):
        for f in sorted((folder / str(digit)).glob("*.bin")):
            events.append(decode_nmnist(f.read_bytes(), str(f)))
            labels.append(digit)
    if not events:
        raise FileNotFoundError(f"{folder}: no .bin files in 0/..9/")
    return events, labels


def _pack(name, shape, events_idx_t, labels, num_classes, duration) -> EventDataset:
    counts = np.array([len(i) for i, _ in events_idx_t], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    neuron = np.concatenate([i for i, _ in events_idx_t]).astype(np.int32) if len(counts) else np.zeros(0, np.int32)
    times = np.concatenate([t for _, t in events_idx_t]).astype(np.float32) if len(counts) else np.zeros(0, np.float32)
    return EventDataset(name, shape, offsets, neuron, times, np.asarray(labels, np.int64), num_classes, duration)


NMNIST_DURATION_S = 0.3   # three 100 ms saccades per sample


def load_nmnist(root: str | Path) -> tuple[EventDataset, EventDataset]:
    """N-MNIST (Train/, Test/ or their zips), neurons (polarity, y, x) = (2, 34, 34)."""
    root = Path(root)
    out = []
    for split in ("Train", "Test"):
        events, labels = _nmnist_split(root, split)
        # flat index (p, y, x) in C order; times in seconds
        idx_t = [(e[:, 2] * 34 * 34 + e[:, 1] * 34 + e[:, 0], e[:, 3] * 1e-6) for e in events]
        out.append(_pack("nmnist", (2, 34, 34), idx_t, labels, 10, NMNIST_DURATION_S))
    return out[0], out[1]


SHD_UNITS = 700
SHD_DURATION_S = 1.0   # most SHD samples end before 1 s; later spikes are dropped


def read_shd(path: str | Path) -> EventDataset:
    """One SHD HDF5 file: spikes/times (ragged float, seconds), spikes/units
    (ragged ints, 0..699), labels (0..19). Errors name the file and field."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 file ({e})") from None
    with f:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f:
                raise ValueError(f"{path}: missing {key}")
        times, units, labels = f["spikes/times"][()], f["spikes/units"][()], np.asarray(f["labels"][()])
    if not (len(times) == len(units) == len(labels)):
        raise ValueError(f"{path}: spikes/times, spikes/units and labels differ in length "
                         f"({len(times)}, {len(units)}, {len(labels)})")
    idx_t = []
    for i, (t, u) in enumerate(zip(times, units)):
        t, u = np.asarray(t, np.float64), np.asarray(u, np.int64)
        if len(t) != len(u):
            raise ValueError(f"{path}: sample {i}: {len(t)} times but {len(u)} units")
        if len(u) and (u.min() < 0 or u.max() >= SHD_UNITS):
            raise ValueError(f"{path}: spikes/units of sample {i} outside 0..{SHD_UNITS - 1}")
        idx_t.append((u, t))
    return _pack("shd", (SHD_UNITS,), idx_t, labels, 20, SHD_DURATION_S)


def load_shd(root: str | Path) -> tuple[EventDataset, EventDataset]:
    """SHD from shd_train.h5 and shd_test.h5 (or their .zip/.gz archives) in ``root``."""
    root = Path(root)
    out = []
    for split in ("train", "test"):
        h5 = root / f"shd_{split}.h5"
        if not h5.exists():
            if (root / f"shd_{split}.h5.zip").exists():
                with zipfile.ZipFile(root / f"shd_{split}.h5.zip") as z:
                    z.extractall(root)
            elif (root / f"shd_{split}.h5.gz").exists():
                with gzip.open(root / f"shd_{split}.h5.gz") as src, open(h5, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if not h5.exists():
            raise FileNotFoundError(f"{root}: no shd_{split}.h5 (nor .zip/.gz); --download fetches it")
        out.append(read_shd(h5))
    return out[0], out[1]
