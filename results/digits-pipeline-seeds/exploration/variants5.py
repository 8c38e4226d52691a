"""Exploration 5: a graded input code. Each pixel above 0 sends one graded
spike at step 0 whose payload is its value (digits' 17 grey levels, v/16),
as Loihi 2's graded spikes can carry. Is such a network (no cost term,
pipeline settings otherwise) more accurate than the rate-coded baseline, at
the latency code's input cost (one input event per non-zero pixel)?
SLAYER, test set (the code is deterministic: one draw)."""
import sys
from pathlib import Path
import numpy as np, torch
from lavasparse.train import trainer as T
from lavasparse.train.data import load_dataset
from _trial import train_and_test
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
root = Path("/work/scratch/variants5")
at = {"graded0": 0, "graded1": 1}[variant]

def graded(data, index, in_shape, steps, seed, code):
    idx = np.arange(len(data)) if index is None else np.asarray(index)
    x = torch.as_tensor(data.images[idx], dtype=torch.float32).reshape(len(idx), *in_shape)
    out = torch.zeros(*x.shape, steps)
    out[..., at] = x
    return out

T.encode_batch = graded
for seed in seeds:
    train_and_test(variant, seed, "latency", root, test, draws=1)
