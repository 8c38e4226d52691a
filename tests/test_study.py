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
    assert [r["epochs"] for r in doc["rows"]] == [3, 2]   # a row's own epochs
    for r in doc["rows"]:
        assert 1 <= r["epoch"] <= r["epochs"] and r["identical_to_slayer"]
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


def test_over_seeds_means_spread_and_flags():
    from lavasparse.study import over_seeds
    runs = [{"name": "r", "seed": s, "epoch": e, "iso_accuracy": iso, "test_accuracy_target": a,
             "spikes_per_neuron": [a, 2 * a], "epochs": 3, "engine": "emulator", "val_accuracy": a,
             "density_per_layer": [1.0, None]}
            for s, e, iso, a in [(0, 2, True, 0.90), (1, 3, False, 0.94), (2, 3, True, 0.92)]]
    row = over_seeds(runs)
    assert row["seeds"] == [0, 1, 2] and row["epoch"] == [2, 3, 3]
    assert row["iso_accuracy"] is False and row["iso_seeds"] == 2
    assert row["test_accuracy_target"] == pytest.approx(0.92) and row["spikes_per_neuron"] == pytest.approx([0.92, 1.84])
    assert row["epochs"] == 3 and isinstance(row["epochs"], int) and row["engine"] == "emulator"
    assert row["density_per_layer"] == [1.0, None]
    flags = over_seeds([{"seed": 0, "same": True, "prune": [0.1, 1.0]}, {"seed": 1, "same": False, "prune": [0.1, 1.0]}])
    assert flags["same"] is False and flags["prune"] == [0.1, 1.0]   # a flag holds only where it holds on every seed
    s = row["spread"]["test_accuracy_target"]
    assert (s["min"], s["max"]) == (0.90, 0.94) and s["std"] == pytest.approx(0.02)
    assert len(row["per_seed"]) == 3 and "spread" not in over_seeds(runs[:1])


def test_study_over_seeds_on_digits(tmp_path):
    rows = [{"name": "rate", "baseline": True}, {"name": "latency", "encoding": "latency"}]
    cfg = StudyConfig(dataset="digits", arch="64-16-10", weight_scale=2.0, epochs=2, train_limit=200,
                      test_limit=24, cross_check=0, rows=rows, executor="local", seeds=(3, 4))
    doc = run_study(cfg, tmp_path, command="test", progress=False)
    assert doc["seeds"] == [3, 4]
    for r in doc["rows"]:
        assert r["seeds"] == [3, 4] and len(r["per_seed"]) == 2
        assert r["model"] == "snn" and r["arch"] == "64-16-10" and len(r["spikes_per_neuron"]) == 1
        for seed, run in zip([3, 4], r["per_seed"]):
            config = json.loads((tmp_path / f"rows/{r['name']}/seed{seed}/config.json").read_text())
            assert config["seed"] == seed and run["seed"] == seed
        spikes = [run["hidden_spikes_per_sample"] for run in r["per_seed"]]
        assert spikes[0] > 0 and spikes[1] > 0
        assert r["hidden_spikes_per_sample"] == pytest.approx(sum(spikes) / 2)
        assert r["spikes_per_neuron"][0] == pytest.approx(r["hidden_spikes_per_sample"] / 16)
    # each seed's reference has reduction 1; the table shows the spread
    assert [run["energy_reduction_x"] for run in doc["rows"][0]["per_seed"]] == [1.0, 1.0]
    assert "±" in (tmp_path / "tables.md").read_text()
    # one more seed: only it trains
    trained = {p.parent for p in tmp_path.glob("rows/*/seed*/result.json")}
    run_study(StudyConfig(**{**cfg.__dict__, "seeds": (3, 4, 5)}), tmp_path, progress=False)
    assert {p.parent for p in tmp_path.glob("rows/*/seed*/result.json")} - trained == {
        tmp_path / "rows/rate/seed5", tmp_path / "rows/latency/seed5"}


def test_row_checks_its_synapse():
    assert Row(name="i", synapse="isi", isi_rule="imsnnc").model == "imsnnc"
    assert Row(name="b", synapse="isi", isi_rule="bptt").model == "isi-bptt" and Row(name="s").model == "snn"
    with pytest.raises(ValueError, match="row 'x': unknown synapse"):
        Row(name="x", synapse="gaussian")
    with pytest.raises(ValueError, match="row 'y': unknown ISI rule"):
        Row(name="y", synapse="isi", isi_rule="sgd")
