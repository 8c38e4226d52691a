"""Exploration 2: does asking more output spikes (fewer ties at the argmax)
make latency-coded digits networks as accurate as the rate-coded baseline?
Trains one network per seed and variant (the pipeline's settings plus the
variant's), evaluates on the test set (8 draws) with SLAYER, records ties."""
import json, sys, time
from pathlib import Path
import numpy as np, torch
from lavasparse.pipeline import PipelineConfig, test_seed
from lavasparse.train.trainer import train, load_trained, evaluate
from lavasparse.train.data import load_dataset
from lavasparse.train.encode import encode_batch
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
V = {"lat": ("latency", {}), "rate": ("rate", {}),
     "lat-tr6": ("latency", dict(true_rate=0.6, false_rate=0.04)),
     "rate-tr6": ("rate", dict(true_rate=0.6, false_rate=0.04)),
     "lat-tr45": ("latency", dict(true_rate=0.45, false_rate=0.03)),
     }[variant]
enc, over = V
root = Path("/work/scratch/variants2")
for seed in seeds:
    cfg = PipelineConfig(seed=seed, **over)
    tc = cfg.train_config(f"{variant}", "baseline", 0.0, None, enc, "spikes", None)
    t0 = time.time()
    train(tc, root / f"{variant}-seed{seed}", progress=False)
    m, c = load_trained(root / f"{variant}-seed{seed}", "best")
    r = evaluate(m, test, c.steps, c.input_code, test_seed(seed), energy=c.energy, draws=8)
    ties = lost = 0.0
    with torch.no_grad():
        for d in range(8):
            x = encode_batch(test, None, m.specs[0].in_shape, c.steps, test_seed(seed) + d, c.input_code)
            out = m.windowed(m(x), c.steps)[-1].sum(-1).numpy()
            mx = out.max(1); t = (out == mx[:, None]).sum(1) > 1
            ties += t.mean() / 8
            lost += (t & (out[np.arange(len(test)), test.labels] == mx) & (out.argmax(1) != test.labels)).mean() / 8
    rec = {"variant": variant, "seed": seed, "test": r["accuracy"], "energy_nj": 1e9 * r["energy_dynamic_j"] / len(test),
           "ties": ties, "lost_to_ties": lost, "seconds": time.time() - t0}
    print(json.dumps(rec), flush=True)
    with open(root / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
