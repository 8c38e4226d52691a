"""The sigma_0 search (pure), and a small sweep through Ray Tune on digits:
both tables on the target, resume without retraining, failures reported."""
import dataclasses
import json
import math
import subprocess
import sys

import pytest

from lavasparse.train.selection import SearchPlan, eligible_epochs, keeps_accuracy, largest_passing, pick_epoch


def _run_search(threshold: float, plan: SearchPlan) -> tuple[float | None, list[float]]:
    """Drive the search against a monotone oracle: sigma_0 passes iff <= threshold."""
    asked, known = [], {}
    while True:
        state, s0 = largest_passing(known, plan)
        if state == "done":
            return s0, asked
        assert s0 not in known, "the search must not ask twice"
        asked.append(s0)
        known[s0] = s0 <= threshold


@pytest.mark.parametrize("threshold", [3.7e-7, 2e-5, 1e-5, 4.4e-3, 0.5, 5.0, 1e-12])
def test_search_brackets_then_bisects(threshold):
    plan = SearchPlan(start=1e-5, factor=10, bisect_steps=3, low=1e-9, high=1.0)
    best, asked = _run_search(threshold, plan)
    if threshold < 1e-9:
        assert best is None
        return
    assert best <= threshold * 1.0000001
    if threshold >= 1.0:
        assert best == 1.0
    else:
        # 3 bisections of a factor-10 bracket in log space leave a factor 10**(1/8) at most
        assert best > threshold / 10 ** (1 / 8) / 1.01
    # start, then at most 5 steps up (to 1.0) or 4 down (to 1e-9), then 3 bisections
    assert len(asked) <= 1 + max(math.ceil(math.log10(1.0 / 1e-5)), math.ceil(math.log10(1e-5 / 1e-9))) + 3


def test_search_resumes_from_known_outcomes():
    plan = SearchPlan(start=1e-4, factor=10, bisect_steps=2)
    full, asked = _run_search(3e-3, plan)
    # Any prefix of the outcomes resumes to the same next question and answer.
    known = {s: s <= 3e-3 for s in asked[:3]}
    assert largest_passing(known, plan) == ("need", asked[3])


def test_keeps_accuracy_rules():
    assert keeps_accuracy(0.95, 0.95, 0.0) and not keeps_accuracy(0.949, 0.95, 0.0)
    assert keeps_accuracy(0.941, 0.95, 0.01) and not keeps_accuracy(0.94, 0.95, 0.01)


def test_pick_epoch_fewest_spikes_among_passing():
    log = [{"epoch": 1, "val_accuracy": 0.96, "val_hidden_spikes": 90.0},   # passes, but many spikes
           {"epoch": 2, "val_accuracy": 0.93, "val_hidden_spikes": 40.0},   # fewest spikes, fails
           {"epoch": 3, "val_accuracy": 0.951, "val_hidden_spikes": 60.0},
           {"epoch": 4, "val_accuracy": 0.95, "val_hidden_spikes": 60.0}]
    assert pick_epoch(log, 0.95, 0.0)["epoch"] == 3            # tie on spikes: higher accuracy
    assert pick_epoch(log, 0.94, 0.01)["epoch"] == 3
    assert pick_epoch(log, 0.97, 0.0) is None
    # Epochs before the spike term first came on are the baseline's, not the schedule's.
    off_first = [dict(e, sigma=0.0 if e["epoch"] < 4 else 1e-5) for e in log]
    assert pick_epoch(off_first, 0.95, 0.0)["epoch"] == 4


