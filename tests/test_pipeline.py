"""The whole pipeline on a small slice of digits, and the CLI verbs on its output."""
import json

import numpy as np
import pytest

from lavasparse.cli import main
from lavasparse.pipeline import PipelineConfig, run_pipeline


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path, capsys):
    cfg = PipelineConfig(arch="64-32-10", weight_scale=2.0, epochs=4, train_limit=300, test_limit=40,
                         sigma0=(1e-3, 1e-2), energy_sigma0=(1e-5,), sparse_epochs=2, val_draws=2, device="cpu")
    report = run_pipeline(cfg, tmp_path, progress=False)
    names = [r["name"] for r in report["runs"]]
    assert names == ["baseline", "spike-trained", "latency-coded", "energy-trained"]
    runs = {r["name"]: r for r in report["runs"]}
    assert runs["baseline"]["encoding"] == "rate" and runs["energy-trained"]["encoding"] == "latency"
    assert runs["latency-coded"]["encoding"] == "latency" and runs["latency-coded"]["sigma0"] == 0
    assert runs["spike-trained"]["cost"] == "spikes" and runs["energy-trained"]["cost"] == "energy"
    sel = report["selection"]
    base_val = sel["baseline_val_accuracy"]
    for label, fam in sel["families"].items():
        assert set(fam["runs"]) == {"spike-trained": {"spikes-rate-linear-1e-03", "spikes-rate-linear-1e-02"},
                                    "latency-coded": {"baseline-latency"},
                                    "energy-trained": {"energy-latency-linear-1e-05"}}[label]
        assert all(len(log) == 2 if label == "spike-trained" else len(log) == 4 for log in fam["runs"].values())
        chosen = fam["chosen"]
        assert runs[label]["run"] == chosen["run"] and runs[label]["checkpoint"] == f"epochs/{chosen['epoch']:03d}"
        # each run at its most accurate epoch; of those, the cheapest that keeps the accuracy, never a dearer one
        best = [max(log, key=lambda e: (e["val_accuracy"], -e["val_energy_dynamic_j"])) for log in fam["runs"].values()]
        passing = [e for e in best if base_val - e["val_accuracy"] < 0.01 - 1e-9]
        if chosen["passes"]:
            assert chosen["val_energy_dynamic_j"] == min(e["val_energy_dynamic_j"] for e in passing)
        else:
            assert not passing
    passing_families = [l for l, f in sel["families"].items() if f["chosen"]["passes"]]
    if passing_families:
        assert sel["chosen"] == min(passing_families,
                                    key=lambda l: sel["families"][l]["chosen"]["val_energy_dynamic_j"])
    for run in report["runs"]:
        for key in ("accuracy_float", "accuracy_target", "spikes_per_sample", "synops_per_sample",
                    "energy_per_sample_j"):
            assert isinstance(run[key], float) and run[key] >= 0
        # The default engine is the emulator, cross-checked on Lava for the first 16 samples.
        assert run["engine"] == "emulator" and run["agreement"]["cross_checked_on_lava"] == 16
        assert run["spikes_per_sample"] > 0
        # The target agrees with SLAYER's fixed-point inference spike for spike, in both input codes.
        assert abs(run["accuracy_target"] - run["accuracy_float"]) <= 0.01
        assert all(abs(r - 1) <= 0.05 for r in run["agreement"]["layer_spike_ratio"] if r is not None)
        assert run["agreement"]["identical_spikes"]
        assert len(run["density"]) == 2 and all(0 < d <= 1 for d in run["density"])
    for f in ("report.md", "report.json", "report.png", "test_input_rate.npy", "test_input_latency.npy",
              "baseline/network.net",
              f"{runs['energy-trained']['run']}/eval-epochs{sel['families']['energy-trained']['chosen']['epoch']:03d}/profile.json"):
        assert (tmp_path / f).exists(), f
    latency = np.load(tmp_path / "test_input_latency.npy")
    assert latency.sum(axis=-1).max() <= 1 and latency.sum() > 0   # at most one spike per pixel
    out = capsys.readouterr().out
    assert "| baseline |" in out and "| energy-trained |" in out and "chosen:" in out

    # CLI verbs on the pipeline's files
    net = tmp_path / "baseline" / "network.net"
    out_json = tmp_path / "prof.json"
    assert main(["profile", str(net), "--input", str(tmp_path / "test_input_rate.npy"), "--json", str(out_json)]) == 0
    prof = json.loads(out_json.read_text())
    assert [l["name"] for l in prof["layers"]] == ["dense1", "dense2"]
    saved = json.loads((tmp_path / "baseline" / "profile.json").read_text())
    assert [l["spikes"] for l in prof["layers"]] == [l["spikes"] for l in saved["layers"]]
    assert main(["export", str(tmp_path / "baseline"), "--out", str(tmp_path / "again.net")]) == 0
    assert "weight_bits" in capsys.readouterr().out
    one = np.load(tmp_path / "test_input_rate.npy")[0]
    np.save(tmp_path / "one.npy", one)
    assert main(["deploy", str(net), "--input", str(tmp_path / "one.npy")]) == 0
    np.save(tmp_path / "bad.npy", one[:10])
    assert main(["deploy", str(net), "--input", str(tmp_path / "bad.npy")]) == 2
    assert "expected (64, T)" in capsys.readouterr().err

    # compare: each run in its own input code, without --input
    assert main(["compare", str(tmp_path / "baseline"), str(tmp_path / runs["energy-trained"]["run"]),
                 "--out", str(tmp_path / "cmp"), "--test-limit", "40", "--cross-check", "0"]) == 0
    cmp = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert [r["encoding"] for r in cmp["runs"]] == ["rate", "latency"]
    # the energy-trained run's best checkpoint differs from the chosen epoch, but its figures are on the same test set
    assert cmp["runs"][0]["energy_per_sample_j"] == pytest.approx(runs["baseline"]["energy_per_sample_j"])
