"""The compiled CPU path (train/cuba_cpu.py, train/event_synapse.py) against
SLAYER's own Python loop and ops: the neuron's states, spikes and gradients
bit for bit, the event synapse's values bit for bit and gradients to float32
rounding, and the same spikes over a few training steps."""
import pytest
import torch

from lavasparse.train import cuba_cpu
from lavasparse.train.model import NetConfig, SpikingNet


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("decays", [(0, 0), (1, 4095), (1024, 128), (4095, 1), (4096, 4096), (410, 205)])
def test_neuron_voltage_spikes_and_gradients_are_slayers_bit_for_bit(decays, time_major):
    """One compiled pass forward (current, voltage, reset, spike) and one
    backward (SLAYER's surrogate, both integrators) against SLAYER's own CUBA
    neuron and its Python loop, on signed inputs over a wide range."""
    from lava.lib.dl.slayer.neuron import cuba

    torch.manual_seed(decays[0])
    neuron = cuba.Neuron(threshold=1.25, current_decay=decays[0] / 4096, voltage_decay=decays[1] / 4096,
                         tau_grad=0.5, scale_grad=2.0, requires_grad=False)
    # 36,400 entries: more than one thread's share of torch's exp, whose chunk ends fall elsewhere time-major
    x = torch.randn(4, 70, 130) * torch.logspace(-3, 1, 130)
    if time_major:   # as a dense synapse hands it over: (N, M, T) values in (N, T, M) memory
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    x = x.requires_grad_()
    x_ref = x.detach().contiguous().requires_grad_()
    ref = neuron(x_ref)   # sizes the neuron
    assert cuba_cpu._fast_path_applies(neuron, x)
    ours = cuba_cpu.cuba_neuron_forward(neuron, x)
    assert ours.shape == ref.shape and ref.sum() > 0 and (ref == 0).any()
    assert torch.equal(ours, ref)
    voltage = neuron.dynamics(x_ref.detach())[1]
    assert torch.equal(cuba_cpu.neuron_voltage(neuron, x.detach()), voltage)
    assert (voltage >= 1.25).any()   # the reset acted: some state crossed and restarted from zero
    grad = torch.randn_like(ours)
    ours.backward(grad)
    ref.backward(grad)
    assert x.grad.abs().sum() > 0
    assert torch.equal(x.grad, x_ref.grad)


@pytest.mark.parametrize("arch,steps", [("64-48-10", 16), ("1x8x8-c4k3-p2-32-10", 12)])
def test_network_spikes_gradients_and_training_agree(arch, steps, monkeypatch):
    """Two copies of one network, SLAYER's loop and the compiled path (its
    dense synapses event-driven): at each of three Adam steps the same spikes
    per layer, bit for bit, and the same gradients, bit for bit except the
    event-driven weight gradients (the same sums in another order: float32
    rounding)."""
    from lavasparse.train import event_synapse
    events = []
    original = event_synapse._add_rows_at_spikes
    monkeypatch.setattr(event_synapse, "_add_rows_at_spikes", lambda *a: events.append(1) or original(*a))
    torch.manual_seed(3)
    nets = [SpikingNet(NetConfig(arch=arch, weight_scale=2.0)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    start = [p.detach().clone() for p in nets[0].parameters()]
    nets[0].compiled_cpu_dynamics = False
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2) for n in nets]
    in_shape = nets[0].specs[0].in_shape
    reordered = 0
    for step in range(3):
        x = (torch.rand(8, *in_shape, steps) < 0.2).float()
        outs, grads = [], []
        for net, opt in zip(nets, opts):
            out = net(x)
            opt.zero_grad()
            sum((o * torch.linspace(-1, 1, o.shape[-1])).sum() for o in out).backward()
            grads.append([p.grad.clone() for p in net.parameters() if p.requires_grad])
            opt.step()
            outs.append(out)
        assert len(outs[0]) == len(outs[1]) == nets[0].num_spiking_layers
        assert all(o.sum() > 0 for o in outs[0])   # every layer spiked
        assert all(torch.equal(a, b) for a, b in zip(*outs))
        assert len(grads[0]) == len(grads[1]) and all(g.abs().sum() > 0 for g in grads[0])
        for ref, ours in zip(*grads):
            assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()))
            reordered += not torch.equal(ours, ref)
    assert reordered > 0   # the event-driven sums ran, in their own order
    params = [list(n.parameters()) for n in nets]
    assert len(params[0]) == len(params[1])
    assert any(not torch.equal(a, b) for a, b in zip(start, params[0]))   # training moved the weights
    assert len(events) >= 3   # the dense weight gradients ran event-driven


