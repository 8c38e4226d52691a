"""Exploration 3: latency-coded digits networks distilled from the seed's
rate-coded pipeline baseline (its best checkpoint as the teacher). Test set,
8 draws, SLAYER (identical to the target)."""
import json, sys, time
from pathlib import Path
from lavasparse.pipeline import PipelineConfig
from lavasparse.train.test_set import seed_for_test_set
from lavasparse.train.trainer import train, load_trained, evaluate
from lavasparse.train.data import load_dataset
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
V = {"lat-d5": ("latency", {}, 0.5, "spikes", 0.0), "lat-d8": ("latency", {}, 0.8, "spikes", 0.0),
     "energy-d5": ("latency", {}, 0.5, "energy", 3e-7),
     "lat-tr6-d5": ("latency", dict(true_rate=0.6, false_rate=0.04), 0.5, "spikes", 0.0),
     "lat-tr6-d10": ("latency", dict(true_rate=0.6, false_rate=0.04), 1.0, "spikes", 0.0),
     "rate25-tr6-d5": ("rate", dict(true_rate=0.6, false_rate=0.04, max_rate=0.25), 0.5, "spikes", 0.0)}[variant]
enc, over, distill, cost, sigma0 = V
root = Path("/work/scratch/variants3")
def teacher_dir(seed):
    if "tr6" in variant:
        return Path(f"/work/scratch/variants2/rate-tr6-seed{seed}")
    for base in ("/work/study/runs/seeds-draws", "/work/study/runs/seeds-new"):
        d = Path(base) / f"seed-{seed}" / "baseline"
        if (d / "report.json").exists() or (d.parent / "report.json").exists():
            return d
    raise SystemExit(f"no baseline for seed {seed}")
for seed in seeds:
    cfg = PipelineConfig(seed=seed, **over)
    tc = cfg.train_config(variant, "linear" if sigma0 else "baseline", sigma0, None, enc, cost, None)
    tc.teacher, tc.distill = str(teacher_dir(seed)), distill
    t0 = time.time()
    train(tc, root / f"{variant}-seed{seed}", progress=False)
    m, c = load_trained(root / f"{variant}-seed{seed}", "best")
    r = evaluate(m, test, c.steps, c.input_code, seed_for_test_set(seed), energy=c.energy, draws=8)
    rec = {"variant": variant, "seed": seed, "test": r["accuracy"], "energy_nj": 1e9 * r["energy_dynamic_j"] / len(test),
           "seconds": time.time() - t0}
    print(json.dumps(rec), flush=True)
    with open(root / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