@pytest.mark.slow
def test_small_sweep_on_digits(tmp_path, capsys):
    from lavasparse.sweep import SweepConfig, run_sweep

    cfg = SweepConfig(arch="64-16-10", weight_scale=2.0, epochs=3, sparse_epochs=2, train_limit=300,
                      test_limit=40, cross_check=2, device="cpu", schedules=("linear", "constant"),
                      plan=SearchPlan(start=1e-4, factor=10, bisect_steps=1))
    doc = run_sweep(cfg, tmp_path, command="test")
    trials = {(t["schedule"], t["sigma0"]): t for t in doc["trials"]}
    base = trials[("baseline", 0.0)]
    for table, tol in (("table1", 0.0), ("table2", 0.01)):
        rows = doc[table]
        assert [r["schedule"] for r in rows] == ["baseline", "linear", "constant"]
        for r in rows[1:]:
            if r["sigma0"] is None:
                continue
            t = trials[(r["schedule"], r["sigma0"])]
            pick = pick_epoch(t["epochs"], base["val_accuracy"], tol)
            assert pick is not None and pick["epoch"] == r["epochs"] and pick["val_accuracy"] == r["val_accuracy"]
            # every larger sigma_0 tried for this schedule failed the table's rule
            larger = [u for (s, v), u in trials.items() if s == r["schedule"] and v > r["sigma0"]]
            assert all(pick_epoch(u["epochs"], base["val_accuracy"], tol) is None for u in larger)
            assert r["engine"] == "emulator" and r["cross_checked_on_lava"] == 2 and r["identical_to_slayer"]
            assert 0 <= r["test_accuracy_target"] <= 1 and r["hidden_spikes_per_sample"] >= 0
        # Beside the paper's rule, the cheapest epoch of any trial that keeps the table's accuracy.
        cheap = doc[f"{table}_cheapest"]
        passing = [e for t in doc["trials"] if t["schedule"] != "baseline" for e in eligible_epochs(t["epochs"])
                   if keeps_accuracy(e["val_accuracy"], base["val_accuracy"], tol)]
        if passing:
            assert cheap["val_energy_dynamic_j"] == min(e["val_energy_dynamic_j"] for e in passing)
            assert cheap["rule"] == "cheapest" and cheap["identical_to_slayer"]
            assert all(cheap["val_energy_dynamic_j"] <= e["val_energy_dynamic_j"]
                       for r in rows[1:] if r["sigma0"] is not None
                       for t in [trials[(r["schedule"], r["sigma0"])]] for e in t["epochs"] if e["epoch"] == r["epochs"])
        else:
            assert cheap is None
    for f in ("tables.md", "tables.json", "front.png", "sweep.json"):
        assert (tmp_path / f).exists()
    assert "## Table 1" in (tmp_path / "tables.md").read_text()

    # Stopped and started again: nothing is retrained.
    stamps = {p: p.stat().st_mtime_ns for name in ("result.json", "evaluation.json") for p in tmp_path.rglob(name)}
    assert any(p.name == "evaluation.json" for p in stamps)
    again = run_sweep(cfg, tmp_path, command="test")
    assert {p: p.stat().st_mtime_ns for name in ("result.json", "evaluation.json")
            for p in tmp_path.rglob(name)} == stamps, "a resumed sweep retrained or re-evaluated something"
    assert again["table1"] == doc["table1"]
    # Other settings in the same folder are refused.
    with pytest.raises(ValueError, match="other settings"):
        run_sweep(SweepConfig(arch="64-8-10", schedules=("linear",)), tmp_path)
    # A folder written before a setting existed resumes with the value it ran with...
    settings = json.loads((tmp_path / "sweep.json").read_text())
    del settings["batch_size"]
    (tmp_path / "sweep.json").write_text(json.dumps(settings))
    assert run_sweep(cfg, tmp_path, command="test")["table2"] == doc["table2"]
    # ... and not otherwise.
    (tmp_path / "sweep.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="other settings"):
        run_sweep(dataclasses.replace(cfg, batch_size=16), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["ray", "local"])
def test_failed_trial_is_reported(tmp_path, executor):
    from lavasparse.sweep import SweepConfig, TrialsFailed, run_sweep

    cfg = SweepConfig(arch="64-8-10", epochs=1, train_limit=100, device="cpu", schedules=("linear",),
                      max_failures=1, plan=SearchPlan(start=1e-4, bisect_steps=0), executor=executor)
    # A foreign configuration already in the trial's folder: train() refuses it on every attempt.
    trial = tmp_path / "trials" / "baseline"
    trial.mkdir(parents=True)
    (trial / "config.json").write_text(json.dumps({"name": "someone else's"}))
    with pytest.raises(TrialsFailed, match="trials/baseline"):
        run_sweep(cfg, tmp_path, command="test")


@pytest.mark.slow
def test_sweep_runs_where_lava_does_not_import(tmp_path):
    """The lent GPU machines import SLAYER but not lava-nc: with the local pool
    and no Lava cross-check, a sweep must not touch lava.magma or netx."""
    code = f"""
import importlib.abc, sys
class NoLava(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith(("lava.magma", "lava.lib.dl.netx", "lava.proc")):
            raise ImportError("no lava-nc here: " + name)
sys.meta_path.insert(0, NoLava())
from lavasparse.sweep import SweepConfig, run_sweep
from lavasparse.train.selection import SearchPlan
cfg = SweepConfig(arch="64-16-10", epochs=2, sparse_epochs=2, train_limit=200, test_limit=30, cross_check=0,
                  device="cpu", schedules=("linear",), plan=SearchPlan(start=1e-4, bisect_steps=0),
                  executor="local")
doc = run_sweep(cfg, {str(tmp_path)!r}, command="test", progress=False)
row = doc["table2"][0]
print(row["engine"], row["cross_checked_on_lava"], row["test_accuracy_target"])
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    engine, checked, accuracy = res.stdout.split()[-3:]
    assert (engine, checked) == ("emulator", "0") and 0 <= float(accuracy) <= 1


def test_every_dataset_has_defaults():
    from lavasparse.pipeline import DATASET_DEFAULTS, RunSettings
    from lavasparse.train.data import DATASETS

    assert set(DATASET_DEFAULTS) == set(DATASETS)
    for name in DATASETS:
        s = RunSettings(dataset=name)
        assert s.arch and s.lr_for("rate") > 0 and s.lr_for("latency") > 0 and 0 < s.false_rate < s.true_rate <= 1
        assert s.val_draws >= 1 and s.latency_window >= 1
    with pytest.raises(ValueError, match="unknown dataset"):
        RunSettings(dataset="imagenet")
