"""Shared helpers. (No __init__.py here: lava-dl installs a top-level package
named ``tests`` into site-packages, and the two would collide.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lavasparse.train.model import NetConfig, SpikingNet

# The learning rate of the tests' short trainings (a few epochs on a few
# hundred digits), where they check a mechanism, not the defaults: a larger
# step than the defaults' 1e-3 for 60 epochs of the rate code, so that a net
# learns in 2 or 3 epochs.
QUICK_LR = 1e-2


def make_net(arch: str, steps: int = 12, seed: int = 0, weight_scale: float = 4.0,
             readout: str = "spikes") -> SpikingNet:
    """An untrained SLAYER net with random weights, ready to export. (``steps`` is kept
    for the callers' readability; the net does not depend on it.)"""
    torch.manual_seed(seed)
    return SpikingNet(NetConfig(arch=arch, weight_scale=weight_scale, readout=readout)).eval()


def random_spikes(shape, p: float = 0.3, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < p).astype(np.int8)


def slayer_spikes(net: SpikingNet, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = net.windowed(net(torch.as_tensor(x, dtype=torch.float32)), x.shape[-1])
    return [s.numpy().astype(np.int32) for s in out]


def assert_same_spikes(expected, got, names=None, what: str = "", spiking: str = "any") -> None:
    """Two engines' spikes, layer by layer: the same number of layers (no
    silent truncation by zip), the same shapes, something spiked (``spiking``:
    'any' layer, 'hidden': every layer but the last, 'all'), then equal,
    with the count of differing spikes in the message."""
    expected, got = list(expected), list(got)
    names = list(names) if names is not None else [f"layer {i}" for i in range(len(expected))]
    assert len(expected) == len(got) == len(names), f"{what}: {len(expected)} layers against {len(got)}"
    assert len(expected) > 0, f"{what}: no layers"
    counts = [int(np.asarray(a).sum()) for a in expected]
    must = {"any": [any(counts)], "hidden": [c > 0 for c in counts[:-1]] or [counts[0] > 0],
            "all": [c > 0 for c in counts]}[spiking]
    assert all(must), f"{what}: spikes per layer {counts}: a comparison of silent layers proves nothing"
    for name, a, b in zip(names, expected, got):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{what} {name}: shape {a.shape} against {b.shape}"
        assert np.array_equal(a, b), f"{what} {name}: {int((a != b).sum())} of {a.size} spikes differ"


@pytest.fixture
def tmp_net(tmp_path):
    """Export a random net into tmp_path; returns (net, path)."""
    from lavasparse.export.netx_export import export_netx

    def _make(arch: str, **kw):
        net = make_net(arch, **kw)
        path = tmp_path / "net.net"
        export_netx(net, path)
        return net, path
    return _make
