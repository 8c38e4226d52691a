import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from lavasparse.layers import ConvLayer, DenseLayer, synaptic_ops
from lavasparse.train.event_synapse import delayed
from lavasparse.train.model import parse_arch


def test_parse_arch_shapes():
    specs = parse_arch("1x28x28-c16k5p0-p2-c32k3s2-p2-10")
    assert [(s.kind, s.out_shape) for s in specs] == [
        ("conv", (16, 24, 24)), ("pool", (16, 12, 12)), ("conv", (32, 6, 6)),
        ("pool", (32, 3, 3)), ("flatten", (288,)), ("dense", (10,))]
    assert [s.out_shape for s in parse_arch("784-500-10")] == [(500,), (10,)]


@pytest.mark.parametrize("arch,msg", [("784", "at least one"), ("1x7x7-p2-10", "divisible"),
                                      ("784-c8k3-10", "CxHxW"), ("784-x-10", "token"),
                                      ("1x8x8-c4k3", "last layer")])
def test_parse_arch_errors(arch, msg):
    with pytest.raises(ValueError, match=msg):
        parse_arch(arch)


def test_a_block_with_a_delay_or_mask_is_refused():
    from lavasparse.train.model import NetConfig, SpikingNet

    net = SpikingNet(NetConfig(arch="8-4-2"))
    net.blocks[0].mask = torch.ones_like(net.blocks[0].synapse.weight)
    with pytest.raises(ValueError, match="mask"):
        net(torch.zeros(1, 8, 4))


def test_delayed():
    x = torch.arange(1.0, 6.0).reshape(1, 5)
    assert delayed(x, 1, 5).tolist() == [[0, 1, 2, 3, 4]]                 # the one-step latency of a synapse
    assert delayed(x, 0, 7).tolist() == [[1, 2, 3, 4, 5, 0, 0]]           # the input, padded for the last layer
    assert delayed(x, 2, 4).tolist() == [[0, 0, 1, 2]]


def brute_force_fanout(layer: ConvLayer) -> np.ndarray:
    """Apply the conv to every one-hot input and count the outputs reached through a non-zero weight."""
    c, h, w = layer.in_shape
    kernel = torch.as_tensor((layer.weight != 0).astype(np.float64))
    fan = np.zeros((c, h, w), np.int64)
    for ci in range(c):
        for y in range(h):
            for x in range(w):
                one = torch.zeros(1, c, h, w, dtype=torch.float64)
                one[0, ci, y, x] = 1
                out = F.conv2d(one, kernel, stride=layer.stride, padding=layer.padding,
                               dilation=layer.dilation, groups=layer.groups)
                assert out.shape[2:] == layer.shape[1:]
                fan[ci, y, x] = int(out.sum().item())
    return fan


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 2), st.integers(3, 9), st.integers(3, 9), st.integers(1, 3),
       st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.booleans(), st.integers(0, 2**31 - 1))
def test_conv_fanout_matches_brute_force(groups, cpg, h, w, k, stride, pad, dil, sparse, seed):
    c_in = groups * cpg
    c_out = groups * 2
    if (k - 1) * dil + 1 > min(h, w) + 2 * pad:
        return
    rng = np.random.default_rng(seed)
    weight = rng.integers(-3, 4, (c_out, cpg, k, k)) * 2
    if sparse:
        weight[rng.random(weight.shape) < 0.5] = 0
    ho = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    layer = ConvLayer(1, (c_out, ho, wo), (c_in, h, w), weight=weight, stride=(stride, stride),
                      padding=(pad, pad), dilation=(dil, dil), groups=groups)
    assert np.array_equal(layer.fanout(), brute_force_fanout(layer))


def test_conv_fanout_edges_are_smaller():
    layer = ConvLayer(1, (1, 5, 5), (1, 5, 5), weight=np.ones((1, 1, 3, 3), int), padding=(1, 1))
    fan = layer.fanout()
    assert fan[0, 2, 2] == 9 and fan[0, 0, 0] == 4 and fan[0, 0, 2] == 6


def test_dense_fanout_and_synops():
    weight = np.array([[2, 0, 4], [0, 0, 6]])
    layer = DenseLayer(1, (2,), (3,), weight=weight)
    fan = layer.fanout()
    assert fan.tolist() == [1, 0, 2]
    spikes = np.zeros((2, 3, 4), np.int8)
    spikes[0, 0, :] = 1      # 4 spikes x fan-out 1
    spikes[1, 2, 1] = 1      # 1 spike x fan-out 2
    spikes[1, 1, 2] = 1      # fan-out 0
    assert synaptic_ops(spikes, fan) == 4 + 2
