"""lavasparse study: rows trained under one protocol, each judged by an epoch
chosen on validation (iso-accuracy against the reference), then measured on
the target; and a study resumes, takes added rows, refuses changed ones."""
import json

import pytest

from lavasparse.study import Row, StudyConfig, choose_epoch, run_study


def _epochs(*rows):
    return [{"epoch": i + 1, "sigma": s, "val_accuracy": a, "val_energy_dynamic_j": e}
            for i, (s, a, e) in enumerate(rows)]


def test_choose_epoch_cheapest_at_iso_else_most_accurate():
    ref = Row(name="ref", baseline=True)
    eps = _epochs((0, 0.90, 5e-7), (0, 0.95, 4e-7), (0, 0.95, 6e-7))
    assert choose_epoch(ref, eps, None)["epoch"] == 2            # most accurate, earliest on ties
    row = Row(name="r", encoding="latency", cost="energy", schedule="linear", sigma0=1e-6)
    eps = _epochs((1e-7, 0.96, 3e-7), (2e-7, 0.97, 2e-7), (3e-7, 0.95, 1e-7), (4e-7, 0.965, 2.5e-7))
    pick = choose_epoch(row, eps, 0.96)
    assert (pick["epoch"], pick["iso"]) == (2, True)               # the cheapest of those >= 0.96, not epoch 3
    pick = choose_epoch(row, eps, 0.99)
    assert (pick["epoch"], pick["iso"]) == (2, False)              # none is iso: the most accurate, flagged


def test_study_on_digits(tmp_path):
    rows = [{"name": "rate", "baseline": True},
            {"name": "latency-pruned", "encoding": "latency", "prune_density": [0.5, 1.0], "epochs": 2}]
    cfg = StudyConfig(dataset="digits", arch="64-16-10", weight_scale=2.0, epochs=3, train_limit=300,
                      test_limit=40, cross_check=4, rows=rows, executor="local")
    doc = run_study(cfg, tmp_path, command="test", progress=False)
    assert [r["name"] for r in doc["rows"]] == ["rate", "latency-pruned"]
    base, pruned = doc["rows"]
    assert base["baseline"] and base["iso_accuracy"] and base["energy_reduction_x"] == 1.0
    assert [r["epochs_trained"] for r in doc["rows"]] == [3, 2]   # a row's own epochs
    for r in doc["rows"]:
        assert 1 <= r["epoch"] <= r["epochs_trained"] and r["identical_to_slayer"]
        assert r["hidden_spikes_per_sample"] > 0 and r["synops_per_sample"] > 0
        assert r["synops_fraction_of_ann_macs"] == pytest.approx(r["synops_per_sample"] / (64 * 16 + 16 * 10))
    # the latency code sends far fewer input spikes than the rate code, and pruning shows in the density
    assert pruned["input_spikes_per_sample"] < base["input_spikes_per_sample"]
    final = [json.loads(l)["density"][0] for l in (tmp_path / "rows/latency-pruned/metrics.jsonl").read_text().splitlines()]
    assert len(final) == 2 and pruned["first_layer_density"] == pytest.approx(final[pruned["epoch"] - 1], abs=0.02)
    assert (tmp_path / "tables.md").read_text().count("| latency-pruned |") == 1
    assert f"| {pruned['epoch']} of 2 |" in (tmp_path / "tables.md").read_text()
    assert (tmp_path / "energy_accuracy.png").stat().st_size > 0
    saved = json.loads((tmp_path / "tables.json").read_text())
    assert saved["command"] == "test" and len(saved["rows"]) == 2
    # a changed row is refused; the same study resumes without training
    changed = StudyConfig(**{**cfg.__dict__, "rows": [rows[0], {**rows[1], "prune_density": [0.3, 1.0]}]})
    with pytest.raises(ValueError, match="other settings or rows"):
        run_study(changed, tmp_path, progress=False)
