"""Exploration: are latency-coded digits networks more accurate with a longer
latency window or wider hidden layers? Trains the no-cost latency-coded net
per seed and variant, evaluates on the test set (8 draws) with SLAYER."""
import json, sys, time
from pathlib import Path
from lavasparse.pipeline import PipelineConfig, test_seed
from lavasparse.train.trainer import train, load_trained, evaluate
from lavasparse.train.data import load_dataset
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
V = {"w8": dict(), "w12": dict(latency_window=12), "h256": dict(arch="64-256-256-10"), "w12h256": dict(latency_window=12, arch="64-256-256-10"), "w16": dict(latency_window=16), "w8e120": dict(epochs=120)}[variant]
root = Path("/work/scratch/variants")
for seed in seeds:
    cfg = PipelineConfig(seed=seed, **V)
    tc = cfg.train_config(f"latency-{variant}", "baseline", 0.0, None, "latency", "spikes", None)
    t0 = time.time()
    train(tc, root / f"{variant}-seed{seed}", progress=False)
    m, c = load_trained(root / f"{variant}-seed{seed}", "best")
    r = evaluate(m, test, c.steps, c.input_code, test_seed(seed), energy=c.energy, draws=8)
    rec = {"variant": variant, "seed": seed, "test": r["accuracy"], "energy_nj": 1e9 * r["energy_dynamic_j"] / len(test), "seconds": time.time() - t0}
    print(json.dumps(rec), flush=True)
    with open(root / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
