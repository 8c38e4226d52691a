"""Exploration 4: does training-time data augmentation (each training image
shifted by a random -1, 0 or +1 pixel in each direction, zero fill, a fresh
shift in every epoch) make the latency-coded digits network as accurate as
the rate-coded baseline trained the same way? Pipeline settings (0.6/0.04),
no cost term; test set, 8 draws, SLAYER (identical to the target).
The augmentation is patched into the trainer's batch encoder here (training
batches only: validation and test pass index None)."""
import sys
from pathlib import Path
import numpy as np, torch
import torch.nn.functional as F
from lavasparse.train import trainer as T
from lavasparse.train.data import ImageDataset, load_dataset
from _trial import train_and_test
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
enc = {"rate-aug": "rate", "lat-aug": "latency"}[variant]
root = Path("/work/scratch/variants4")
plain = T.encode_batch

def shifted(images: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(images)
    p = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(rng.integers(0, 3, size=(len(x), 2))):
        out[i] = p[i, ..., dy:dy + h, dx:dx + w]
    return out.numpy()

def augmented(data, index, in_shape, steps, seed, code):
    if index is None or not isinstance(data, ImageDataset):
        return plain(data, index, in_shape, steps, seed, code)
    idx = np.asarray(index)
    sub = ImageDataset(data.name, shifted(data.images[idx], seed + 1), data.labels[idx], data.num_classes)
    return plain(sub, None, in_shape, steps, seed, code)

T.encode_batch = augmented
for seed in seeds:
    train_and_test(variant, seed, enc, root, test, draws=8)
