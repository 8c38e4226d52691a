"""benchmarks/pipeline_seeds.py's arithmetic: the target check per seed and
the paired interval of the accuracy lost, on a report written here."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "pipeline_seeds", Path(__file__).resolve().parents[1] / "benchmarks" / "pipeline_seeds.py")
seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeds)


def test_paired_loss():
    labels = np.zeros(100, dtype=int)
    base = np.zeros(100, dtype=int)
    chosen = base.copy()
    chosen[:5] = 1                       # 5 images only the baseline gets right
    base[95:] = 1                        # 5 others only the chosen one gets right, 10 discordant in all
    chosen[90:95] = 1
    base[90:95] = 1                      # 5 both get wrong: not counted
    pl = seeds.paired_loss(base, chosen, labels)
    assert (pl["only_baseline_right"], pl["only_chosen_right"], pl["lost"]) == (5, 5, 0.0)
    assert pl["high"] == pytest.approx(1.96 * np.sqrt(10) / 100)
    with pytest.raises(ValueError, match="predictions of 100, 99"):
        seeds.paired_loss(base, chosen[:99], labels)


def test_paired_loss_over_draws_is_taken_over_images():
    """Two draws of 4 images (draw-major): per image, the baseline is right
    2/2, 2/2, 1/2, 0/2 and the chosen network 1/2, 2/2, 1/2, 1/2: differences
    0.5, 0, 0, -0.5; lost 0; the interval from those 4 differences, not from
    8 samples."""
    labels = np.zeros(8, dtype=int)
    base = np.array([0, 0, 0, 1,   0, 0, 1, 1])
    chosen = np.array([0, 0, 0, 0,   1, 0, 1, 1])
    pl = seeds.paired_loss(base, chosen, labels, draws=2)
    assert (pl["images"], pl["draws"], pl["lost"]) == (4, 2, 0.0)
    assert (pl["only_baseline_right"], pl["only_chosen_right"]) == (1, 1)
    assert pl["high"] == pytest.approx(1.96 * np.sqrt(0.5 ** 2 + 0.5 ** 2) / 4)
    with pytest.raises(ValueError, match="3 draws"):
        seeds.paired_loss(base, chosen, labels, draws=3)


def _run(name, run, checkpoint, acc, energy):
    return {"name": name, "run": run, "checkpoint": checkpoint, "accuracy_target": acc,
            "energy_per_sample_j": energy, "synops_per_sample": energy * 1e12}


def test_summarize_reads_the_targets_spikes(tmp_path):
    out = tmp_path / "seed-7"
    labels = np.arange(20) % 10
    out.mkdir()
    np.save(out / "test_labels.npy", labels)
    for where, wrong in (("baseline", 1), ("energy-run/eval-epochs004", 3)):
        (out / where).mkdir(parents=True)
        spikes = np.zeros((20, 10, 4))
        spikes[np.arange(20), (labels + (np.arange(20) < wrong)) % 10, :2] = 1   # `wrong` images misclassified
        np.savez(out / where / "target_spikes.npz", dense1=np.zeros((20, 5, 4)), dense2=spikes)
    report = {"runs": [_run("baseline", "baseline", "best", 0.95, 1e-6),
                       _run("energy-trained", "energy-run", "epochs/004", 0.85, 4e-7)],
              "selection": {"chosen": "energy-trained", "families": {"energy-trained": {"chosen": {"passes": True}}}}}
    row = seeds.summarize(7, json.loads(json.dumps(report)), out)
    pl = row["chosen_accuracy_lost_paired"]
    assert (pl["only_baseline_right"], pl["only_chosen_right"], pl["images"]) == (2, 0, 20)
    assert pl["lost"] == pytest.approx(0.10)
    assert row["energy-trained"]["energy_reduction"] == pytest.approx(0.6)
    assert not row["target_met"]                      # 10 points lost
    md = seeds.markdown([row], "test")
    assert "| 7 |" in md and "2 vs 0 images" in md and "met on 0 of 1 seeds" in md


def test_the_table_names_each_seeds_commit_and_machine():
    """Training diverges between CPUs: the table says where each seed was
    trained, from its report's provenance, and says so where a report
    predates it."""
    from lavasparse.provenance import provenance

    origin = provenance()
    assert origin["machine"] and origin["torch"]
    report = {"runs": [_run("baseline", "baseline", "best", 0.95, 1e-6),
                       _run("energy-trained", "energy-run", "epochs/004", 0.95, 4e-7)],
              "selection": {"chosen": "energy-trained", "families": {"energy-trained": {"chosen": {"passes": True}}}}}
    old = seeds.summarize(1, report)
    new = seeds.summarize(2, {**report, "provenance": {"commit": "a" * 40, "dirty": True, "machine": "m1"}})
    assert (old["commit"], new["commit"], new["machine"]) == (None, "a" * 40, "m1")
    line = next(x for x in seeds.markdown([old, new], "test").splitlines() if x.startswith("Trained at"))
    assert "aaaaaaaaaaaa (uncommitted changes) (seeds 2)" in line and "not recorded (seeds 1)" in line
    assert "m1 (seeds 2)" in line
    same = seeds.markdown([new, {**new, "seed": 3}], "test")
    assert "commit aaaaaaaaaaaa (uncommitted changes), on m1" in same
