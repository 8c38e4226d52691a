"""Sum pooling, trained as SLAYER's ``cuba.Pool`` and deployed as the
equivalent depthwise conv: netx 0.6.0 cannot load ``pool``, so the export
writes a ``conv`` with groups = channels, kernel = stride = pool size and the
pool's quantised weight at every tap, marked ``lavasparse_origin = 'pool'``
(read back as a ``ConvLayer`` named pool<i>).

Synaptic input of channel c at (y, x): w * sum over the k x k window of
channel c's spikes, w the pool's one weight.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import h5py
import numpy as np

from .base import LayerSpec, slayer_cuba
from .geometry import soft_conv_fanout


@dataclass(frozen=True)
class PoolSpec(LayerSpec):
    """A sum pool to train, token ``p{kernel}`` (stride = kernel, no padding;
    H and W must divide by it). Its weight is fixed: not pruned."""

    kind = "pool"
    token = re.compile(r"p(\d+)")

    @classmethod
    def parse(cls, match, shape, arch):
        if len(shape) != 3:
            raise ValueError(f"architecture {arch!r}: pool {match[0]!r} needs a CxHxW input")
        k = int(match[1])
        if shape[1] % k or shape[2] % k:
            # SLAYER's pool pads odd sizes in a way the deployed conv cannot mirror.
            raise ValueError(f"architecture {arch!r}: pool {match[0]!r} needs H and W divisible "
                             f"by {k}, got {shape[1]}x{shape[2]}")
        return [cls((shape[0], shape[1] // k, shape[2] // k), shape, k, k, 0)]

    def slayer_block(self, neuron_params, net_config):
        return slayer_cuba().Pool(neuron_params, self.kernel, stride=self.stride, weight_scale=net_config.pool_weight)

    def block_fanout(self, gate):
        """As the depthwise conv it exports as."""
        channels = self.in_shape[0]
        kernel = gate[..., 0].expand(channels, 1, *gate.shape[2:4])   # drop SLAYER's time axis
        return soft_conv_fanout(kernel, self.in_shape, self.out_shape, (self.stride,) * 2, (0, 0), groups=channels)

    def check_exportable(self, name: str, block) -> None:
        """Nothing to check: the pool's one weight is fixed, never trained."""

    def write_netx(self, group: h5py.Group, block, depth: int) -> None:
        channels, kernel = self.in_shape[0], self.kernel
        w = block.synapse.pre_hook_fx(block.synapse.weight, descale=True).detach().cpu().numpy()
        w = np.broadcast_to(w.reshape(w.shape[2:4]), (channels, 1, kernel, kernel)).copy()
        group.attrs["lavasparse_origin"] = "pool"  # so that reports can call it a pool
        group.create_dataset("type", (1,), "S10", [b"conv"])
        group.create_dataset("shape", data=np.array(self.out_shape))
        group.create_dataset("inChannels", data=channels)
        group.create_dataset("outChannels", data=channels)
        group.create_dataset("kernelSize", data=np.array([kernel, kernel]))
        group.create_dataset("stride", data=np.array([kernel, kernel]))
        group.create_dataset("padding", data=np.array([0, 0]))
        group.create_dataset("dilation", data=np.array([1, 1]))
        group.create_dataset("groups", data=channels)
        group.create_dataset("weight", data=w)
        for key, value in block.neuron.device_params.items():
            group.create_dataset(f"neuron/{key}", data=value)
