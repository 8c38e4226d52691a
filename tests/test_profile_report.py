import json

import pytest

from conftest import random_spikes, slayer_spikes
from lavasparse.export.netx_format import read_network
from lavasparse.simulate.compare import write_report
from lavasparse.simulate.energy import FIGURES, EnergyProfile, default_profile
from lavasparse.simulate.profile import profile_run
from lavasparse.simulate.target_result import TargetEvaluation


def test_profile_counts_by_hand(tmp_net):
    net, path = tmp_net("64-24-10", steps=6)
    desc = read_network(path)
    x = random_spikes((3, 64, 6), p=0.3, seed=0)
    spikes = slayer_spikes(net, x)
    prof = profile_run(desc, x, spikes)
    l1, l2 = prof.layers
    w1, w2 = desc.spiking_layers[0].weight, desc.spiking_layers[1].weight
    # synops by hand: every input spike reaches each non-zero synapse of its column
    assert l1.synops == sum(int((w1[:, i] != 0).sum()) * int(x[:, i].sum()) for i in range(64))
    assert l2.synops == sum(int((w2[:, j] != 0).sum()) * int(spikes[0][:, j].sum()) for j in range(24))
    assert l1.spikes == int(spikes[0].sum()) and l2.spikes == int(spikes[1].sum())
    assert l1.neuron_updates == 24 * 6 * 3
    assert l1.spikes_per_neuron_per_step == pytest.approx(l1.spikes / (24 * 6 * 3))
    # Davies et al. 2018, Table 1: 23.6 pJ per synop, 1.7 pJ per spike + (81 - 52) pJ active update, 52 pJ per update
    e = l1.synops * 23.6e-12 + l1.spikes * (1.7e-12 + 29e-12) + l1.neuron_updates * 52e-12
    assert l1.energy_dynamic_j == pytest.approx(e)
    # Static: cores in use x static power x inference time; time: barrier + the slowest layer's work per step.
    p = default_profile()
    step = p.value("barrier_s") + max(l.synops / (3 * 6) / l.cores * p.value("synop_s")
                                      + l.neurons / l.cores * p.value("neuron_update_s") for l in (l1, l2))
    assert prof.per_sample.inference_time_s == pytest.approx(6 * step)
    assert l1.energy_static_j == pytest.approx(p.value("static_w_per_core") * l1.cores * 6 * step * 3)
    assert l1.energy_j == pytest.approx(l1.energy_dynamic_j + l1.energy_static_j)
    assert prof.per_sample.synops == pytest.approx((l1.synops + l2.synops) / 3)
    nb = prof.neurobench
    assert nb["Effective_ACs"] == prof.per_sample.synops
    assert nb["Activation_Sparsity"] == pytest.approx(1 - (l1.spikes + l2.spikes) / ((24 + 10) * 6 * 3))
    assert nb["Connection_Sparsity"] == pytest.approx(1 - (int((w1 != 0).sum()) + int((w2 != 0).sum()))
                                                      / (w1.size + w2.size))
    assert nb["Dense"] == (w1.size + w2.size) * 6


def test_energy_profiles_are_cited_and_swappable(tmp_path, tmp_net):
    for name in ("loihi1-davies2018", "loihi2-estimate"):
        p = EnergyProfile.load(name)
        assert set(FIGURES) <= set(p.figures)
        for key, f in p.figures.items():
            assert f.source and f.status in ("published", "estimate"), (name, key)
            if f.status == "estimate":
                assert "estimate" in f.source, (name, key)   # the source says so in words
    assert EnergyProfile.load("loihi1-davies2018").estimates == ["static_w_per_core"]
    net, path = tmp_net("64-24-10", steps=6)
    unit = {k: {"value": 0.0, "unit": "-", "status": "estimate", "source": "test"} for k in FIGURES}
    unit["synop_j"]["value"] = 1.0
    (tmp_path / "t.json").write_text(json.dumps({"name": "unit", "description": "", "figures": unit}))
    x = random_spikes((2, 64, 6), seed=1)
    prof = profile_run(read_network(path), x, slayer_spikes(net, x), EnergyProfile.load(tmp_path / "t.json"))
    assert prof.totals.energy_j == pytest.approx(prof.totals.synops)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        EnergyProfile.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="known"):
        EnergyProfile.load("no-such-chip")


def test_compare_report(tmp_path, tmp_net):
    net, path = tmp_net("64-24-10", steps=6)
    desc = read_network(path)
    x = random_spikes((4, 64, 6), p=0.3, seed=0)
    full = profile_run(desc, x, slayer_spikes(net, x))
    half = profile_run(desc, x // 2, slayer_spikes(net, x // 2))  # no input: fewer spikes
    runs = [TargetEvaluation(name="baseline", accuracy_float=0.9, accuracy_target=0.9, profile=full),
            TargetEvaluation(name="sparse", accuracy_float=0.89, accuracy_target=0.88, profile=half)]
    md, _ = write_report(runs, tmp_path / "rep")
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    for key in ("name", "accuracy_float", "accuracy_target", "spikes_per_sample",
                "synops_per_sample", "energy_per_sample_j"):
        assert key in report["runs"][0]
    assert report["runs"][1]["synops_per_sample"] == 0
    assert "| 100.0% |" in md and "| 0.0% |" in md  # reductions, relative to the first run
    for png in ("report.png", "energy_accuracy.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "static (nJ)" in md and "Effective_ACs" in md and "Davies" in md


def test_profile_through_conv_pool_flatten(tmp_net):
    """Synops of the dense layer after a flatten: the pool's spikes in (C, H, W) order times fan-out."""
    net, path = tmp_net("1x6x6-c3k3-p2-7-4", steps=5)
    desc = read_network(path)
    x = random_spikes((2, 1, 6, 6, 5), p=0.5, seed=0)
    spikes = slayer_spikes(net, x)
    prof = profile_run(desc, x, spikes)
    assert [l.name for l in prof.layers] == ["conv1", "pool2", "dense4", "dense5"]
    dense = desc.spiking_layers[2]
    pool_counts = spikes[1].sum(axis=(0, -1)).reshape(-1)          # per pool neuron, C-order
    assert pool_counts.sum() > 0
    assert prof.layers[2].synops == int((pool_counts * (dense.weight != 0).sum(axis=0)).sum())
    conv = desc.spiking_layers[0]
    assert prof.layers[0].synops == int((x.sum(axis=(0, -1)) * conv.fanout()).sum())


def test_recurrent_synops_counted_by_hand(tmp_net):
    import h5py
    import numpy as np

    from lavasparse.simulate.emulator import Emulator

    _, path = tmp_net("20-8-4", steps=6)
    rng = np.random.default_rng(1)
    w_rec = rng.integers(-60, 60, (8, 8)) * (rng.random((8, 8)) < 0.5)
    with h5py.File(path, "a") as f:
        del f["layer/1/type"]
        f.create_dataset("layer/1/type", (1,), "S10", [b"dense_rec"])
        f["layer/1/weight_rec"] = w_rec
    desc = read_network(path)
    x = random_spikes((3, 20, 6), p=0.4, seed=2)
    spikes = Emulator(desc).run(x).spikes
    prof = profile_run(desc, x, spikes)
    w1 = desc.spiking_layers[0].weight
    ff = sum(int((w1[:, i] != 0).sum()) * int(x[:, i].sum()) for i in range(20))
    rec = sum(int((w_rec[:, j] != 0).sum()) * int(spikes[0][:, j].sum()) for j in range(8))
    assert spikes[0].sum() > 0 and rec > 0
    assert prof.layers[0].synops == ff + rec and prof.layers[0].name == "dense_rec1"
