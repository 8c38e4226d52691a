"""The ISI-modulated synapse (IMSNN): its intervals, its forward pass and its
three backward rules against a naive float64 autograd reference of the
recursions in ``lavasparse/layers/isi_synapse.py``'s module doc."""
import numpy as np
import pytest
import torch

from lavasparse.defaults import ISI_RULES as RULES
from lavasparse.layers.isi_synapse import IsiDense, intervals, isi_dense, isi_table


def test_intervals_count_steps_since_the_previous_spike():
    s = torch.tensor([[[0, 1, 0, 0, 1, 1, 0, 0]]], dtype=torch.float32)
    phi, nxt = intervals(s)
    # a counter from the start (first spike at step 1 sees 2), reset by each spike
    assert phi.tolist() == [[[1, 2, 1, 2, 3, 1, 1, 2]]]
    # the next spike strictly after t; 8 (= T) when there is none
    assert nxt.tolist() == [[[1, 4, 4, 4, 5, 8, 8, 8]]]


def _reference(spikes, weight, mu, width):
    """z[b, j, t] and each step's phi, by the recursions, one step at a time,
    differentiable in spikes and weight (float64)."""
    batch, n, steps = spikes.shape
    last = torch.full((batch, n), -1.0, dtype=spikes.dtype) + 0 * spikes[..., 0]   # in the graph from step 0
    outputs, phis = [], []
    for t in range(steps):
        phi = t - last
        gain = torch.exp(-(phi - mu) ** 2 / (2 * width ** 2))
        outputs.append((spikes[..., t] * gain) @ weight.T)
        phis.append(phi)
        last = last + spikes[..., t] * (t - last)
    return torch.stack(outputs, dim=-1), phis


def _case(seed, batch=3, n_in=7, n_out=5, steps=23, rate=0.3):
    g = torch.Generator().manual_seed(seed)
    spikes = (torch.rand(batch, n_in, steps, generator=g) < rate).double()
    weight = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    mu = torch.rand(n_in, generator=g, dtype=torch.float64) * 8
    width = 1 + torch.rand(n_in, generator=g, dtype=torch.float64) * 4
    upstream = torch.randn(batch, n_out, steps, generator=g, dtype=torch.float64)
    return spikes, weight, mu, width, upstream


def _ours(spikes, weight, mu, width, upstream, rule):
    s, w = spikes.clone().requires_grad_(), weight.clone().requires_grad_()
    table, slope = isi_table(mu, width, spikes.shape[-1])
    z = isi_dense(s, w, table, slope, rule)
    (z * upstream).sum().backward()
    return z.detach(), s.grad, w.grad


