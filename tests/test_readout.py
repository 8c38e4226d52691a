"""A potential readout (``NetConfig.readout = 'potential'``, Adams et al.'s):
the output layer never spikes, training learns by cross-entropy over its
final potentials, and every stage reads the same potential: SLAYER's x
s_scale, the emulator's and Lava's."""
import h5py
import numpy as np
import pytest
import torch

from conftest import QUICK_LR, make_net, random_spikes
from lavasparse.defaults import READOUT_THRESHOLD_MANT
from lavasparse.deploy.lava_runner import run_on_lava
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import NetFileError, read_network
from lavasparse.export.nir_export import to_nir
from lavasparse.simulate.emulator import Emulator
from lavasparse.simulate.engines import run_target
from lavasparse.train import cuba_cpu
from lavasparse.train.loss import SparsityLoss
from lavasparse.train.model import NetConfig, SpikingNet
from lavasparse.train.trainer import TrainConfig, train


def test_compiled_readout_voltage_and_gradient_are_slayers():
    """The compiled voltage and its backward against SLAYER's own
    ``neuron.dynamics``: equal, where the gradient is not zero."""
    net = make_net("64-24-10", readout="potential")
    neuron = net.blocks[-1].neuron
    z = (4 * torch.randn(3, 10, 15)).requires_grad_()
    grad_out = torch.randn(3, 10, 15)
    ours = cuba_cpu.cuba_voltage_forward(neuron, z)
    (ours * grad_out).sum().backward()
    ours_grad, z.grad = z.grad.clone(), None
    slayers = neuron.dynamics(z)[1]
    (slayers * grad_out).sum().backward()
    assert ours.abs().max() > 1 and ours_grad.abs().max() > 0
    assert torch.equal(ours, slayers)
    assert torch.allclose(ours_grad, z.grad, rtol=0, atol=1e-5 * float(z.grad.abs().max()))


def test_potential_readout_network_trains_as_slayers_modules():
    """The whole net's loss gradient, compiled against SLAYER's modules."""
    x = torch.as_tensor(random_spikes((6, 64, 10), p=0.3, seed=1), dtype=torch.float32)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    loss_fn = SparsityLoss(readout="potential")
    grads = []
    for compiled in (True, False):
        net = make_net("64-24-10", readout="potential")
        net.compiled_cpu_dynamics = compiled
        loss = loss_fn(net.windowed(net(x), 10), labels, sigma=1e-3)[0]
        loss.backward()
        grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        assert a.abs().max() > 0
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_potential_readout_loss_is_cross_entropy_over_final_potentials():
    hidden = torch.rand(4, 8, 6)
    voltage = torch.randn(4, 10, 6)
    labels = torch.tensor([1, 3, 3, 9])
    total, l_class, count, _ = SparsityLoss(readout="potential")([hidden, voltage], labels, sigma=0.5)
    expected = torch.nn.functional.cross_entropy(voltage[..., -1], labels)
    assert torch.allclose(l_class, expected)
    assert torch.allclose(total, expected + 0.5 * hidden.sum() / 4)
    with pytest.raises(ValueError, match="potential readout"):
        SparsityLoss(readout="potential", distill=0.5)
    with pytest.raises(ValueError, match="potential readout has none"):   # before a run folder is claimed
        TrainConfig(net=NetConfig(readout="potential"), teacher="../baseline", distill=0.5)
    with pytest.raises(ValueError, match="readout"):
        NetConfig(readout="rates")


@pytest.mark.parametrize("arch", ["64-24-10", "1x8x8-c4k3-p2-10", "64-24i-10i"])
def test_target_reads_the_potential_slayer_trains_on(tmp_path, arch):
    """Exported, the readout layer has the largest threshold and the file
    says how it is read; the emulator and Lava give the same hidden spikes,
    no readout spike, the same final potentials as SLAYER's x s_scale, and
    so the same classes."""
    net = make_net(arch, readout="potential")
    path = tmp_path / "net.net"
    export_netx(net, path)
    desc = read_network(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["lavasparse_readout"] == "potential"
    assert desc.readout == "potential"
    assert int(desc.spiking_layers[-1].neuron.v_th_mant) == READOUT_THRESHOLD_MANT
    if "i" not in arch:   # NIR has no node for an ISI synapse
        assert "never spikes" in to_nir(desc).metadata["readout"]

    x = random_spikes((7, *net.specs[0].in_shape, 12), p=0.4, seed=3)
    with torch.no_grad():
        out = net.windowed(net(torch.as_tensor(x, dtype=torch.float32)), 12)
    scores = net.scores(out).numpy()
    expected = np.rint(scores.astype(np.float64) * net.blocks[-1].neuron.s_scale).astype(np.int64)
    em = Emulator(desc).run(x)
    lava = run_on_lava(desc, x, progress=False)
    assert len(em.spikes) == len(lava.spikes) == net.num_spiking_layers
    hidden = [s.numpy().astype(np.int32) for s in out[:-1]]
    assert sum(int(h.sum()) for h in hidden) > 0, "a comparison of silent layers proves nothing"
    for ours, e, l in zip(hidden, em.spikes, lava.spikes):
        assert np.array_equal(ours, e) and np.array_equal(e, l)
    assert not em.spikes[-1].any() and not lava.spikes[-1].any()
    assert em.readout_potential.shape == lava.readout_potential.shape == (7, 10)
    assert np.abs(expected).max() > 0 and len(np.unique(expected)) > 10
    assert np.array_equal(em.readout_potential, expected)
    assert np.array_equal(lava.readout_potential, expected)
    assert np.array_equal(em.predictions, scores.argmax(1)) and np.array_equal(lava.predictions, scores.argmax(1))


def test_a_readout_that_spikes_is_refused(tmp_path):
    """Every input spiking every step into the largest weights saturates the
    readout's 24-bit voltage, which then crosses the threshold: an error, not
    a class read from a reset potential."""
    net = make_net("64-10", readout="potential")
    with torch.no_grad():
        net.blocks[0].synapse.weight.fill_(3.9)
    path = tmp_path / "net.net"
    export_netx(net, path)
    x = np.ones((2, 64, 40), np.int8)
    with pytest.raises(ValueError, match="readout layer .* spiked"):
        run_target(read_network(path), x, engine="emulator", progress=False)


def test_reader_refuses_an_unknown_readout(tmp_path):
    path = tmp_path / "net.net"
    export_netx(make_net("64-24-10"), path)
    assert read_network(path).readout == "spikes"
    with h5py.File(path, "a") as f:
        f.attrs["lavasparse_readout"] = "rates"
    with pytest.raises(NetFileError, match="lavasparse_readout: 'rates'"):
        read_network(path)


def test_training_with_a_potential_readout(tmp_path):
    """Trained on 400 digits, the readout learns (chance is 0.1), counts no
    output spikes, and the run's model reads out the potential."""
    config = TrainConfig(name="t", net=NetConfig(arch="64-32-10", readout="potential"), steps=8, epochs=2,
                         batch_size=16, train_limit=400, device="cpu", lr=QUICK_LR)
    best = train(config, tmp_path, progress=False)
    assert best["val_accuracy"] > 0.5
    assert best["val_spikes_per_layer"][-1] == 0 and best["val_spikes_per_layer"][0] > 0
    assert SpikingNet(config.net).readout == "potential"
