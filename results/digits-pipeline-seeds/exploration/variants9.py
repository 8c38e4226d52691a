"""Exploration 9: can the latency-coded family spend its energy headroom
(about 430 nJ against the baseline's 1,400; the target allows 700) on
accuracy? Wider hidden layers, and the learning rate of both families.
Each variant: pipeline settings but for what it names, no cost term, from
scratch; test set, 8 draws, SLAYER (identical to the target). Compare with
exploration 6's rate-do0 and lat-do0 (today's defaults, the same seeds)."""
import json
import sys
import time
from pathlib import Path

import torch

from lavasparse.pipeline import PipelineConfig
from lavasparse.train import trainer as T
from lavasparse.train.data import load_dataset
from lavasparse.train.test_set import seed_for_test_set

VARIANTS = {
    "rate-lr3": ("rate", {"lr": 3e-3}),
    "rate-lr05": ("rate", {"lr": 5e-4}),
    "rate-lr1": ("rate", {"lr": 1e-3}),
    "rate-lr5": ("rate", {"lr": 5e-3}),
    "lat-lr3": ("latency", {"lr": 3e-3}),
    "lat-lr20": ("latency", {"lr": 2e-2}),
    "lat-h160": ("latency", {"arch": "64-160-160-10"}),
    "lat-h192": ("latency", {"arch": "64-192-192-10"}),
    "lat-h256-128": ("latency", {"arch": "64-256-128-10"}),
    "lat-h192-e100": ("latency", {"arch": "64-192-192-10", "epochs": 100}),
}
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
encoding, settings = VARIANTS[variant]
root = Path("/work/scratch/variants9")
root.mkdir(parents=True, exist_ok=True)
for seed in seeds:
    torch.manual_seed(1000 + seed)
    cfg = PipelineConfig(seed=seed, **settings)
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