def _expected(spikes, weight, mu, width, upstream, rule):
    """The rule's gradients built from autograd's pieces: dL/dphi at each
    step (autograd), masked by the rule, sent back through the interval
    recursion (autograd), plus the direct part (the plain gradient minus its
    own ISI part)."""
    s, w = spikes.clone().requires_grad_(), weight.clone().requires_grad_()
    z, phis = _reference(s, w, mu, width)
    loss = (z * upstream).sum()
    grad_phis = torch.autograd.grad(loss, phis, retain_graph=True)
    plain_s, plain_w = torch.autograd.grad(loss, (s, w), retain_graph=True)
    kept = {"bptt": lambda g: g, "imsnn": lambda g: g.clamp(max=0), "imsnnc": lambda g: g.clamp(min=0)}[rule]

    def through_intervals(grads):
        return torch.autograd.grad(phis, s, grad_outputs=list(grads), retain_graph=True, allow_unused=True)[0]

    isi_all = through_intervals(grad_phis)
    isi_kept = through_intervals(kept(g) for g in grad_phis)
    return z.detach(), plain_s - isi_all + isi_kept, plain_w, isi_all


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_and_plain_gradient_equal_autograd_of_the_recursions(seed):
    spikes, weight, mu, width, upstream = _case(seed)
    z, gs, gw = _ours(spikes, weight, mu, width, upstream, "bptt")
    s, w = spikes.clone().requires_grad_(), weight.clone().requires_grad_()
    z_ref, _ = _reference(s, w, mu, width)
    (z_ref * upstream).sum().backward()
    assert spikes.sum() > 10 and z.abs().sum() > 0
    torch.testing.assert_close(z, z_ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gs, s.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, w.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("seed", [0, 3])
def test_each_rule_equals_its_masked_autograd_gradient(rule, seed):
    spikes, weight, mu, width, upstream = _case(seed)
    z, gs, gw = _ours(spikes, weight, mu, width, upstream, rule)
    z_ref, gs_ref, gw_ref, isi_all = _expected(spikes, weight, mu, width, upstream, rule)
    assert isi_all.abs().sum() > 0, "the case must have an ISI part for the rule to act on"
    torch.testing.assert_close(z, z_ref)
    torch.testing.assert_close(gs, gs_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, gw_ref, rtol=1e-12, atol=1e-12)


def test_the_rules_split_the_isi_part_between_them():
    """imsnn and imsnnc keep complementary halves: their ISI parts add up to
    the plain one, and each differs from it."""
    spikes, weight, mu, width, upstream = _case(5)
    _, plain, _ = _ours(spikes, weight, mu, width, upstream, "bptt")
    _, lower, _ = _ours(spikes, weight, mu, width, upstream, "imsnn")
    _, upper, _ = _ours(spikes, weight, mu, width, upstream, "imsnnc")
    _, _, _, isi_all = _expected(spikes, weight, mu, width, upstream, "bptt")
    direct = plain - isi_all
    torch.testing.assert_close((lower - direct) + (upper - direct), isi_all, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(lower, plain) and not torch.allclose(upper, plain)


def test_the_float_synapse_applies_its_weight_hook_and_keeps_mu_and_width():
    torch.manual_seed(0)
    quantise = lambda w: torch.round(w * 32) / 32   # noqa: E731 - a stand-in for SLAYER's 8-bit hook
    syn = IsiDense(6, 4, mu=torch.full((6,), 3.0), width=torch.full((6,), 2.0), rule="imsnn",
                   weight_scale=2, pre_hook_fx=quantise)
    x = (torch.rand(2, 6, 12) < 0.4).float()
    table, slope = isi_table(syn.mu, syn.width, 12)
    expected = isi_dense(x, quantise(syn.weight).reshape(4, 6), table, slope, "imsnn")
    torch.testing.assert_close(syn(x), expected)
    assert {"mu", "width", "weight"} <= set(syn.state_dict())
    with pytest.raises(ValueError, match="rule"):
        IsiDense(6, 4, torch.ones(6), torch.ones(6), rule="other")
    with pytest.raises(ValueError, match="one value per input neuron"):
        IsiDense(6, 4, torch.ones(5), torch.ones(6), rule="bptt")


def _train_isi(tmp_path, rule):
    from lavasparse.layers import IsiConfig
    from lavasparse.train.model import NetConfig
    from lavasparse.train.trainer import TrainConfig, train
    cfg = TrainConfig(name=rule, net=NetConfig(arch="64-64i-10i", isi=IsiConfig(rule=rule)), steps=16, max_rate=1.0,
                      epochs=1, batch_size=16, train_limit=300, device="cpu", lr=1e-2)
    return train(cfg, tmp_path / rule, progress=False), cfg


def test_the_rule_sets_which_way_hidden_spikes_go(tmp_path):
    """The paper's claim in miniature (its Table 2): one epoch on 300 digits,
    the same start, hidden spikes per validation sample: the IMSNN rule
    well under the plain gradient, the ablation well over it."""
    spikes = {rule: _train_isi(tmp_path, rule)[0]["val_hidden_spikes"] for rule in RULES}
    assert spikes["bptt"] > 0
    # measured here: 36 / 131 / 287; the margins leave room for other machines' arithmetic
    assert spikes["imsnn"] < spikes["bptt"] / 2 and spikes["imsnnc"] > 1.5 * spikes["bptt"], spikes


def test_an_isi_network_is_saved_exported_and_runs_identically_in_torch_the_emulator_and_lava(tmp_path):
    """Issue 14's deployment: the trained network, its netx file (isi_dense
    layers: gates + a dense synapse of heights), the emulator and Lava's
    process simulator (our IsiGate process) give the same spikes."""
    import h5py

    from lavasparse.pipeline import RunSettings
    from lavasparse.simulate.evaluate import evaluate_on_target
    from lavasparse.train.trainer import load_trained
    best, cfg = _train_isi(tmp_path, "imsnn")
    assert best["val_accuracy"] > 0.3   # ten classes: chance is 0.1
    model, loaded_cfg = load_trained(tmp_path / "imsnn")
    assert loaded_cfg == cfg and model.layer_names == ["isi1", "isi2"]
    saved = torch.load(tmp_path / "imsnn" / "best.pt")["model"]
    for i, block in enumerate(model.blocks):
        torch.testing.assert_close(block.synapse.mu, saved[f"blocks.{i}.synapse.mu"])
    x, labels = RunSettings(steps=16, max_rate=1.0, test_limit=24, test_draws=1).test_input()
    ev = evaluate_on_target(tmp_path / "imsnn", x, labels, engine="emulator", cross_check=6, progress=False)
    spikes = ev.profile.layers
    assert len(spikes) == 2 and spikes[0].spikes > 0 and spikes[1].spikes > 0   # something spiked in each layer
    assert ev.agreement.identical_spikes and ev.agreement.cross_checked_on_lava == 6
    assert ev.accuracy_target == ev.accuracy_float
    assert "isi1, isi2" in ev.profile.notes[0] and "estimate" in ev.profile.notes[0]
    with h5py.File(ev.network, "r") as f:
        assert [f[f"layer/{i}/type"][0] for i in (1, 2)] == [b"isi_dense", b"isi_dense"]
        # the second layer's gates start one step on: training counts from the network's first step
        assert [int(f[f"layer/{i}/isi/counter_start"][()]) for i in (1, 2)] == [0, 1]
        payload = f["layer/1/isi/payload"][()]
        assert payload.shape[0] == 64 and payload.max() == 64


def test_isi_synaptic_ops_count_payloads_that_are_sent():
    """A spike whose G rounds to 0 sends nothing, and costs nothing."""
    from lavasparse.layers import IsiDenseLayer
    from lavasparse.layers.isi_gate import gate_payloads
    layer = IsiDenseLayer(1, (3,), (2,), weight=np.array([[2, 0], [4, 6], [0, 0]]),
                          payload=np.array([[0, 5, 0], [0, 0, 7]]), counter_start=0)
    spikes = np.zeros((1, 2, 6), np.int8)
    spikes[0, 0, [0, 1, 3]] = 1    # intervals 1, 1, 2: payloads 5, 5, 0
    spikes[0, 1, [1, 5]] = 1       # intervals 2, 4: payloads 7, 0
    sent = gate_payloads(torch.as_tensor(spikes), torch.as_tensor(layer.payload)).numpy()
    assert sent[0, 0].tolist() == [5, 5, 0, 0, 0, 0] and sent[0, 1].tolist() == [0, 7, 0, 0, 0, 0]
    # fan-out: input 0 reaches 2 neurons, input 1 one; 2 payloads from input 0, 1 from input 1
    assert layer.synaptic_ops(spikes, np.zeros((1, 3, 6))) == 2 * 2 + 1 * 1
    # counting on from counter_start before the first spike: input 1's first spike sees 2 + 1 = 3 (past K: 0)
    late = gate_payloads(torch.as_tensor(spikes), torch.as_tensor(layer.payload), counter_start=1).numpy()
    assert late[0, 0].tolist() == [0, 5, 0, 0, 0, 0] and late[0, 1].tolist() == [0, 0, 0, 0, 0, 0]
    # a count past the table sends 0 for first spikes; later intervals count from the spike
    far = gate_payloads(torch.as_tensor(spikes), torch.as_tensor(layer.payload), counter_start=40).numpy()
    assert far[0, 0].tolist() == [0, 5, 0, 0, 0, 0] and not far[0, 1].any()


def test_the_reader_refuses_a_bad_isi_group_naming_the_field(tmp_path):
    import h5py

    from lavasparse.export.netx_format import read_network
    from lavasparse.layers import NetFileError

    def write(path, payload, start=0):
        with h5py.File(path, "w") as f:
            f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
            f.create_dataset("layer/0/shape", data=np.array([2]))
            g = f.create_group("layer/1")
            g.create_dataset("type", (1,), "S10", [b"isi_dense"])
            g.create_dataset("shape", data=np.array([3]))
            g.create_dataset("weight", data=np.ones((3, 2)) * 2)
            g.create_dataset("isi/payload", data=payload)
            g.create_dataset("isi/payload_fraction_bits", data=6)
            g.create_dataset("isi/counter_start", data=start)
        return path

    desc = read_network(write(tmp_path / "ok.net", np.array([[0, 64], [0, 3]])))
    assert desc.spiking_layers[0].name == "isi1" and desc.spiking_layers[0].payload_bits == 7
    with pytest.raises(NetFileError, match=r"bad1.net: layer/1/isi/payload: shape \(3, 2\)"):
        read_network(write(tmp_path / "bad1.net", np.zeros((3, 2))))
    with pytest.raises(NetFileError, match="bad2.net: layer/1/isi/payload"):
        read_network(write(tmp_path / "bad2.net", np.array([[0, -1], [0, 3]])))
    with pytest.raises(NetFileError, match="bad3.net: layer/1/isi/counter_start"):
        read_network(write(tmp_path / "bad3.net", np.array([[0, 1], [0, 3]]), start=-2))


def test_check_counts_the_gates_memory_with_the_layers(tmp_path):
    """A counter up to K + 1 per input neuron and K + 1 payloads per row, in
    the layer's memory and its core count (``deploy/resources.py``)."""
    import dataclasses

    import h5py

    from lavasparse.deploy.loihi2 import LOIHI2
    from lavasparse.deploy.resources import check_network, format_report
    from lavasparse.export.netx_format import read_network
    n_in, n_out, entries = 40, 3, 12
    path = tmp_path / "isi.net"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f.create_dataset("layer/0/shape", data=np.array([n_in]))
        g = f.create_group("layer/1")
        g.create_dataset("type", (1,), "S10", [b"isi_dense"])
        g.create_dataset("shape", data=np.array([n_out]))
        g.create_dataset("weight", data=np.ones((n_out, n_in)) * 2)
        g.create_dataset("isi/payload", data=np.full((n_in, entries), 100))   # 7 bits each
        g.create_dataset("isi/payload_fraction_bits", data=6)
        g.create_dataset("isi/counter_start", data=0)
    desc = read_network(path)
    gates = n_in * 4 + n_in * entries * 7   # 12 entries: counters up to 12 take 4 bits
    report = check_network(desc)
    (use,) = report.layers
    assert use.gate_memory_bits == gates
    synapses_only = desc.spiking_layers[0].chip_use(LOIHI2, lambda *a: None).memory_bits
    assert synapses_only > 0 and use.memory_bits == synapses_only + gates and use.cores == 1
    assert report.totals["memory_bits"] == use.memory_bits
    assert f"{gates} bits of ISI gates" in format_report(report)
    # a core too small for synapses and gates together takes two
    small = dataclasses.replace(LOIHI2, synaptic_memory_bits_per_core=dataclasses.replace(
        LOIHI2.synaptic_memory_bits_per_core, value=synapses_only + gates - 1))
    (use,) = check_network(desc, small).layers
    assert use.cores == 2 and use.cores_by == "synaptic memory"


def test_synapse_isi_makes_every_dense_and_conv_layer_isi_modulated():
    from lavasparse.layers import isi_arch
    from lavasparse.pipeline import RunSettings
    assert isi_arch("784-500-500-10") == "784-500i-500i-10i"
    assert isi_arch("1x8x8-c16k3-p2-64-10") == "1x8x8-c16k3i-p2-64i-10i"
    net = RunSettings(synapse="isi", isi_rule="imsnnc").net_config()
    assert net.arch == "64-128i-128i-10i" and net.isi.rule == "imsnnc"
    assert RunSettings().net_config().arch == "64-128-128-10"
    with pytest.raises(ValueError, match="unknown synapse"):
        RunSettings(synapse="other")


def test_compiled_and_torch_intervals_agree(monkeypatch):
    pytest.importorskip("numba")   # where it is missing (the GPU machines) both sides are torch's
    import lavasparse.layers.isi_gate as isi_gate
    s = (torch.rand(4, 9, 40, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    compiled = intervals(s)
    monkeypatch.setattr(isi_gate, "numba", None)
    plain = isi_gate.intervals(s)
    assert s.sum() > 20 and len(compiled) == len(plain) == 2
    for a, b in zip(compiled, plain):
        assert torch.equal(a, b)


def test_the_quantised_forward_is_the_targets_integer_arithmetic():
    """As built for training (SLAYER's 8-bit heights, payloads in 64ths): z * 64
    equals floor(h_file . P / 2^6) in int64, h_file = 64 h (the file's
    weights), P = round(G * 2^6) the graded payload; and gradients still flow."""

    from lavasparse.layers import IsiDenseSpec
    from lavasparse.train.model import NetConfig, NeuronConfig
    torch.manual_seed(3)
    spec = IsiDenseSpec((40,), (90,))
    block = spec.slayer_block(NeuronConfig().slayer_params(), NetConfig(arch="90-40i"))
    syn = block.synapse
    with torch.no_grad():
        syn.weight.mul_(8)   # heights of a few units, so that sums span many integers of both signs
    x = (torch.rand(5, 90, 30) < 0.3).float()
    z = syn(x)
    h_file = np.rint(syn._pre_hook_fx(syn.weight).detach().reshape(40, 90).numpy() * 64).astype(np.int64)
    table, _ = isi_table(syn.mu.double(), syn.width.double(), 30)
    payload_table = np.rint(table.numpy() * 64).astype(np.int64)
    phi, _ = intervals(x)
    payload = np.take_along_axis(payload_table[None].repeat(5, 0), phi.numpy(), axis=2) * x.numpy().astype(np.int64)
    expected = np.floor_divide(np.einsum("ji,bit->bjt", h_file, payload), 64)
    assert np.abs(expected).max() > 20 and (expected < 0).any() and (expected % 64 != 0).any()
    np.testing.assert_array_equal((z.detach().double() * 64).numpy(), expected)
    z.sum().backward()
    assert syn.weight.grad.abs().sum() > 0


def test_fine_tuning_takes_the_isi_rule_and_refuses_a_synapse_the_weights_do_not_have():
    from lavasparse.cli import build_parser
    from lavasparse.commands.train import _with_net_flags
    from lavasparse.train.model import NetConfig
    isi_net, dense_net = NetConfig(arch="64-32i-10i"), NetConfig(arch="64-32-10")

    def flags(synapse=None, rule=None, readout=None):   # as the command line reads them
        given = {"--synapse": synapse, "--isi-rule": rule, "--readout": readout}
        return build_parser().parse_args(["train", "--out", "o", "--init-from", "R",
                                          *[a for k, v in given.items() if v for a in (k, v)]])
    assert _with_net_flags(isi_net, flags(rule="imsnnc")).isi.rule == "imsnnc"
    assert _with_net_flags(isi_net, flags()) is isi_net
    assert _with_net_flags(isi_net, flags(readout="potential")).readout == "potential"   # the same weights
    with pytest.raises(ValueError, match="--synapse cuba but --init-from R is a 64-32i-10i network"):
        _with_net_flags(isi_net, flags(synapse="cuba"))
    with pytest.raises(ValueError, match="has no ISI layers"):
        _with_net_flags(dense_net, flags(rule="bptt"))
    conv_net = NetConfig(arch="1x8x8-c4k3i-10")   # an ISI conv is an ISI layer too
    assert _with_net_flags(conv_net, flags(synapse="isi", rule="bptt")).isi.rule == "bptt"


def test_the_conv_synapse_is_the_dense_one_on_the_convs_matrix():
    """An ISI conv (mu and w per input channel) equals the ISI dense synapse
    on the conv's unrolled matrix, each neuron with its channel's Gaussian:
    forward, and the gradient each rule sends to the spikes (float64)."""
    from lavasparse.layers.isi_synapse import IsiConv
    g = torch.Generator().manual_seed(3)
    c, h, w, steps = 2, 5, 5, 14
    syn = IsiConv(c, 3, 3, 1, 1, mu=torch.tensor([2.0, 6.0]), width=torch.tensor([1.5, 3.0]), rule="imsnn").double()
    basis = torch.eye(c * h * w, dtype=torch.float64).reshape(-1, c, h, w, 1)
    with torch.no_grad():
        matrix = torch.nn.functional.conv3d(basis, syn.weight, None, syn.stride, syn.padding).reshape(c * h * w, -1).T
    spikes = (torch.rand(2, c, h, w, steps, generator=g) < 0.3).double()
    upstream = torch.randn(2, 3 * h * w, steps, generator=g, dtype=torch.float64)
    table, slope = isi_table(syn.mu.double().repeat_interleave(h * w), syn.width.double().repeat_interleave(h * w),
                             steps)
    for rule in RULES:
        syn.rule = rule
        s1, s2 = spikes.clone().requires_grad_(), spikes.reshape(2, -1, steps).clone().requires_grad_()
        z_conv = syn(s1).reshape(2, -1, steps)
        z_dense = isi_dense(s2, matrix, table, slope, rule)
        torch.testing.assert_close(z_conv, z_dense, rtol=1e-12, atol=1e-12)
        (z_conv * upstream).sum().backward()
        (z_dense * upstream).sum().backward()
        assert s2.grad.abs().sum() > 0
        torch.testing.assert_close(s1.grad.reshape(s2.grad.shape), s2.grad, rtol=1e-12, atol=1e-12)


def test_an_isi_conv_network_runs_identically_in_torch_the_emulator_and_lava(tmp_path):
    import h5py

    from lavasparse.layers import IsiConfig
    from lavasparse.pipeline import RunSettings
    from lavasparse.simulate.evaluate import evaluate_on_target
    from lavasparse.train.model import NetConfig
    from lavasparse.train.trainer import TrainConfig, train
    # an ISI conv after a plain one: four input channels, each with its own Gaussian, gates starting at 1
    arch = "1x8x8-c4k3-c4k3i-16i-10i"
    cfg = TrainConfig(name="conv", net=NetConfig(arch=arch, isi=IsiConfig(rule="imsnn")), steps=16,
                      max_rate=1.0, epochs=1, batch_size=16, train_limit=300, device="cpu", lr=1e-2)
    train(cfg, tmp_path / "conv", progress=False)
    x, labels = RunSettings(steps=16, max_rate=1.0, test_limit=16, test_draws=1, arch=arch).test_input()
    ev = evaluate_on_target(tmp_path / "conv", x, labels, engine="emulator", cross_check=4, progress=False)
    assert [l.name for l in ev.profile.layers] == ["conv1", "isi_conv2", "isi4", "isi5"]
    assert all(l.spikes > 0 for l in ev.profile.layers)
    assert ev.agreement.identical_spikes and ev.agreement.cross_checked_on_lava == 4
    with h5py.File(ev.network, "r") as f:
        assert f["layer/2/type"][0] == b"isi_conv" and int(f["layer/2/isi/counter_start"][()]) == 1
        payload = f["layer/2/isi/payload"][()]
        assert payload.shape[0] == 4 and len({tuple(row) for row in payload}) == 4   # a row per channel, all differ
