"""Training's cost terms against the profiler on the target: the synaptic ops
and dynamic energy that a network is trained to lower are the ones the
report measures. Also: the fan-out gate's gradient, the input codes through
export and the target, and pruning's export."""
import numpy as np
import pytest
import torch

from conftest import QUICK_LR, assert_same_spikes, make_net, random_spikes, slayer_spikes
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import read_network
from lavasparse.simulate.emulator import Emulator
from lavasparse.simulate.energy import default_profile
from lavasparse.simulate.profile import profile_run
from lavasparse.train.cost import _gate_gradient_torch, block_fanout, gate_gradient, inference_cost, nonzero_mask
from lavasparse.train.encode import InputCode, encode_images, latency_encode
from lavasparse.train.event_synapse import count_events
from lavasparse.train.prune import prune_to_density, surviving_density, synaptic_blocks
from lavasparse.layers.quantised import exported_weight


def _estimate_and_profile(net, x: np.ndarray, path):
    """(training-time InferenceCost, the profiler's figures from the emulator's spikes)."""
    desc = export_netx(net, path)
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        est = inference_cost(net, xt, net.windowed(net(xt), x.shape[-1]))
    run = Emulator(desc).run(x)
    ref = slayer_spikes(net, x)
    assert len(ref) == net.num_spiking_layers
    assert_same_spikes(ref, run.spikes, what="emulator against SLAYER", spiking="hidden")
    return est, profile_run(desc, x, run.spikes, default_profile())


@pytest.mark.parametrize("arch", ["64-48-32-10", "1x8x8-c4k3s2-p2-10", "1x10x10-c3k3p0-c4k3s2p1-12-10"])
def test_training_estimate_equals_the_profiler(arch, tmp_path):
    net = make_net(arch, weight_scale=3.0)
    # Prune part of the first layer so that zero weights (which cost nothing) are in play.
    with torch.no_grad():
        w = synaptic_blocks(net)[0].synapse.weight
        w.mul_((torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) > 0.4).float())
    x = random_spikes((6, *net.specs[0].in_shape, 10), p=0.4)
    est, prof = _estimate_and_profile(net, x, tmp_path / "n.net")
    n = x.shape[0]
    synops = [r.synops for r in prof.layers]
    assert len(synops) == est.synops.shape[1]
    assert sum(synops) > 0
    # exact, layer by layer (the issue asks for 1%)
    assert est.synops.sum(dim=0).round().long().tolist() == synops
    assert est.spikes.sum(dim=0).round().long().tolist() == [r.spikes for r in prof.layers]
    energy = default_profile().cost_weights()
    assert float(est.energy_nj(energy).sum()) / n == pytest.approx(1e9 * prof.per_sample.energy_dynamic_j, rel=1e-6)


def test_trained_network_estimate_equals_the_profiler(tmp_path):
    """A network trained a few epochs with the energy cost and pruning, on digits."""
    from lavasparse.train.data import load_dataset
    from lavasparse.train.trainer import TrainConfig, load_trained, train
    from lavasparse.train.model import NetConfig

    cfg = TrainConfig(name="e", net=NetConfig(arch="64-32-10", weight_scale=2.0), steps=8, epochs=3, batch_size=16,
                      train_limit=300, device="cpu", lr=QUICK_LR, encoding="latency", cost="energy", schedule="constant",
                      sigma0=1e-4, energy=default_profile().cost_weights(), prune_density=(0.5, 1.0))
    train(cfg, tmp_path / "run", progress=False)
    net, _ = load_trained(tmp_path / "run")
    _, test = load_dataset("digits")
    x = encode_images(test.images[:40], (64,), 8, seed=5, code=InputCode("latency")).numpy().astype(np.int8)
    est, prof = _estimate_and_profile(net, x, tmp_path / "t.net")
    measured = prof.per_sample.synops
    assert measured > 0
    assert float(est.total_synops.mean()) == pytest.approx(measured, rel=0.01)
    assert float(est.energy_nj(cfg.energy).mean()) == pytest.approx(1e9 * prof.per_sample.energy_dynamic_j, rel=0.01)
    # pruning reached the first layer's target in the file as in the model
    assert prof.layers[0].density == pytest.approx(surviving_density(synaptic_blocks(net)[0]))
    assert prof.layers[0].density <= 0.5 + 1e-9


def test_fanout_gate_gradient_pushes_small_weights_to_zero():
    net = make_net("16-8-4", weight_scale=2.0)
    block = net.blocks[0]
    fan = block_fanout(net.specs[0], block)
    with torch.no_grad():
        alive = (block.synapse.pre_hook_fx(block.synapse.weight) != 0).float()
    assert torch.equal(fan.detach(), alive.reshape(8, 16).sum(0))   # the value is the hard count
    fan.sum().backward()
    g, w = block.synapse.weight.grad, block.synapse.weight.detach()
    nonzero = w != 0
    assert nonzero.any() and (g[nonzero] != 0).all()
    assert (torch.sign(g[nonzero]) == torch.sign(w[nonzero])).all()   # descent shrinks |w|


