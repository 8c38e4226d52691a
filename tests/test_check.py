"""lavasparse check: our networks fit; each way of breaking Loihi 2's limits is
reported with the layer, the limit and the value; deploy refuses them."""
import warnings

import h5py
import numpy as np
import pytest

from conftest import make_net, random_spikes
from lavasparse.cli import main
from lavasparse.deploy.loihi2 import LOIHI2
from lavasparse.deploy.resources import check_network
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import read_network


def _dense_file(path, n_in, n_out, weight, **extra):
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f["layer/0/shape"] = np.array([n_in])
        g = f.create_group("layer/1")
        g.create_dataset("type", (1,), "S10", [b"dense"])
        g["shape"] = np.array([n_out])
        g["weight"] = weight
        g.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
        g["neuron/iDecay"], g["neuron/vDecay"], g["neuron/vThMant"] = 1024, 128, extra.pop("vth", 80)
        for k, v in extra.items():
            g[k] = v


@pytest.mark.parametrize("arch", ["64-128-128-10", "1x28x28-c16k5-p2-c32k3-p2-128-10", "784-500-10"])
def test_our_networks_fit(tmp_path, arch):
    desc = export_netx(make_net(arch), tmp_path / "n.net")
    r = check_network(desc)
    assert r.fits, [str(v) for v in r.violations]
    assert r.totals["neurons"] == sum(l.num_neurons for l in desc.spiking_layers)
    assert r.totals["chips"] == 1 and r.totals["cores"] >= len(desc.spiking_layers)
    assert len(r.layers) == len(desc.spiking_layers) > 0
    for use, layer in zip(r.layers, desc.spiking_layers):
        assert use.synapses_nonzero <= use.synapses_dense
        if layer.kind == "dense":
            assert use.synapses_nonzero == int((layer.weight != 0).sum())
            assert use.synapses_dense == layer.weight.size


def test_core_count_follows_the_binding_limit(tmp_path):
    # 20,000 neurons need 3 cores of 8,192, whatever their synapses.
    path = tmp_path / "big.net"
    _dense_file(path, 4, 20000, np.ones((20000, 4), np.int64) * 2)
    (use,) = check_network(read_network(path)).layers
    assert use.cores == 3 and use.cores_by == "neurons"
    # 2,000 inputs x 600 neurons, dense 8-bit: 9.6 Mbit of synapses > 1 Mbit per core.
    rng = np.random.default_rng(0)
    _dense_file(path, 2000, 600, rng.integers(-100, 100, (600, 2000)))
    (use,) = check_network(read_network(path)).layers
    assert use.cores_by in ("synaptic memory", "synapses") and use.cores >= 10
    assert use.memory_bits <= 600 * 2000 * 8


@pytest.mark.parametrize("case,limit", [
    ("clipped weights", "weight_bits"),
    ("long delay", "max_delay"),
    ("overflowing current", "state_bits"),
    ("too many inputs", "input_axons_per_core"),
    ("bias too large", "bias_bits"),
    ("threshold too large", "threshold_bits"),
])
def test_each_violation_names_layer_limit_value(tmp_path, case, limit):
    path = tmp_path / "bad.net"
    rng = np.random.default_rng(1)
    if case == "clipped weights":
        _dense_file(path, 8, 4, np.array([[300, -300] * 4] * 4))
    elif case == "long delay":
        _dense_file(path, 8, 4, np.full((4, 8), 10), delay=70)
    elif case == "overflowing current":
        _dense_file(path, 784, 4, np.full((4, 784), 254))          # 784 x 254 x 64 > 2**23
    elif case == "too many inputs":
        _dense_file(path, 40000, 2, rng.integers(-3, 3, (2, 40000)))
    elif case == "bias too large":
        _dense_file(path, 8, 4, np.full((4, 8), 10), bias=np.full(4, 5000))
    else:
        _dense_file(path, 8, 4, np.full((4, 8), 10), vth=1 << 17)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the reader warns about the clamped delay itself
        r = check_network(read_network(path))
    assert not r.fits
    hits = [v for v in r.violations if v.limit == limit]
    assert hits, [str(v) for v in r.violations]
    v = hits[0]
    assert v.layer == "dense1" and v.value > v.allowed
    assert f"layer dense1: {limit} = " in str(v)
    assert v.assumed == (not getattr(LOIHI2, limit).public)


def test_netx_default_neuron_threshold_breaks_the_field(tmp_path):
    """netx gives a dense layer without a neuron vThMant = 1 << 17, one more than
    the 17-bit field of Lava's bit-accurate LIF holds."""
    path = tmp_path / "n.net"
    _dense_file(path, 8, 4, np.full((4, 8), 10))
    with h5py.File(path, "a") as f:
        del f["layer/1/neuron"]
    r = check_network(read_network(path))
    assert [v.limit for v in r.violations] == ["threshold_bits"]


