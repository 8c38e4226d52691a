"""What every exploration script does per seed: train the variant with the
pipeline's settings (no cost term), test it on the digits test set in
SLAYER (identical to the target) and append its line to results.jsonl."""
import json
import time
from pathlib import Path

from lavasparse.pipeline import PipelineConfig
from lavasparse.train import trainer as T
from lavasparse.train.test_set import seed_for_test_set


def train_and_test(variant: str, seed: int, encoding: str, root: Path, test, draws: int) -> dict:
    cfg = PipelineConfig(seed=seed)
    tc = cfg.train_config(variant, "baseline", 0.0, None, encoding, "spikes", None)
    t0 = time.time()
    T.train(tc, root / f"{variant}-seed{seed}", progress=False)
    m, c = T.load_trained(root / f"{variant}-seed{seed}", "best")
    r = T.evaluate(m, test, c.steps, c.input_code, seed_for_test_set(seed), energy=c.energy, draws=draws)
    rec = {"variant": variant, "seed": seed, "test": r["accuracy"], "energy_nj": 1e9 * r["energy_dynamic_j"] / len(test),
           "seconds": time.time() - t0}
    print(json.dumps(rec), flush=True)
    with open(root / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec
