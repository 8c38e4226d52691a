"""Exploration 10: does the latency code's dither cost the test accuracy?
The pipeline's latency-coded networks of exploration 6 (lat-do0, seeds 0 to
7, trained with the dithered code) tested with 8 dithered draws and with one
deterministic draw (u = 0.5, round to nearest); SLAYER."""
import json, torch, torch.nn.functional as F
from lavasparse.train import encode as E, trainer as T
from lavasparse.train.data import load_dataset
from lavasparse.train.test_set import seed_for_test_set
_, test = load_dataset("digits", None)
orig = E.latency_encode
def det(images, steps, seed, threshold=E.LATENCY_THRESHOLD, window=E.LATENCY_WINDOW, u=0.5):
    x = torch.as_tensor(images, dtype=torch.float32).cpu()
    w = min(window, steps)
    t = torch.floor((1 - x) / (1 - threshold) * w + u).clamp(0, w - 1).long()
    return F.one_hot(t, steps).to(torch.float32) * (x > threshold).to(torch.float32)[..., None]
for seed in range(8):
    d = f"/work/scratch/variants6/lat-do0-seed{seed}"
    m, c = T.load_trained(d, "best")
    E.latency_encode = orig
    a = T.evaluate(m, test, c.steps, c.input_code, seed_for_test_set(seed), energy=c.energy, draws=8)["accuracy"]
    E.latency_encode = det
    b = T.evaluate(m, test, c.steps, c.input_code, seed_for_test_set(seed), energy=c.energy, draws=1)["accuracy"]
    print(json.dumps({"seed": seed, "dither8": a, "det": b}), flush=True)
