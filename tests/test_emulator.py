"""The emulator against Lava (Loihi2SimCfg, fixed_pt): identical spikes, every
layer, every step, on random netx networks that hypothesis draws."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st, target

from conftest import assert_same_spikes, make_net, random_spikes, slayer_spikes
from lavasparse.deploy.lava_runner import run_on_lava
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import read_network
from lavasparse.layers.netx_weights import lava_dense_weights
from lavasparse.simulate.emulator import Emulator, UnsupportedNetwork

# More examples than CI's, for a long local run: LAVASPARSE_PROPERTY_EXAMPLES=500
EXAMPLES = int(os.environ.get("LAVASPARSE_PROPERTY_EXAMPLES", "30"))


def _neuron(g, rng, draw_bias: bool, shape, max_vth: int):
    if rng.random() < 0.5:
        g.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
    else:   # as lava-dl's PilotNet LIF writes them: LOIHI, with fields netx reads past
        g.create_dataset("neuron/type", (1,), "S10", [b"LOIHI"])
        g["neuron/theta"], g["neuron/tauRho"], g["neuron/scaleRho"], g["neuron/wgtExp"] = 1600, 0.5, 1.0, 0
    g["neuron/iDecay"] = int(rng.choice([0, 4096, rng.integers(0, 4097)]))
    g["neuron/vDecay"] = int(rng.choice([0, 4096, rng.integers(0, 4097)]))
    g["neuron/vThMant"] = int(rng.integers(1, max_vth))
    g["neuron/refDelay"] = 1
    if draw_bias:
        g["bias"] = rng.integers(-60, 60, shape[0])


def _weights(rng, shape, style):
    if style == "even8":      # what SLAYER exports
        w = rng.integers(-128, 128, shape) * 2
    elif style == "odd":      # anyone's integers, some beyond 8 bits
        w = rng.integers(-300, 300, shape)
    else:                     # small, sparse, one sign
        w = rng.integers(0, 6, shape) * (rng.random(shape) < 0.5)
        if style == "inhibitory":
            w = -w
    w = w.astype(np.int64)
    if not w.any():
        w.flat[0] = 3 if style != "inhibitory" else -3
    return w


@st.composite
def delays(draw, steps_hint: int = 9):
    """None, or how a layer's delays are written: (form, max delay); some
    reach more than one window back."""
    if not draw(st.booleans()):
        return None
    return draw(st.sampled_from(["scalar", "out", "in", "full"])), draw(st.integers(0, 2 * steps_hint + 1))


@st.composite
def networks(draw):
    """A random netx network as (seed, input shape, input neuron?, weight style,
    layers, bias?, graded input?): convs (then flatten) or dense only; dense
    layers may be recurrent, have synaptic delays, or no neuron (netx's
    default integrator); the input may be graded spikes. What lava-dl's
    PilotNet LIF has is drawn too: stride, padding and dilation per axis,
    channel biases, LOIHI neurons, dense layers shaped (n, 1, 1) after a conv."""
    seed = draw(st.integers(0, 2 ** 31 - 1))
    spatial = draw(st.booleans())
    in_shape = ((draw(st.integers(1, 3)), draw(st.integers(4, 7)), draw(st.integers(4, 7))) if spatial
                else (draw(st.integers(3, 11)),))
    input_neuron = draw(st.booleans())
    style = draw(st.sampled_from(["even8", "odd", "small", "inhibitory"]))
    layers, shape = [], in_shape
    if spatial:
        for _ in range(draw(st.integers(0, 2))):
            groups = draw(st.sampled_from([1, shape[0]]))
            c_out = groups * draw(st.integers(1, 2))
            kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            # Each per axis, (H, W) as the file holds them: PilotNet has stride
            # (2, 1) with padding (1, 0).
            stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            pad = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
            dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            ho = (shape[1] + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
            wo = (shape[2] + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
            if ho < 1 or wo < 1:
                break
            layers.append(("conv", (c_out, ho, wo), dict(w=(c_out, shape[0] // groups, kh, kw), stride=stride,
                                                        pad=pad, dil=dil, groups=groups)))
            shape = (c_out, ho, wo)
        layers.append(("flatten", None, {}))
        shape = (int(np.prod(shape)),)
    for last in [False] * draw(st.integers(0, 1)) + [True]:
        n = draw(st.integers(2, 6))
        rec = draw(st.booleans())
        # netx gives a recurrent layer's input weights' delays to its recurrent
        # weights too, which Lava accepts only when they have the same shape.
        delay = draw(delays()) if not rec or n == shape[0] else None
        no_neuron = draw(st.integers(0, 9)) == 0
        # After convs, some dense layers are written (n, 1, 1), as PilotNet's are.
        flat_3d = spatial and draw(st.booleans())
        layers.append(("dense", (n,), dict(rec=rec, delay=delay, no_neuron=no_neuron, shape_3d=flat_3d)))
        shape = (n,)
    graded = not input_neuron and draw(st.booleans())
    return seed, in_shape, input_neuron, style, layers, draw(st.booleans()), graded


def _delay(rng, spec, w_shape):
    form, top = spec
    return {"scalar": lambda: int(rng.integers(0, top + 1)),
            "out": lambda: rng.integers(0, top + 1, w_shape[0]),
            "in": lambda: rng.integers(0, top + 1, w_shape[1]),
            "full": lambda: rng.integers(0, top + 1, w_shape)}[form]()


def write_network(path, seed, in_shape, input_neuron, style, layers, bias, graded=False):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        g = f.create_group("layer/0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g["shape"] = np.array(in_shape)
        if input_neuron:
            _neuron(g, rng, False, in_shape, 40)
        prev = in_shape
        for i, (kind, shape, p) in enumerate(layers, start=1):
            g = f.create_group(f"layer/{i}")
            rec = p.get("rec", False)
            g.create_dataset("type", (1,), "S10", [(b"dense_rec" if rec else kind.encode())])
            if kind == "flatten":
                prev = (int(np.prod(prev)),)
                continue
            g["shape"] = np.array((*shape, 1, 1) if p.get("shape_3d") else shape)
            if kind == "conv":
                g["weight"] = _weights(rng, p["w"], style)
                g["stride"] = np.array(p["stride"])
                g["padding"] = np.array(p["pad"])
                g["dilation"] = np.array(p["dil"])
                g["groups"] = p["groups"]
            else:
                g["weight"] = _weights(rng, (shape[0], prev[0]), style)
                if rec:
                    g["weight_rec"] = _weights(rng, (shape[0], shape[0]), style)
                if p.get("delay"):
                    g["delay"] = _delay(rng, p["delay"], (shape[0], prev[0]))
            if not p.get("no_neuron"):
                # Thresholds on the weights' scale, so that most drawn networks spike.
                _neuron(g, rng, bias, shape, 300 if style in ("even8", "odd") else 12)
            prev = shape


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.integers(3, 9), st.integers(1, 4))
def test_emulator_identical_to_lava(tmp_path_factory, net, steps, n):
    seed, in_shape, input_neuron, style, layers, bias, graded = net
    rng = np.random.default_rng(seed + 1)
    path = tmp_path_factory.mktemp("emu") / "net.net"
    write_network(path, seed, in_shape, input_neuron, style, layers, bias)
    desc = read_network(path)
    for layer in desc.layers:   # as read: broadcastable to the layer's (C, H, W) or (N,)
        assert layer.bias is None or np.broadcast_shapes(np.shape(layer.bias), layer.shape) == tuple(layer.shape)
    x = (rng.random((n, *in_shape, steps)) < 0.5).astype(np.int32)
    if input_neuron or graded:
        x = x * rng.integers(1, 120, x.shape)  # input currents or graded payloads, not only spikes
    bits = 8 if graded else 0
    em = Emulator(desc, input_message_bits=bits).run(x, batch_size=2, record_states=True)
    lava = run_on_lava(read_network(path), x, progress=False, record_states=True, input_message_bits=bits)
    target(float(sum(int(s.sum()) > 0 for s in lava.spikes)), label="layers that spike")
    assume(any(int(s.sum()) > 0 for s in lava.spikes))   # a silent draw proves nothing: drawn again
    assert_same_spikes(lava.spikes, em.spikes, lava.layer_names, what="emulator against Lava")
    assert len(lava.currents) == len(em.currents) == len(lava.voltages) == len(em.voltages) == len(lava.layer_names)
    for name, lu, lv, eu, ev in zip(lava.layer_names, lava.currents, lava.voltages, em.currents, em.voltages):
        assert np.array_equal(lu, eu), f"{name}: current u differs"
        assert np.array_equal(lv, ev), f"{name}: voltage v differs"


@pytest.mark.parametrize("arch", ["64-24-10", "1x8x8-c4k3-p2-c6k3p0-12-10"])
def test_emulator_on_our_networks(tmp_path, arch):
    net = make_net(arch, steps=10)
    export_netx(net, tmp_path / "n.net")
    x = random_spikes((7, *net.specs[0].in_shape, 10), p=0.4, seed=4)
    em = Emulator(read_network(tmp_path / "n.net")).run(x, batch_size=3)
    assert_same_spikes(slayer_spikes(net, x), em.spikes, what=f"{arch}: emulator against SLAYER")


def test_weight_mapping_matches_netx():
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    rng = np.random.default_rng(0)
    for style in ("even8", "odd", "small", "inhibitory"):
        for _ in range(20):
            w = _weights(rng, (5, 7), style)
            ours, none, exp = lava_dense_weights(w)
            assert none is None
            ref, bits, ref_exp, _ = optimize_weight_bits(w.copy())
            sign = determine_sign_mode(ref)
            ref = truncate_weights(clip_weights(ref, sign, num_bits=8), sign, bits)
            assert exp == ref_exp and np.array_equal(ours, ref)
            # A recurrent layer: netx optimises both matrices together; Lava clips each by its own sign.
            w_rec = _weights(rng, (5, 5), style)
            ours, ours_rec, exp = lava_dense_weights(w, w_rec)
            both, bits, ref_exp, _ = optimize_weight_bits(np.hstack([w, w_rec]))
            for mine, part in ((ours, both[:, :7]), (ours_rec, both[:, 7:])):
                sign = determine_sign_mode(part)
                assert np.array_equal(mine, truncate_weights(clip_weights(part, sign, num_bits=8), sign, bits))
            assert exp == ref_exp


def test_refuses_what_it_does_not_model(tmp_path):
    net = make_net("64-8-4")
    path = tmp_path / "d.net"
    export_netx(net, path)
    with h5py.File(path, "a") as f:
        del f["layer/1/neuron/vDecay"]
        f["layer/1/neuron/vDecay"] = np.arange(8) * 100     # one decay per neuron
    with pytest.raises(UnsupportedNetwork, match="per-neuron vDecay"):
        Emulator(read_network(path))
    # A conv whose sums Lava's float32 cannot hold exactly.
    conv = make_net("4x9x9-c3k3-5")
    export_netx(conv, path)
    with h5py.File(path, "a") as f:
        w = f["layer/1/weight"][()]
        del f["layer/1/weight"]
        f["layer/1/weight"] = np.full_like(w, 254)
    x = np.full((1, 4, 9, 9, 2), 10000, np.int32)   # 36 taps x 254 x 10000 > 2**24
    with pytest.raises(UnsupportedNetwork, match="float32"):
        Emulator(read_network(path), input_message_bits=16).run(x)


def test_delays_reach_into_the_next_sample(tmp_path):
    """A delay longer than a sample: the second sample sees the first one's
    input spikes, in Lava and in the emulator, whatever the batch boundaries."""
    net = make_net("6-3", weight_scale=8.0)
    path = tmp_path / "d.net"
    export_netx(net, path)
    with h5py.File(path, "a") as f:
        f["layer/1/delay"] = 7
    x = np.zeros((3, 6, 5), np.int32)
    x[0, :, 0] = 1                     # one burst at the start of sample 0 only
    lava = run_on_lava(read_network(path), x, progress=False)
    assert lava.spikes[0][0].sum() == 0 and lava.spikes[0][1].sum() > 0   # it arrives in sample 1
    for batch in (1, 2, 3):
        em = Emulator(read_network(path)).run(x, batch_size=batch)
        assert np.array_equal(em.spikes[0], lava.spikes[0])


def test_cross_check_stops_on_a_difference(tmp_path, monkeypatch):
    from lavasparse.simulate import emulator as emu
    from lavasparse.simulate.engines import CrossCheckError, run_target

    net = make_net("64-16-6", steps=8)
    path = tmp_path / "n.net"
    export_netx(net, path)
    x = random_spikes((4, 64, 8), p=0.5, seed=2)
    ok = run_target(read_network(path), x, "emulator", cross_check=3, progress=False)
    assert ok.engine == "emulator" and ok.cross_checked == 3
    assert sum(int(s.sum()) for s in ok.spikes) > 0

    real = emu.lif_dynamics

    def broken(a_in, neuron, record_states=False):
        s, st = real(a_in, neuron, record_states)
        s[5, 0, 0] ^= True   # one wrong spike (time-major): step 5, sample 0, neuron 0
        return s, st

    monkeypatch.setattr(emu, "lif_dynamics", broken)
    with pytest.raises(CrossCheckError, match=r"layer dense1: sample 0, neuron \(0,\), step 5"):
        run_target(read_network(path), x, "emulator", cross_check=2, progress=False)


@pytest.mark.slow
def test_profile_cli_engines_agree(tmp_path, capsys):
    import json

    from lavasparse.cli import main

    net = make_net("1x8x8-c4k3-p2-12-10", steps=8)
    export_netx(net, tmp_path / "n.net")
    np.save(tmp_path / "x.npy", random_spikes((5, 1, 8, 8, 8), p=0.4, seed=3))
    for engine in ("lava", "emulator"):
        args = ["profile", str(tmp_path / "n.net"), "--input", str(tmp_path / "x.npy"),
                "--json", str(tmp_path / f"{engine}.json"), "--engine", engine]
        assert main(args + (["--cross-check", "2"] if engine == "emulator" else [])) == 0
    a, b = (json.loads((tmp_path / f"{e}.json").read_text()) for e in ("lava", "emulator"))
    assert a["engine"] == "lava" and b["engine"] == "emulator" and b["cross_checked_on_lava"] == 2
    assert a["layers"] == b["layers"]


@pytest.mark.slow
@pytest.mark.parametrize("name,shape", [("mnist.net", (784,)), ("tiny.net", (3, 16, 16))])
def test_emulator_on_lava_dl_files(name, shape):
    """Networks we did not write: lava-dl's own netx test files, inputs of
    both kinds (currents into an input neuron; spikes into a conv)."""
    from pathlib import Path

    import lava.lib.dl.slayer as slayer   # lava.lib.dl is a namespace package: no __file__

    path = Path(slayer.__file__).resolve().parents[4] / "tests" / "lava" / "lib" / "dl" / "netx" / name
    desc = read_network(path)
    assert tuple(desc.input_shape) == shape
    rng = np.random.default_rng(0)
    x = (rng.random((3, *shape, 12)) < 0.3).astype(np.int32)
    if desc.has_input_neuron:
        x = x * rng.integers(1, 200, x.shape)
    em = Emulator(desc).run(x, batch_size=2)
    lava = run_on_lava(read_network(path), x, progress=False)
    assert_same_spikes(lava.spikes, em.spikes, lava.layer_names, what=f"{name}: emulator against Lava")


def test_profile_and_deploy_take_lavas_layout(tmp_path, capsys):
    """--layout whc: the same spikes in Lava's (W, H, C) order give the same
    profile as in ours; a (W, H, C) array read as (C, H, W) is refused, with the hint."""
    import json

    from lavasparse.cli import main

    net = make_net("2x6x5-c4k3-10", steps=6)     # H != W and C > 1: every transposition shows
    export_netx(net, tmp_path / "n.net")
    x = random_spikes((3, 2, 6, 5, 6), p=0.4, seed=5)
    assert x.sum() > 0
    np.save(tmp_path / "chw.npy", x)
    np.save(tmp_path / "whc.npy", x.transpose(0, 3, 2, 1, 4))
    np.save(tmp_path / "whc1.npy", x[0].transpose(2, 1, 0, 3))       # one sample, no batch axis
    for name, layout in (("chw", "chw"), ("whc", "whc"), ("whc1", "whc")):
        assert main(["profile", str(tmp_path / "n.net"), "--input", str(tmp_path / f"{name}.npy"), "--layout", layout,
                     "--cross-check", "0", "--json", str(tmp_path / f"{name}.json")]) == 0
    a, b, one = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("chw", "whc", "whc1"))
    assert a["input_spikes"] > 0 and a["layers"][0]["spikes"] > 0     # something spiked: the comparison means something
    assert a["layers"] == b["layers"] and a["input_spikes"] == b["input_spikes"]
    assert one["samples"] == 1 and one["input_spikes"] == int(x[0].sum())
    capsys.readouterr()
    assert main(["profile", str(tmp_path / "n.net"), "--input", str(tmp_path / "whc.npy"), "--cross-check", "0"]) == 2
    assert "--layout whc" in capsys.readouterr().err


def _pilotnet_lif():
    from pathlib import Path

    import lava.lib.dl.slayer as slayer   # lava.lib.dl is a namespace package: no __file__

    return Path(slayer.__file__).resolve().parents[4] / "tests" / "lava" / "lib" / "dl" / "netx" / "gts" / "pilotnet_lif"


@pytest.mark.slow
def test_emulator_on_lava_dl_pilotnet_lif():
    """lava-dl's PilotNet LIF: stride-2 convs, a (2, 1) stride with (1, 0)
    padding, channel-wise biases, a flatten, then dense layers the file shapes
    (100, 1, 1), ... which netx builds flat. Its own input (W, H, C, T), times
    the input layer's 'weight' 40 (0/1 alone never reaches the input neuron's
    threshold): one sample of 16 steps, every spike as in Lava."""
    from lavasparse.deploy.lava_runner import load_input

    d = _pilotnet_lif()
    x = load_input(d / "input.npy", "whc")[..., :16][None].astype(np.int32) * 40
    desc = read_network(d / "network.net")
    em = Emulator(desc).run(x)
    lava = run_on_lava(read_network(d / "network.net"), x, progress=False)
    assert_same_spikes(lava.spikes, em.spikes, lava.layer_names, what="pilotnet_lif", spiking="hidden")


def test_emulator_matches_lava_dl_pilotnet_lif_ground_truth():
    """lava-dl ships Intel's record of PilotNet LIF driven by one image as the
    input neuron's bias (gts/pilotnet_lif: image.npy, and every layer's
    spikes, current u and voltage v over 24 steps, from the hardware test
    test_hdf5_nx.py). The image as a constant input current does the same to
    the input neuron (bias and a_in both enter shifted by 6): every layer's
    spikes and u equal the record, step by step, layer l's window being steps
    l..l+15; v too wherever the neuron did not spike (the record holds 128
    after a spike where Lava's model holds 0). An independent reference: it
    gives conv1 101,310 spikes and conv2 44,841, as we do."""
    d = _pilotnet_lif()
    if not (d / "image.npy").exists():
        pytest.fail(f"{d}: lava-dl's PilotNet record is missing (lava-dl's wheel ships it)")
    image = np.load(d / "image.npy")                       # (W, H, C) input bias
    steps = 16
    x = np.repeat(image.transpose(2, 1, 0)[None, ..., None], steps, -1).astype(np.int32)
    run = Emulator(read_network(d / "network.net")).run(x, record_states=True)
    # The output neuron's record (fc-3, float64 over 25 steps, reset at step 8)
    # comes from another kind of run: it lines up with neither Lava nor the
    # other records, so it is not compared.
    records = ["conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2"]
    assert len(run.spikes) == len(records) + 2             # + the input neuron, + the output neuron
    inp = np.load(d / "input-s.npy")                       # the input neuron's spikes
    assert np.array_equal(run.spikes[0][0], inp[..., :steps].transpose(2, 1, 0, 3))
    for l, name in enumerate(records, start=1):
        truth = [np.load(d / f"{name}{part}.npy") for part in ("", "-u", "-v")]
        ours = [a[l][0] for a in (run.spikes, run.currents, run.voltages)]
        if ours[0].ndim == 4:                              # (C, H, W, T) -> the record's (W, H, C, T)
            ours = [a.transpose(2, 1, 0, 3) for a in ours]
        truth = [a[..., l:l + steps] for a in truth]
        assert truth[0].shape == ours[0].shape, name
        assert truth[0].any(), f"{name}: no spike in the record's window"
        assert np.array_equal(truth[0].astype(bool), ours[0].astype(bool)), f"{name}: spikes differ"
        assert np.array_equal(truth[1], ours[1]), f"{name}: current u differs"
        quiet = ~ours[0].astype(bool)
        assert np.array_equal(truth[2][quiet], ours[2][quiet]), f"{name}: voltage v differs"


def test_conv_output_wraps_as_lava_does(tmp_path):
    """Lava's fixed-point Conv wraps its output to signed 24 bits
    (utils.signed_clamp is a modulo): a sum of 9 * 254 * 4000 = 9,144,000 is
    -7,633,216 there, not 2**23 - 1, and the neuron does not spike."""
    path = tmp_path / "wrap.net"
    with h5py.File(path, "w") as f:
        f["layer/0/type"] = np.array([b"input"])
        f["layer/0/shape"] = np.array([1, 3, 3])
        g = f.create_group("layer/1")
        g["type"] = np.array([b"conv"])
        g["shape"] = np.array([1, 1, 1])
        g["weight"] = np.full((1, 1, 3, 3), 254.0, np.float32)
        for k, v in (("stride", [1, 1]), ("padding", [0, 0]), ("dilation", [1, 1])):
            g[k] = np.array(v)
        g["groups"] = 1
        for k, v in (("type", "LOIHI"), ("iDecay", 4096), ("vDecay", 4096), ("vThMant", 1000), ("refDelay", 1)):
            g[f"neuron/{k}"] = v
    x = np.full((1, 1, 3, 3, 4), 4000, np.int32)
    em = Emulator(read_network(path), input_message_bits=16).run(x, record_states=True)
    lava = run_on_lava(read_network(path), x, progress=False, record_states=True, input_message_bits=16)
    assert em.spikes[0].sum() == 0 and np.array_equal(lava.spikes[0], em.spikes[0])
    assert np.array_equal(lava.currents[0], em.currents[0]) and np.array_equal(lava.voltages[0], em.voltages[0])


def test_profile_notes_an_input_transform_lava_does_not_apply(tmp_path, capsys):
    """lava-dl's PilotNet input (0/1) into its input neuron, whose layer asks
    for netx's transform (weight 40, bias 36): profile says so, and is silent
    once the input is scaled."""
    from lavasparse.cli import main

    d = _pilotnet_lif()
    desc = read_network(d / "network.net")
    assert desc.layers[0].input_transform == (40, 36)
    x = np.load(d / "input.npy")[..., :4].astype(np.int32)
    np.save(tmp_path / "in.npy", x)
    np.save(tmp_path / "scaled.npy", x * 40)
    args = ["profile", str(d / "network.net"), "--layout", "whc", "--cross-check", "0"]
    assert main(args + ["--input", str(tmp_path / "in.npy")]) == 0
    err = capsys.readouterr().err
    assert "weight 40, bias 36" in err and "Lava does not apply" in err
    assert main(args + ["--input", str(tmp_path / "scaled.npy")]) == 0
    assert "input transform" not in capsys.readouterr().err


@pytest.mark.slow
def test_emulator_on_lava_dl_ntidigits_without_its_average_layer(tmp_path):
    """lava-dl's NTIDIGITS net (input (1, 1, 64), dense layers with synaptic
    delays up to 62 and LOIHI neurons) with its last layer, an 'average' that
    netx 0.6.0 cannot build, removed: its own input (64, T), 120 steps, every
    spike as in Lava."""
    import shutil

    d = _pilotnet_lif().parent / "ntidigits"
    path = tmp_path / "ntidigits.net"
    shutil.copyfile(d / "ntidigits.net", path)
    with h5py.File(path, "a") as f:
        assert f["layer/5/type"][0] == b"average"
        del f["layer/5"]
    desc = read_network(path)
    assert desc.input_shape == (1, 1, 64) and max(int(l.delay.max()) for l in desc.layers if getattr(l, "delay", None) is not None) > 0
    x = np.load(d / "input.npy")[:, :120].astype(np.int32).reshape(1, 1, 1, 64, 120)
    em = Emulator(desc).run(x)
    lava = run_on_lava(read_network(path), x, progress=False)
    assert_same_spikes(lava.spikes, em.spikes, lava.layer_names, what="ntidigits", spiking="all")
