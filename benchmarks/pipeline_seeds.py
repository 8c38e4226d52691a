"""The README's main command on several seeds: does its conclusion hold on
any machine? Training diverges between CPUs (float summation order), so one
run's figures say little; the spread over seeds says how far to trust them.

For each seed it runs ``lavasparse pipeline`` (digits by default, the README's
settings; resumable: a finished seed is read back, not rerun) into
OUT/seed-N, then prints per seed the test accuracy on the target and the
energy per inference of the baseline and of each family's network, their
reductions, and the mean and spread (standard deviation, min, max) over
seeds, and says whether the digits target holds on every seed: the chosen
network costs at least 50% less energy than the baseline and loses under 1
point of test accuracy. Writes OUT/seeds.md and OUT/seeds.json.

Each seed also gets the paired 95% interval of the chosen network's accuracy
lost against the baseline on the same test images (normal approximation of
McNemar's: b images only the baseline gets right, c only the chosen one,
lost = (b - c) / n, standard error sqrt(b + c - (b - c)^2 / n) / n), from
the target's output spikes that the pipeline keeps: on digits' 360 test
images it is about +-2 points, so "under 1 point lost" on one seed is below
what that test set can resolve.

  .venv/bin/python benchmarks/pipeline_seeds.py --out runs/seeds [--seeds 0 1 2] [-- pipeline options]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from lavasparse.cli import main as lavasparse_main
from lavasparse.deploy.lava_runner import READOUT_POTENTIAL_KEY, predict
from lavasparse.fileio import write_json, write_text
from lavasparse.pipeline import eval_dir
from lavasparse.provenance import dirty_note, provenance

ENERGY_TARGET = 0.50      # at least this share of the baseline's energy saved
ACCURACY_LOSS_LIMIT = 0.01  # under this much test accuracy lost


def run_seed(seed: int, out: Path, extra: list[str]) -> dict:
    report = out / "report.json"
    if not report.exists():
        if lavasparse_main(["pipeline", "--out", str(out), "--seed", str(seed), *extra]) != 0:
            raise RuntimeError(f"the pipeline failed for seed {seed}")
    return json.loads(report.read_text())


def target_predictions(out: Path, run: dict) -> np.ndarray | None:
    """The class the target chose for each test image (the output layer's most
    spiking neuron, or with a potential readout the highest final potential;
    lowest index on ties), from the target_spikes.npz the pipeline wrote for
    the report's ``run`` (``pipeline.eval_dir``); None where that file is not
    there."""
    where = eval_dir(out, run["run"], run["checkpoint"]) / "target_spikes.npz"
    if not where.exists():
        return None
    with np.load(where) as saved:
        potential = saved[READOUT_POTENTIAL_KEY] if READOUT_POTENTIAL_KEY in saved.files else None
        layers = [name for name in saved.files if name != READOUT_POTENTIAL_KEY]
        return predict(saved[layers[-1]], potential)


def paired_loss(baseline: np.ndarray, chosen: np.ndarray, labels: np.ndarray, draws: int = 1) -> dict:
    """Accuracy lost (fraction) by ``chosen`` against ``baseline`` on the same
    images, with its paired 95% interval (normal approximation). With
    ``draws`` > 1 the samples are draw-major encodings of the same images
    (sample d*N + i is image i), so the interval is taken over images, each
    with its fraction of draws right, not over samples, which are not
    independent. With one draw this is McNemar's: b images only the
    baseline gets right, c only the chosen network."""
    if not (len(baseline) == len(chosen) == len(labels)) or len(labels) % draws:
        raise ValueError(f"predictions of {len(baseline)}, {len(chosen)} and {len(labels)} samples "
                         f"({draws} draws of each image)")
    n = len(labels) // draws
    right_b = (baseline == labels).reshape(draws, n).mean(axis=0)
    right_c = (chosen == labels).reshape(draws, n).mean(axis=0)
    d = right_b - right_c
    lost = float(d.mean())
    half = 1.96 * math.sqrt(float(((d - lost) ** 2).sum())) / n
    return {"lost": lost, "low": lost - half, "high": lost + half, "only_baseline_right": int((d > 0).sum()),
            "only_chosen_right": int((d < 0).sum()), "images": n, "draws": draws}


def summarize(seed: int, report: dict, out: Path | None = None) -> dict:
    runs = {r["name"]: r for r in report["runs"]}
    base = runs["baseline"]
    chosen = report["selection"]["chosen"]
    origin = report.get("provenance") or {}   # None: a report written before the pipeline kept it
    row = {"seed": seed, "chosen": chosen, "seconds": report.get("seconds"), "commit": origin.get("commit"),
           "dirty": origin.get("dirty"), "machine": origin.get("machine"),
           "baseline_accuracy": base["accuracy_target"], "baseline_energy_j": base["energy_per_sample_j"]}
    for name, r in runs.items():
        if name == "baseline":
            continue
        row[name] = {"accuracy": r["accuracy_target"], "energy_j": r["energy_per_sample_j"],
                     "energy_reduction": 1 - r["energy_per_sample_j"] / base["energy_per_sample_j"],
                     "synops_reduction": 1 - r["synops_per_sample"] / base["synops_per_sample"],
                     "accuracy_lost": base["accuracy_target"] - r["accuracy_target"],
                     "passes_validation": report["selection"]["families"][name]["chosen"]["passes"]}
    pick = row.get(chosen) if chosen else None
    labels = out / "test_labels.npy" if out is not None else None
    if pick is not None and labels is not None and labels.exists():
        preds = [target_predictions(out, runs[n]) for n in ("baseline", chosen)]
        if all(p is not None for p in preds):
            draws = report.get("pipeline", {}).get("test_draws") or 1
            row["chosen_accuracy_lost_paired"] = paired_loss(*preds, np.load(labels), draws)
    row["target_met"] = bool(pick and pick["energy_reduction"] >= ENERGY_TARGET
                             and pick["accuracy_lost"] < ACCURACY_LOSS_LIMIT)
    return row


def _spread(values: list[float], scale: float = 100.0, unit: str = "%") -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"{scale * statistics.mean(values):.1f}{unit} ± {scale * sd:.1f} "
            f"(min {scale * min(values):.1f}, max {scale * max(values):.1f})")


def _origins(rows: list[dict]) -> str:
    """Each distinct commit and machine the seeds were trained on, with their seeds."""
    def seeds_by(key):
        by = {}
        for r in rows:
            value = r.get(key) or "not recorded"
            if key == "commit" and r.get(key):
                value = value[:12] + dirty_note(r.get("dirty"))
            by.setdefault(value, []).append(str(r["seed"]))
        return "; ".join(f"{v} (seeds {', '.join(s)})" if len(by) > 1 else v for v, s in by.items())
    return f"commit {seeds_by('commit')}, on {seeds_by('machine')}"


def markdown(rows: list[dict], command: str) -> str:
    families = sorted({k for r in rows for k, v in r.items() if isinstance(v, dict) and "energy_reduction" in v})
    lines = ["# The pipeline on several seeds", "", f"Command: `{command}`  ", f"Trained at: {_origins(rows)}", "",
             "| seed | baseline acc. | baseline energy (nJ) | " +
             " | ".join(f"{f}: acc. / energy (nJ) / energy saved" for f in families) + " | chosen | chosen: points lost (paired 95% interval) | target met |",
             "|---:|---:|---:|" + "---|" * len(families) + "---|---|---|"]
    for r in rows:
        cells = []
        for f in families:
            v = r.get(f)
            cells.append("-" if v is None else f"{100 * v['accuracy']:.2f}% / {1e9 * v['energy_j']:.0f} / "
                                               f"{100 * v['energy_reduction']:.1f}%"
                                               + ("" if v["passes_validation"] else " (failed validation)"))
        pl = r.get("chosen_accuracy_lost_paired")
        interval = "-" if pl is None else (f"{100 * pl['lost']:.2f} ({100 * pl['low']:.2f} to {100 * pl['high']:.2f}; "
                                           f"{pl['only_baseline_right']} vs {pl['only_chosen_right']} images)")
        lines.append(f"| {r['seed']} | {100 * r['baseline_accuracy']:.2f}% | {1e9 * r['baseline_energy_j']:.0f} | "
                     + " | ".join(cells) + f" | {r['chosen'] or 'none'} | {interval} "
                     f"| {'yes' if r['target_met'] else 'NO'} |")
    lines += ["", "Mean ± standard deviation over seeds:", ""]
    lines.append(f"- baseline test accuracy: {_spread([r['baseline_accuracy'] for r in rows])}")
    for f in families:
        have = [r[f] for r in rows if f in r]
        lines.append(f"- {f}: energy saved {_spread([v['energy_reduction'] for v in have])}; synaptic ops saved "
                     f"{_spread([v['synops_reduction'] for v in have])}; test accuracy lost "
                     f"{_spread([v['accuracy_lost'] for v in have], unit=' points')}")
    met = sum(r["target_met"] for r in rows)
    lines += ["", f"Target (the chosen network saves >= {100 * ENERGY_TARGET:.0f}% energy and loses < "
              f"{100 * ACCURACY_LOSS_LIMIT:.0f} point of test accuracy): met on {met} of {len(rows)} seeds.",
              "", "Points lost: baseline minus chosen on the same test images (over every encoding of each); "
              "the interval is paired over images (x vs y: images the baseline gets right more often than the "
              "chosen network, and the reverse), 95%, normal approximation."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("pipeline_args", nargs=argparse.REMAINDER, help="after --: options for lavasparse pipeline")
    a = p.parse_args()
    extra = [x for x in a.pipeline_args if x != "--"]
    out = Path(a.out)
    t0 = time.time()
    rows = [summarize(s, run_seed(s, out / f"seed-{s}", extra), out / f"seed-{s}") for s in a.seeds]
    command = "benchmarks/pipeline_seeds.py " + " ".join(sys.argv[1:])
    md = markdown(rows, command)
    write_text(out / "seeds.md", md)
    write_json(out / "seeds.json", {"command": command, "read_back_at": provenance(), "rows": rows,
                                    "seconds": time.time() - t0})
    print(md)
    return 0 if all(r["target_met"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
