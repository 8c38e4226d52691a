"""Exploration 5: a graded input code. Each pixel above 0 sends one graded
spike at step 0 whose payload is its value (digits' 17 grey levels, v/16),
as Loihi 2's graded spikes can carry. Is such a network (no cost term,
pipeline settings otherwise) more accurate than the rate-coded baseline, at
the latency code's input cost (one input event per non-zero pixel)?
SLAYER, test set (the code is deterministic: one draw)."""
import json, sys, time
from pathlib import Path
import numpy as np, torch
from lavasparse.pipeline import PipelineConfig
from lavasparse.train import trainer as T
from lavasparse.train.data import ImageDataset, load_dataset
from lavasparse.train.test_set import seed_for_test_set
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
root = Path("/work/scratch/variants5")
plain = T.encode_batch
at = {"graded0": 0, "graded1": 1}[variant]

def graded(data, index, in_shape, steps, seed, code):
    idx = np.arange(len(data)) if index is None else np.asarray(index)
    x = torch.as_tensor(data.images[idx], dtype=torch.float32).reshape(len(idx), *in_shape)
    out = torch.zeros(*x.shape, steps)
    out[..., at] = x
    return out

T.encode_batch = graded
for seed in seeds:
    cfg = PipelineConfig(seed=seed)
    tc = cfg.train_config(variant, "baseline", 0.0, None, "latency", "spikes", None)
    t0 = time.time()
    T.train(tc, root / f"{variant}-seed{seed}", progress=False)
    m, c = T.load_trained(root / f"{variant}-seed{seed}", "best")
    r = T.evaluate(m, test, c.steps, c.input_code, seed_for_test_set(seed), energy=c.energy, draws=1)
    rec = {"variant": variant, "seed": seed, "test": r["accuracy"], "energy_nj": 1e9 * r["energy_dynamic_j"] / len(test),
           "seconds": time.time() - t0}
    print(json.dumps(rec), flush=True)
    with open(root / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