def test_the_event_driven_synapse_is_slayers_op_or_steps_aside():
    """Binary inputs and 8-bit weights: SLAYER's values, bit for bit, and its
    gradients to float32 rounding; graded inputs fall back to SLAYER's conv
    (bit for bit); weights off any 2^-k grid do not take the event path.
    Each with the input as read (delay 0), delayed by a step or two, and
    padded for later layers, as SpikingNet.forward asks for it."""
    from lavasparse.train.event_synapse import delayed, dense_synapse, event_dense_values, event_path_applies
    torch.manual_seed(6)
    net = SpikingNet(NetConfig(arch="40-30-10", weight_scale=2.0))
    syn = net.blocks[0].synapse
    with torch.no_grad():
        syn.weight.mul_(30)   # weights well past the first grid steps, some clipped at 8 bits
    w = syn._pre_hook_fx(syn.weight)
    assert len(torch.unique(w)) > 20
    cases = [(x, delay, steps) for x in ((torch.rand(5, 40, 25) < 0.3).float(), torch.rand(5, 40, 25))
             for delay, steps in ((0, 25), (1, 25), (2, 25), (0, 28), (1, 27), (0, 20), (3, 20))]
    for x, delay, steps in cases:
        ours_x = x.clone().requires_grad_()
        ref_x = x.clone().requires_grad_()
        ours, ref = dense_synapse(syn, ours_x, delay, steps), syn(delayed(ref_x, delay, steps))
        assert ours.shape == ref.shape == (5, 30, steps)
        assert ref.abs().sum() > 0 and torch.equal(ours, ref)
        grad = torch.randn_like(ref)
        syn.weight.grad = None
        ours.backward(grad)
        ours_w = syn.weight.grad.clone()
        syn.weight.grad = None
        ref.backward(grad)
        ref_w = syn.weight.grad
        assert ref_x.grad.abs().sum() > 0 and ref_w.abs().sum() > 0
        assert ours_x.grad.shape == x.shape
        if delay or steps < x.shape[-1]:   # the last steps reach no output: no gradient, on both
            assert ref_x.grad[..., steps - delay:].abs().sum() == 0 == ours_x.grad[..., steps - delay:].abs().sum()
        for ours_g, ref_g in ((ours_x.grad, ref_x.grad), (ours_w, ref_w)):
            assert torch.allclose(ours_g, ref_g, rtol=1e-5, atol=1e-6 * float(ref_g.abs().max()))
            if not torch.equal(x, x.round()):   # graded: SLAYER's own op
                assert torch.equal(ours_g, ref_g)
    for x in ((torch.rand(2, 40, 6) < 0.5).float(), torch.rand(2, 40, 6)):   # delayed past the output's end
        x.requires_grad_()
        z = dense_synapse(syn, x, 8, 5)
        assert z.shape == (2, 30, 5) and z.abs().sum() == 0
        z.sum().backward()
        assert x.grad.shape == x.shape and x.grad.abs().sum() == 0
    with pytest.raises(ValueError, match="negative"):
        dense_synapse(syn, x, -1, 5)
    assert event_dense_values(torch.rand(2, 40, 5) + 0.5, w) is None   # not binary
    assert not event_path_applies(syn, x, w + 1e-3)   # not on a grid


