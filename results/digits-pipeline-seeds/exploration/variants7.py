"""Exploration 7: noise on the latency code while training (the rate code's
Bernoulli draws are noise the latency code lacks; the latency-coded network
learns its training set by heart). Training batches only (validation and
test pass index None and get the plain code). Pipeline settings (0.6/0.04),
no cost term; test set, 8 draws, SLAYER (identical to the target).
- lat-jit: each spike's dither widened from [0, 1) to [-1, 2) steps (a
  spike moves up to one step either way), clamped to the window;
- lat-del10: each input spike deleted with probability 0.1."""
import sys
from pathlib import Path
import numpy as np, torch
from lavasparse.train import trainer as T
from lavasparse.train.data import ImageDataset, load_dataset
from _trial import train_and_test
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
root = Path("/work/scratch/variants7")
root.mkdir(parents=True, exist_ok=True)
plain = T.encode_batch


def jittered(images, steps, seed, window, threshold=0.1):
    x = torch.as_tensor(images, dtype=torch.float32)
    w = min(window, steps)
    u = 3 * torch.rand(x.shape, generator=torch.Generator().manual_seed(int(seed))) - 1
    t = torch.floor((1 - x) / (1 - threshold) * w + u).clamp(0, w - 1).long()
    return torch.nn.functional.one_hot(t, steps).float() * (x > threshold).float()[..., None]


def noisy(data, index, in_shape, steps, seed, code):
    if index is None or not isinstance(data, ImageDataset):
        return plain(data, index, in_shape, steps, seed, code)
    images = data.images[np.asarray(index)]
    if variant == "lat-jit":
        s = jittered(images, steps, seed, code.window)
        return s.reshape(s.shape[0], *in_shape, steps)
    s = plain(data, index, in_shape, steps, seed, code)
    keep = torch.rand(s.shape, generator=torch.Generator().manual_seed(int(seed) + 1)) >= 0.1
    return s * keep


T.encode_batch = noisy
for seed in seeds:
    train_and_test(variant, seed, "latency", root, test, draws=8)
