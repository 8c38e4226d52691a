import json

import pytest

from conftest import random_spikes, slayer_spikes
from lavasparse.export.netx_format import read_network
from lavasparse.simulate.compare import write_report
from lavasparse.simulate.energy import LOIHI, EnergyTable
from lavasparse.simulate.profile import profile_run
from lavasparse.simulate.synops import synaptic_fanout


def test_profile_counts_by_hand(tmp_net):
    net, path = tmp_net("64-24-10", steps=6)
    desc = read_network(path)
    x = random_spikes((3, 64, 6), p=0.3, seed=0)
    spikes = slayer_spikes(net, x)
    prof = profile_run(desc, x, spikes)
    l1, l2 = prof["layers"]
    w1, w2 = desc.spiking_layers[0].weight, desc.spiking_layers[1].weight
    # synops by hand: every input spike reaches each non-zero synapse of its column
    assert l1["synops"] == sum(int((w1[:, i] != 0).sum()) * int(x[:, i].sum()) for i in range(64))
    assert l2["synops"] == sum(int((w2[:, j] != 0).sum()) * int(spikes[0][:, j].sum()) for j in range(24))
    assert l1["spikes"] == int(spikes[0].sum()) and l2["spikes"] == int(spikes[1].sum())
    assert l1["neuron_updates"] == 24 * 6 * 3
    assert l1["spikes_per_neuron_per_step"] == pytest.approx(l1["spikes"] / (24 * 6 * 3))
    e = l1["synops"] * 23.6e-12 + l1["spikes"] * LOIHI.spike_j + l1["neuron_updates"] * 52e-12
    assert l1["energy_j"] == pytest.approx(e)
    assert prof["per_sample"]["synops"] == pytest.approx((l1["synops"] + l2["synops"]) / 3)


def test_energy_table_is_swappable(tmp_path, tmp_net):
    net, path = tmp_net("64-24-10", steps=6)
    (tmp_path / "t.json").write_text(json.dumps(
        {"name": "unit", "synop_j": 1.0, "spike_j": 0.0, "neuron_update_j": 0.0, "source": "test"}))
    table = EnergyTable.from_json(tmp_path / "t.json")
    x = random_spikes((2, 64, 6), seed=1)
    prof = profile_run(read_network(path), x, slayer_spikes(net, x), table)
    assert prof["totals"]["energy_j"] == pytest.approx(prof["totals"]["synops"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        EnergyTable.from_json(tmp_path / "bad.json")


def test_compare_report(tmp_path, tmp_net):
    net, path = tmp_net("64-24-10", steps=6)
    desc = read_network(path)
    x = random_spikes((4, 64, 6), p=0.3, seed=0)
    full = profile_run(desc, x, slayer_spikes(net, x))
    half = profile_run(desc, x // 2, slayer_spikes(net, x // 2))  # no input: fewer spikes
    runs = [{"name": "baseline", "accuracy_float": 0.9, "accuracy_target": 0.9, "profile": full},
            {"name": "sparse", "accuracy_float": 0.89, "accuracy_target": 0.88, "profile": half}]
    md = write_report(runs, tmp_path / "rep")
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    for key in ("name", "accuracy_float", "accuracy_target", "spikes_per_sample",
                "synops_per_sample", "energy_per_sample_j"):
        assert key in report["runs"][0]
    assert report["runs"][1]["synops_per_sample"] == 0
    assert "| 100.0% |" in md and "| 0.0% |" in md  # reductions, relative to the first run
    png = (tmp_path / "rep" / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_through_conv_pool_flatten(tmp_net):
    """Synops of the dense layer after a flatten: the pool's spikes in (C, H, W) order times fan-out."""
    net, path = tmp_net("1x6x6-c3k3-p2-7-4", steps=5)
    desc = read_network(path)
    x = random_spikes((2, 1, 6, 6, 5), p=0.5, seed=0)
    spikes = slayer_spikes(net, x)
    prof = profile_run(desc, x, spikes)
    assert [l["name"] for l in prof["layers"]] == ["conv1", "pool2", "dense4", "dense5"]
    dense = desc.spiking_layers[2]
    pool_counts = spikes[1].sum(axis=(0, -1)).reshape(-1)          # per pool neuron, C-order
    assert pool_counts.sum() > 0
    assert prof["layers"][2]["synops"] == int((pool_counts * (dense.weight != 0).sum(axis=0)).sum())
    conv = desc.spiking_layers[0]
    assert prof["layers"][0]["synops"] == int((x.sum(axis=(0, -1)) * synaptic_fanout(conv)).sum())


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
    assert prof["layers"][0]["synops"] == ff + rec and prof["layers"][0]["name"] == "dense_rec1"