def test_gate_gradient_is_tanhs_derivative_and_the_same_floats_on_every_path():
    # weights from 0 to 40 gate widths, both signs, and the zeros, for a 5-D conv weight and a dense one
    torch.manual_seed(3)
    width = 4 * 2.0 / 64
    for shape in [(50, 78), (6, 3, 3, 3, 1)]:
        w = torch.randn(shape) * 1.5
        w.view(-1)[:4] = torch.tensor([0.0, -0.0, 40 * width, -1e-30])
        row = torch.randn(1, *shape[1:])
        got = gate_gradient(w, row.expand(shape), width)
        wd, gd = w.double(), row.double().expand(shape)
        truth = gd / torch.cosh(wd.abs() / width) ** 2 / width * wd.sgn()   # sech^2: exact in float64
        assert got.shape == w.shape and got.dtype == torch.float32
        x = w.abs() / width
        assert (x > 9).any() and (x < 1).any() and (got[x > 9] != 0).any()   # the tail that 1 - tanh^2 loses
        assert torch.allclose(got.double(), truth, rtol=1e-6, atol=1e-36)   # atol: float32 subnormals
        # the compiled CPU passes give the torch chain's floats, for a broadcast row and a full gradient
        assert torch.equal(got, _gate_gradient_torch(w, row.expand(shape), width))
        full = torch.randn(shape)
        assert torch.equal(gate_gradient(w, full, width), _gate_gradient_torch(w, full, width))


def test_the_cost_terms_helpers_read_windows_and_remembered_weights():
    net = make_net("16-8-4", weight_scale=2.0)
    x = torch.as_tensor(random_spikes((3, 16, 7), p=0.4), dtype=torch.float32)
    spikes = net(x)
    assert len(spikes) == 2 and spikes[0].sum() > 0
    window = net.windowed(spikes, 7)[0].detach()     # a view of the neuron's time-major spikes
    assert not window.is_contiguous()
    assert torch.equal(count_events(window), torch.count_nonzero(window, dim=-1).float())
    for part in (window[:1], window[:0]):               # one sample, and none
        assert torch.equal(count_events(part), torch.count_nonzero(part, dim=-1).float())
    syn = net.blocks[0].synapse
    assert torch.equal(exported_weight(syn), syn.pre_hook_fx(syn.weight).detach())   # as the forward left it
    with torch.no_grad():
        syn.weight.mul_(3.0)                        # any in-place change: the remembered values are stale
    assert torch.equal(exported_weight(syn), syn.pre_hook_fx(syn.weight).detach())
    net(x)
    syn.weight.data = syn.weight.data * 0.25          # a new tensor under the parameter: not the one remembered
    assert torch.equal(exported_weight(syn), syn.pre_hook_fx(syn.weight).detach())
    q = exported_weight(syn)
    assert (q == 0).any() and (q != 0).any()
    assert torch.equal(nonzero_mask(q), (q != 0).float())


def test_latency_code():
    x = torch.tensor([[0.0, 0.05, 0.1, 0.2, 0.55, 1.0]])
    s = latency_encode(x, steps=8, seed=0, threshold=0.1, window=4)
    assert s.shape == (1, 6, 8)
    assert s.sum(-1).tolist() == [[0, 0, 0, 1, 1, 1]]                  # one spike above the threshold
    t = s.argmax(-1)[0]
    assert t[5] == 0 and t[3] >= t[4] >= t[5] and int(t.max()) < 4      # brighter earlier, in the window
    assert torch.equal(s, latency_encode(x, 8, 0, 0.1, 4))             # the same seed, the same code
    many = latency_encode(torch.full((4000,), 0.6), 8, seed=1, threshold=0.1, window=4).argmax(-1).float()
    assert set(many.unique().tolist()) == {1.0, 2.0}
    assert many.mean().item() == pytest.approx((1 - 0.6) / 0.9 * 4, abs=0.05)   # dithered rounding: unbiased


def test_latency_code_through_export_and_the_target(tmp_path):
    """Latency-coded digits on the emulator and on Lava: spike for spike SLAYER's."""
    from lavasparse.simulate.engines import run_target
    from lavasparse.train.data import load_dataset

    net = make_net("64-32-10", weight_scale=6.0)
    path = tmp_path / "n.net"
    export_netx(net, path)
    _, test = load_dataset("digits")
    x = encode_images(test.images[:6], (64,), 12, seed=3, code=InputCode("latency")).numpy().astype(np.int8)
    assert 0 < x.sum() <= x.shape[0] * 64           # at most one spike per pixel
    ref = slayer_spikes(net, x)
    run = run_target(read_network(path), x, engine="emulator", cross_check=3, progress=False)
    assert run.cross_checked == 3
    assert ref[0].sum() > 0
    assert_same_spikes(ref, run.spikes, what="target against SLAYER")


def test_pruned_network_exports_its_zeros(tmp_path):
    net = make_net("64-40-10", weight_scale=3.0)
    masks = prune_to_density(net, (0.3, 0.8))
    assert len(masks) == 2
    x = random_spikes((4, 64, 10), p=0.5)
    est, prof = _estimate_and_profile(net, x, tmp_path / "p.net")

    desc = read_network(tmp_path / "p.net")
    dens = [float((l.weight != 0).mean()) for l in desc.layers if l.weight is not None]
    assert dens[0] == pytest.approx(0.3, abs=1 / (64 * 40)) and dens[1] <= 0.8 + 1e-9
    assert [r.density for r in prof.layers if r.density is not None] == pytest.approx(dens)
    assert dens[0] == pytest.approx(surviving_density(synaptic_blocks(net)[0]))
