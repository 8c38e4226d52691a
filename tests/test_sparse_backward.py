"""The sparse backward (train/sparse_backward.py, SSGD on SLAYER CUBA blocks):
with a band that holds every neuron it is SLAYER's gradient; with a band, the
dense gradient of the surrogate truncated to it; the forward is SLAYER's."""
from __future__ import annotations

import math

import pytest
import torch

import lavasparse.train.sparse_backward as sb
from lavasparse.train.model import NetConfig, SpikingNet
from lavasparse.train.sparse_backward import SparseCuba

CASES = {"dense": ("20-30-10", (20,)), "conv": ("2x9x9-c4k3s2p1-10", (2, 9, 9))}


class _TruncatedSpike(torch.autograd.Function):
    """SLAYER's spike with its surrogate set to 0 outside the band: the dense reference."""

    @staticmethod
    def forward(ctx, voltage, block, band):
        theta = float(block.neuron.threshold + block.neuron.threshold_eps)
        ctx.save_for_backward(voltage)
        ctx.block, ctx.theta, ctx.band = block, theta, band
        return (voltage >= theta).to(voltage.dtype)

    @staticmethod
    def backward(ctx, grad):
        (voltage,) = ctx.saved_tensors
        distance = (voltage - ctx.theta).abs()
        rho = SparseCuba(ctx.block, ctx.band).surrogate(distance)
        return grad * rho * (distance < ctx.band * ctx.theta), None, None


def _block(kind: str, seed: int):
    arch, shape = CASES[kind]
    torch.manual_seed(seed)
    net = SpikingNet(NetConfig(arch=arch, weight_scale=2.0)).double()
    block = net.blocks[0]
    with torch.no_grad():
        block.synapse.weight.mul_(4)   # enough drive that the layer spikes often
    x = (torch.rand(3, *shape, 30, dtype=torch.float64) < 0.3).double()
    return block, x


def _gradients(block, x, upstream, spikes_of):
    block.synapse.weight.grad = None
    x = x.clone().requires_grad_(True)
    s = spikes_of(x)
    (s * upstream).sum().backward()
    return s.detach(), block.synapse.weight.grad.clone(), x.grad.clone()


def _slayer(block, band=None):
    def spikes_of(x):
        z = block.synapse(x)
        if band is None:
            return block.neuron(z)   # SLAYER's own forward and backward
        return _TruncatedSpike.apply(block.neuron.dynamics(z)[1], block, band)
    return spikes_of


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_a_band_holding_every_neuron_gives_slayers_gradient(kind, seed):
    block, x = _block(kind, seed)
    upstream = torch.randn_like(_slayer(block)(x))
    s_ref, gw_ref, gx_ref = _gradients(block, x, upstream, _slayer(block))
    sparse = SparseCuba(block, band=math.inf)
    s, gw, gx = _gradients(block, x, upstream, sparse.spikes)
    assert s.sum() > 0 and torch.equal(s, s_ref)
    assert sparse.record.take() == 1.0
    torch.testing.assert_close(gw, gw_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("band", [0.1, 0.5])
def test_a_band_gives_the_dense_gradient_of_the_truncated_surrogate(kind, band):
    block, x = _block(kind, 2)
    upstream = torch.randn_like(_slayer(block)(x))
    s_ref, gw_ref, gx_ref = _gradients(block, x, upstream, _slayer(block, band))
    sparse = SparseCuba(block, band)
    s, gw, gx = _gradients(block, x, upstream, sparse.spikes)
    active = sparse.record.take()
    assert s.sum() > 0 and torch.equal(s, s_ref)
    assert 0.0 < active < 0.9, active   # the band leaves neurons out, and keeps some
    torch.testing.assert_close(gw, gw_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-10, atol=1e-10)
    _, gw_full, _ = _gradients(block, x, upstream, _slayer(block))
    assert not torch.allclose(gw, gw_full, rtol=1e-3, atol=1e-6)   # the truncation is not a no-op


@pytest.mark.parametrize("kind", list(CASES))
def test_the_torch_path_equals_the_compiled_one(kind, monkeypatch):
    """Without numba (and on a GPU): torch's sparse products and kappa's Toeplitz matrix."""
    pytest.importorskip("numba", reason="the compiled path needs numba: without it both sides are torch's")
    block, x = _block(kind, 3)
    upstream = torch.randn_like(_slayer(block)(x))
    compiled = _gradients(block, x, upstream, SparseCuba(block, 0.5).spikes)
    monkeypatch.setattr(sb, "numba", None)
    plain = _gradients(block, x, upstream, SparseCuba(block, 0.5).spikes)
    for a, b in zip(compiled, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_chunks_of_the_products_add_up(monkeypatch):
    block, x = _block("conv", 4)
    upstream = torch.randn_like(_slayer(block)(x))
    whole = _gradients(block, x, upstream, SparseCuba(block, 0.5).spikes)
    monkeypatch.setattr(sb, "_CHUNK_ENTRIES", 500)   # a few images per chunk
    chunked = _gradients(block, x, upstream, SparseCuba(block, 0.5).spikes)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_a_network_trains_with_the_same_spikes_and_near_gradients_in_float32():
    """The whole net in float32, as training runs it: a band holding every
    neuron keeps SLAYER's spikes and its gradients to float32 rounding over
    three Adam steps; layers that cannot take the sparse backward (a pool)
    keep SLAYER's."""
    arch = "1x8x8-c4k3-p2-16-10"
    torch.manual_seed(5)
    x = (torch.rand(4, 1, 8, 8, 16) < 0.3).float()
    nets = [SpikingNet(NetConfig(arch=arch, backward=b, active_band=1e9)) for b in ("dense", "sparse")]
    nets[1].load_state_dict(nets[0].state_dict())
    assert [s is not None for s in nets[1].sparse] == [True, False, False, True, False]   # not the output layer
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2) for n in nets]
    for _ in range(3):
        outs = []
        for net, opt in zip(nets, opts):
            out = net(x)
            loss = sum((o * torch.linspace(0, 1, o.shape[-1])).sum() for o in out)
            opt.zero_grad()
            loss.backward()
            outs.append((out, [p.grad.clone() for p in net.parameters() if p.grad is not None]))
            opt.step()
        (out_d, g_d), (out_s, g_s) = outs
        assert len(out_d) == len(out_s) == 4 and all(o.sum() > 0 for o in out_d[:1])
        assert all(torch.equal(a, b) for a, b in zip(out_d, out_s))
        assert len(g_d) == len(g_s)
        for a, b in zip(g_d, g_s):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert all(f == 1.0 for f in nets[1].active_fractions() if f is not None)


