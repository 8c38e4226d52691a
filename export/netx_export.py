"""Write a trained SpikingNet as a netx HDF5 description.

The file starts with an ``input`` layer that holds only the input shape (no
neuron): netx then feeds the input spikes straight into the first synaptic
layer, as our SLAYER model does. Dense, conv and flatten blocks export
themselves (SLAYER's ``export_hdf5``); netx 0.6.0 cannot load ``pool``, so a
SLAYER pool block is written as the equivalent depthwise conv (groups =
channels, kernel = stride = pool size, the pool's quantised weight everywhere).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from lavasparse.fileio import atomic_path

from .netx_format import NetDescription, NetFileError, read_network


def _check_finite(name: str, weight: torch.Tensor) -> None:
    bad = ~torch.isfinite(weight.detach())
    if bad.any():
        raise ValueError(f"layer {name}: {int(bad.sum())} NaN or infinite weights; refusing to export")


def _write_pool_as_conv(group: h5py.Group, block, in_shape: tuple[int, int, int],
                        out_shape: tuple[int, int, int], kernel: int) -> None:
    channels = in_shape[0]
    w = block.synapse.pre_hook_fx(block.synapse.weight, descale=True).detach().cpu().numpy()
    w = np.broadcast_to(w.reshape(w.shape[2:4]), (channels, 1, kernel, kernel)).copy()
    group.attrs["lavasparse_origin"] = "pool"  # so that reports can call it a pool
    group.create_dataset("type", (1,), "S10", [b"conv"])
    group.create_dataset("shape", data=np.array(out_shape))
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


def export_netx(model, path: str | Path) -> NetDescription:
    """Write ``model`` (a lavasparse SpikingNet that has run at least one
    forward pass) to ``path`` atomically, after checking its weights are finite
    and that the written file reads back as a valid description. Returns it."""
    path = Path(path)
    names = iter(model.layer_names)
    for spec, block in zip(model.specs, model.blocks):
        if spec.kind in ("dense", "conv"):
            _check_finite(next(names), block.synapse.weight)
        elif spec.kind == "pool":
            next(names)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            layer = f.create_group("layer")
            g0 = layer.create_group("0")
            g0.create_dataset("type", (1,), "S10", [b"input"])
            g0.create_dataset("shape", data=np.array(model.specs[0].in_shape))
            for i, (spec, block) in enumerate(zip(model.specs, model.blocks), start=1):
                g = layer.create_group(str(i))
                if spec.kind == "pool":
                    _write_pool_as_conv(g, block, spec.in_shape, spec.out_shape, spec.kernel)
                else:
                    block.export_hdf5(g)
        try:
            desc = read_network(tmp)
        except NetFileError as e:
            raise NetFileError(f"{path}: the exported description is invalid: {e}") from None
    desc.path = path
    return desc
