"""Exploration 8: the potential readout (Adams et al.'s non-spiking output
layer, softmax over its final potential; --readout potential) on digits.
On seeds 8 to 15 the pipeline with it (runs/seeds-pot) made the rate-coded
baseline less accurate (96.35% against 96.85% with output spike counts):
is that the learning rate? Each variant: pipeline settings, no cost term,
trained from scratch; test set, 8 draws, SLAYER (identical to the target).
Compare with exploration 6's rate-do0 and lat-do0 (output spike counts,
the same seeds)."""
import json
import sys
import time
from pathlib import Path

import torch

from lavasparse.pipeline import PipelineConfig
from lavasparse.train import trainer as T
from lavasparse.train.data import load_dataset
from lavasparse.train.test_set import seed_for_test_set

_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
encoding, lr = {"rate-pot": ("rate", None), "rate-pot-lr3": ("rate", 3e-3), "rate-pot-lr1": ("rate", 1e-3),
                "lat-pot": ("latency", None), "lat-pot-lr3": ("latency", 3e-3)}[variant]
root = Path("/work/scratch/variants8")
root.mkdir(parents=True, exist_ok=True)
for seed in seeds:
    torch.manual_seed(1000 + seed)
    cfg = PipelineConfig(seed=seed, readout="potential", lr=lr)
    tc = cfg.train_config(variant, "baseline", 0.0, None, encoding, "spikes", None)
    t0 = time.time()
    T.train(tc, root / f"{variant}-seed{seed}", progress=False)
    m, c = T.load_trained(root / f"{variant}-seed{seed}", "best")
    r = T.evaluate(m, test, c.steps, c.input_code, seed_for_test_set(seed), energy=c.energy, draws=8)
    rec = {"variant": variant, "seed": seed, "test": r["accuracy"],
           "energy_nj": 1e9 * r["energy_dynamic_j"] / len(test), "seconds": time.time() - t0}
    print(json.dumps(rec), flush=True)
    with open(root / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