def test_cli_check_and_deploy_refusal(tmp_path, capsys):
    good = tmp_path / "good.net"
    export_netx(make_net("64-16-10"), good)
    assert main(["check", str(good), "--json", str(tmp_path / "c.json")]) == 0
    assert "fits: no limit broken" in capsys.readouterr().out
    bad = tmp_path / "bad.net"
    _dense_file(bad, 64, 4, np.full((4, 64), 10), bias=np.full(4, 5000))
    assert main(["check", str(bad)]) == 1
    assert "bias_bits = 5000" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", random_spikes((64, 5), p=0.3))
    assert main(["deploy", str(bad), "--input", str(tmp_path / "x.npy")]) == 2
    assert "does not fit Loihi 2" in capsys.readouterr().err
    assert main(["deploy", str(bad), "--input", str(tmp_path / "x.npy"), "--ignore-limits"]) == 0


def _lava_dl_net(name):
    """netx files that ship with lava-dl 0.6.0's wheel (its own tests)."""
    from pathlib import Path

    import lava.lib.dl.slayer as slayer   # lava.lib.dl is a namespace package: no __file__

    return Path(slayer.__file__).resolve().parents[4] / "tests" / "lava" / "lib" / "dl" / "netx" / name


def test_check_on_lava_dl_networks():
    # PilotNet (LIF), which Intel runs on Loihi 2: a conv stack, then dense layers straight after a
    # (C, 1, 1) conv output, as netx allows. It must fit on one chip.
    pilot = check_network(read_network(_lava_dl_net("gts/pilotnet_lif/network.net")))
    assert pilot.fits, [str(v) for v in pilot.violations]
    assert pilot.totals["chips"] == 1 and pilot.totals["neurons"] == 158509
    # lava-dl's mnist.net: its output layer's threshold, 1 << 17, is one past the 17-bit field.
    mnist = check_network(read_network(_lava_dl_net("mnist.net")))
    assert [(v.layer, v.limit, v.value) for v in mnist.violations] == [("dense3", "threshold_bits", 1 << 17)]
    assert "non-spiking integrator" in mnist.violations[0].message
    from lavasparse.export.netx_format import NetFileError

    sdnn = _lava_dl_net("gts/pilotnet_sdnn/network.net")
    with pytest.raises(NetFileError, match="neuron/type: 'SDNN' neurons are not modelled"):
        read_network(sdnn)            # not simulated, emulated or profiled...
    r = check_network(read_network(sdnn, any_neuron=True))     # ...but its resources are counted
    assert r.totals["neurons"] > 0 and any("SDNN neurons" in w for w in r.warnings)


def test_recurrent_weight_format_from_both_matrices(tmp_net):
    """netx optimises a dense_rec layer's input and recurrent weights together:
    the description's bits and exponent, the chip mapping's and the emulator's
    weights all follow from both matrices, not the input weights alone."""
    from lavasparse.export.netx_format import describe
    from lavasparse.layers.netx_weights import lava_dense_weights, netx_optimize_weight_bits

    _, path = tmp_net("20-8-4", steps=6)
    w_rec = np.full((8, 8), 2000)          # far larger than any input weight: sets the exponent
    with h5py.File(path, "a") as f:
        del f["layer/1/type"]
        f.create_dataset("layer/1/type", (1,), "S10", [b"dense_rec"])
        f["layer/1/weight_rec"] = w_rec
    desc = read_network(path)
    layer = desc.spiking_layers[0]
    _, bits, exponent, _ = netx_optimize_weight_bits(np.hstack([layer.weight, w_rec]))
    _, _, input_alone_exponent = lava_dense_weights(layer.weight)
    assert exponent != input_alone_exponent   # the case where the two rules differ
    row = next(r for r in describe(desc) if r["name"] == layer.name)
    use = next(u for u in check_network(desc).layers if u.name == layer.name)
    assert (row["weight_bits"], row["weight_exponent"]) == (bits, exponent)
    assert (use.weight_bits, use.weight_exponent) == (bits, exponent)
    w, w_rec_eff, exp = lava_dense_weights(layer.weight, w_rec)
    ff, rec = layer.emulator_synapses(graded=False)
    assert exp == exponent and ff.exponent == rec.exponent == exponent
    assert np.array_equal(ff.weights[0], w) and np.array_equal(rec.weights[0], w_rec_eff)
