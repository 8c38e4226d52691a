"""The whole pipeline on a small slice of digits, and the CLI verbs on its output."""
import json

import numpy as np
import pytest

from lavasparse.cli import main
from lavasparse.pipeline import PipelineConfig, run_pipeline


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path, capsys):
    cfg = PipelineConfig(arch="64-32-10", weight_scale=2.0, epochs=4, train_limit=300, test_limit=40,
                         sigma0=(1e-3, 1e-2), sparse_epochs=2, device="cpu")
    report = run_pipeline(cfg, tmp_path, progress=False)
    names = [r["name"] for r in report["runs"]]
    assert names[0] == "baseline" and names[1] in ("sparse-linear-1e-03", "sparse-linear-1e-02")
    sel = report["sigma0_selection"]
    assert [t["sigma0"] for t in sel["trials"]] == [1e-3, 1e-2]
    assert names[1] == f"sparse-linear-{sel['chosen']:.0e}"
    for run in report["runs"]:
        for key in ("accuracy_float", "accuracy_target", "spikes_per_sample", "synops_per_sample",
                    "energy_per_sample_j"):
            assert isinstance(run[key], float) and run[key] >= 0
        # The default engine is the emulator, cross-checked on Lava for the first 16 samples.
        assert run["engine"] == "emulator" and run["agreement"]["cross_checked_on_lava"] == 16
        # The target agrees with SLAYER's fixed-point inference: within 1 point and 5% per layer
        # (in fact spike for spike).
        assert abs(run["accuracy_target"] - run["accuracy_float"]) <= 0.01
        assert all(abs(r - 1) <= 0.05 for r in run["agreement"]["layer_spike_ratio"] if r is not None)
        assert run["agreement"]["identical_spikes"]
    for f in ("report.md", "report.json", "report.png", "test_input.npy", "baseline/network.net",
              f"{names[1]}/profile.json"):
        assert (tmp_path / f).exists(), f
    assert "| baseline |" in capsys.readouterr().out

    # CLI verbs on the pipeline's files
    net = tmp_path / "baseline" / "network.net"
    out_json = tmp_path / "prof.json"
    assert main(["profile", str(net), "--input", str(tmp_path / "test_input.npy"), "--json", str(out_json)]) == 0
    prof = json.loads(out_json.read_text())
    assert [l["name"] for l in prof["layers"]] == ["dense1", "dense2"]
    saved = json.loads((tmp_path / "baseline" / "profile.json").read_text())
    assert [l["spikes"] for l in prof["layers"]] == [l["spikes"] for l in saved["layers"]]
    assert main(["export", str(tmp_path / "baseline"), "--out", str(tmp_path / "again.net")]) == 0
    assert "weight_bits" in capsys.readouterr().out
    one = np.load(tmp_path / "test_input.npy")[0]
    np.save(tmp_path / "one.npy", one)
    assert main(["deploy", str(net), "--input", str(tmp_path / "one.npy")]) == 0
    np.save(tmp_path / "bad.npy", one[:10])
    assert main(["deploy", str(net), "--input", str(tmp_path / "bad.npy")]) == 2
    assert "expected (64, T)" in capsys.readouterr().err
