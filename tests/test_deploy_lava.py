"""The deployed network on Lava (Loihi2SimCfg, fixed_pt) against SLAYER's
fixed-point inference: spike for spike, every layer, every step."""
import h5py
import numpy as np
import pytest

from conftest import assert_same_spikes, random_spikes, slayer_spikes
from lavasparse.deploy.lava_runner import check_input, run_on_lava
from lavasparse.export.netx_format import read_network


@pytest.mark.parametrize("arch", ["64-24-10", "1x8x8-c4k3-p2-c6k3p0-12-10", "2x6x6-c4k3s2p1-16-5", "2x4x4-12-5"])
def test_lava_spikes_identical_to_slayer(tmp_net, arch):
    net, path = tmp_net(arch, steps=10)
    x = random_spikes((6, *net.specs[0].in_shape, 10), p=0.4, seed=1)
    ref = slayer_spikes(net, x)
    run = run_on_lava(read_network(path), x, progress=False)
    assert run.layer_names == net.layer_names
    assert_same_spikes(ref, run.spikes, run.layer_names, what="Lava against SLAYER")
    assert np.array_equal(run.predictions, ref[-1].sum(-1).argmax(1))


def test_pool_exported_as_grouped_conv_spikes_as_slayer_pool(tmp_net):
    """netx cannot load 'pool': our grouped conv must spike exactly as SLAYER's pool block."""
    net, path = tmp_net("3x6x6-p2-p3-4", steps=14)
    assert [s.kind for s in net.specs[:2]] == ["pool", "pool"]
    x = random_spikes((5, 3, 6, 6, 14), p=0.3, seed=2)
    ref = slayer_spikes(net, x)
    run = run_on_lava(read_network(path), x, progress=False)
    assert_same_spikes(ref[:2], run.spikes[:2], what="two pools on Lava against SLAYER", spiking="all")


def test_single_sample_input_without_batch_axis(tmp_net):
    net, path = tmp_net("64-24-10", steps=8)
    x = random_spikes((64, 8), p=0.5, seed=3)
    run = run_on_lava(read_network(path), x, progress=False)
    assert run.spikes[0].shape == (1, 24, 8)
    assert np.array_equal(run.spikes[0], slayer_spikes(net, x[None])[0])


def test_wrong_input_shape_states_expected(tmp_net):
    _, path = tmp_net("1x8x8-c4k3-p2-16-10")
    with pytest.raises(ValueError, match=r"expected \(1, 8, 8, T\) or \(N, 1, 8, 8, T\)"):
        check_input(np.zeros((3, 64, 10)), read_network(path))
    with pytest.raises(ValueError, match="expected"):
        run_on_lava(read_network(path), np.zeros((2, 1, 8, 9, 10)), progress=False)


def test_foreign_file_with_input_neuron(tmp_path):
    """A netx file whose input layer has a neuron: the array is that neuron's
    input current, it passes the spikes on with no synaptic delay, and the
    windows line up (reset offset 0)."""
    path = tmp_path / "foreign.net"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f["layer/0/shape"] = np.array([5])
        for k, v in {"iDecay": 4096, "vDecay": 4096, "vThMant": 1, "refDelay": 1}.items():
            f[f"layer/0/neuron/{k}"] = v
        f.create_dataset("layer/0/neuron/type", (1,), "S10", [b"CUBA"])
        f.create_dataset("layer/1/type", (1,), "S10", [b"dense"])
        f["layer/1/shape"] = np.array([3])
        f["layer/1/weight"] = rng.integers(-60, 120, (3, 5)) * 2
        for k, v in {"iDecay": 1024, "vDecay": 128, "vThMant": 80, "refDelay": 1}.items():
            f[f"layer/1/neuron/{k}"] = v
        f.create_dataset("layer/1/neuron/type", (1,), "S10", [b"CUBA"])
    desc = read_network(path)
    assert desc.has_input_neuron and [l.name for l in desc.spiking_layers] == ["input0", "dense1"]
    spikes = random_spikes((4, 5, 9), p=0.5, seed=5).astype(np.int32)
    # Current a_in << 6 must exceed vThMant << 6: 2 per input spike does.
    run = run_on_lava(read_network(path), 2 * spikes, progress=False)
    assert np.array_equal(run.spikes[0], spikes)
    assert run.spikes[1].sum() > 0