def test_without_numba_slayers_own_forward_runs(monkeypatch):
    """Where numba is missing (the lent GPU machines have no registry), the
    neuron runs SLAYER's own forward, with the same spikes."""
    torch.manual_seed(4)
    net = SpikingNet(NetConfig(arch="64-32-10", weight_scale=2.0))
    x = (torch.rand(4, 64, 10) < 0.3).float()
    block = net.blocks[0]
    z = block.synapse(x)
    assert cuba_cpu._fast_path_applies(block.neuron, z)
    compiled = cuba_cpu.cuba_neuron_forward(block.neuron, z)
    monkeypatch.setattr(cuba_cpu, "numba", None)
    assert not cuba_cpu._fast_path_applies(block.neuron, z)
    assert compiled.sum() > 0 and torch.equal(cuba_cpu.cuba_neuron_forward(block.neuron, z), compiled)


def test_a_neuron_with_a_forward_hook_runs_through_its_module():
    """A forward hook on a neuron (NeuroBench's activation recording) fires:
    the compiled path steps aside for it."""
    torch.manual_seed(5)
    net = SpikingNet(NetConfig(arch="64-32-10", weight_scale=2.0))
    seen = []
    handle = net.blocks[0].neuron.register_forward_hook(lambda mod, inp, out: seen.append(out))
    out = net((torch.rand(4, 64, 10) < 0.3).float())
    handle.remove()
    assert len(seen) == 1 and out[0].sum() > 0 and torch.equal(seen[0], out[0])


@pytest.mark.parametrize("backward", ["dense", "sparse"])
def test_a_synapse_with_a_forward_hook_runs_through_its_module(backward):
    """A forward hook on a dense synapse (NeuroBench counts synaptic ops with
    them) fires: the event-driven synapse, and the sparse backward, step aside."""
    torch.manual_seed(5)
    net = SpikingNet(NetConfig(arch="64-32-10", weight_scale=2.0, backward=backward))
    x = (torch.rand(4, 64, 10) < 0.3).float()
    expected = net(x)
    seen = []
    handle = net.blocks[0].synapse.register_forward_hook(lambda mod, inp, out: seen.append(out))
    out = net(x)
    handle.remove()
    assert len(seen) == 1 and out[0].sum() > 0
    assert len(out) == len(expected) and all(torch.equal(a, b) for a, b in zip(out, expected))


def test_the_compiled_path_keeps_torchs_thread_count():
    """Starting numba's thread pool sets torch's thread count to every core:
    a study trial given one thread must keep one after the compiled path
    ran (a fresh process, since the pool starts once per process). It can
    catch the bug only where there are two cores or more and numba's
    threading layer is OpenMP (this project's machines)."""
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(1)\n"
            "from lavasparse.train.model import NetConfig, SpikingNet\n"
            "net = SpikingNet(NetConfig(arch='20-10-5'))\n"
            "out = net((torch.rand(2, 20, 8) < 0.3).float())\n"
            "print('threads', torch.get_num_threads())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "threads 1" in result.stdout.splitlines()


def test_exact_sums_compiled_check_agrees_with_the_definition():
    """The event path's guard: weights on a 2^-k grid (k <= 12) whose row sums
    of |w| stay inside the mantissa. The compiled pass against the definition."""
    from lavasparse.train.event_synapse import exact_sums

    def definition(w):
        mantissa = 24 if w.dtype == torch.float32 else 53
        for bits in range(13):
            scaled = w * 2.0 ** bits
            if torch.equal(scaled, scaled.round()):
                return float(scaled.abs().reshape(w.shape[0], -1).sum(dim=1).max()) < 2.0 ** mantissa
        return False

    torch.manual_seed(0)
    w = torch.randint(-128, 128, (50, 78, 1, 1, 1)).float() / 32    # SLAYER's 8-bit grid at scale 64
    cases = [w, w + 1e-3, w / 4096, w / 8192, w * 2 ** 14, w * 2 ** 20, torch.zeros(3, 4), w.double(),
             w.double() * 2 ** 40, torch.full((1, 2 ** 15), 256.0), torch.full((1, 2 ** 16 + 1), 256.0)]
    verdicts = [exact_sums(c) for c in cases]
    assert verdicts == [definition(c) for c in cases]
    assert True in verdicts and False in verdicts
