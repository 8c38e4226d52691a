"""Shared helpers. (No __init__.py here: lava-dl installs a top-level package
named ``tests`` into site-packages, and the two would collide.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lavasparse.train.model import NetConfig, SpikingNet


def make_net(arch: str, steps: int = 12, seed: int = 0, weight_scale: float = 4.0) -> SpikingNet:
    """An untrained SLAYER net with random weights, ready to export. (``steps`` is kept
    for the callers' readability; the net does not depend on it.)"""
    torch.manual_seed(seed)
    return SpikingNet(NetConfig(arch=arch, weight_scale=weight_scale)).eval()


def random_spikes(shape, p: float = 0.3, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < p).astype(np.int8)


def slayer_spikes(net: SpikingNet, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = net.windowed(net(torch.as_tensor(x, dtype=torch.float32)), x.shape[-1])
    return [s.numpy().astype(np.int32) for s in out]


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