def test_training_records_each_layers_active_fraction_and_gradient_cosine(tmp_path):
    """``--backward sparse`` trains, and metrics.jsonl says per layer how much
    of the network the band held and how far its gradient was from SLAYER's;
    the output layer keeps SLAYER's backward (None)."""
    import json

    from lavasparse.pipeline import RunSettings
    from lavasparse.train.trainer import train
    settings = RunSettings(backward="sparse", active_band=0.5, tau_grad=0.02, epochs=2, train_limit=300, steps=16)
    net = settings.net_config()
    assert (net.backward, net.active_band, net.neuron.tau_grad) == ("sparse", 0.5, 0.02)
    cfg = settings.train_config("sparse", "baseline", 0.0)
    best = train(cfg, tmp_path / "run", progress=False)
    assert best["val_accuracy"] > 0.3   # it learns: ten classes, chance is 0.1
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        active, cosine = r["active_fraction"], r["gradient_cosine"]
        assert len(active) == len(cosine) == 3 and active[-1] is None and cosine[-1] is None
        assert all(0 < a < 0.5 for a in active[:-1]), active
        assert all(0 < c <= 1 for c in cosine[:-1]), cosine
    with pytest.raises(ValueError, match="unknown backward"):
        RunSettings(backward="fast")
    # a band means nothing to SLAYER's backward: two dense runs never differ by it (resuming compares configs)
    assert RunSettings(active_band=0.3).net_config() == RunSettings(active_band=2.0).net_config()
    assert RunSettings(active_band=0.3).net_config().active_band is None


def test_fine_tuning_takes_the_backward_flags():
    """``train --init-from RUN --backward sparse``: the source run's network
    with the sparse backward, its band and surrogate width (an imported
    network's layers each take the width)."""
    from lavasparse.cli import build_parser
    from lavasparse.commands.train import _with_net_flags
    from lavasparse.train.model import NeuronConfig
    source = NetConfig(arch="64-32-10", layer_neurons=(NeuronConfig(threshold=1.0), NeuronConfig(threshold=2.0)))
    flags = lambda *given: build_parser().parse_args(["train", "--out", "o", "--init-from", "RUN", *given])  # noqa: E731
    net = _with_net_flags(source, flags("--backward", "sparse", "--active-band", "0.3", "--tau-grad", "0.01"))
    assert (net.backward, net.active_band, net.neuron.tau_grad) == ("sparse", 0.3, 0.01)
    assert [(n.threshold, n.tau_grad) for n in net.layer_neurons] == [(1.0, 0.01), (2.0, 0.01)]
    assert _with_net_flags(source, flags()) == source
