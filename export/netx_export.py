"""Write a trained SpikingNet as a netx HDF5 description.

The file starts with an ``input`` layer that holds only the input shape (no
neuron): netx then feeds the input spikes straight into the first synaptic
layer, as our SLAYER model does. Each block is written by its layer kind
(``LayerSpec.write_netx`` in ``lavasparse.layers``): dense, conv and flatten
through SLAYER's own ``export_hdf5``; a pool, which netx 0.6.0 cannot load,
as the equivalent depthwise conv (``lavasparse/layers/pool.py``). The root's
``lavasparse_readout`` says what gives the class (``netx_format.py``).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from lavasparse.fileio import atomic_path

from .netx_format import NetDescription, NetFileError, read_network


def export_netx(model, path: str | Path) -> NetDescription:
    """Write ``model`` (a lavasparse SpikingNet that has run at least one
    forward pass) to ``path`` atomically, after checking its weights are finite
    and that the written file reads back as a valid description. Returns it."""
    path = Path(path)
    spiking = [(spec, block) for spec, block in zip(model.specs, model.blocks) if spec.spiking]
    for name, (spec, block) in zip(model.layer_names, spiking, strict=True):
        spec.check_exportable(name, block)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["lavasparse_readout"] = model.readout   # netx reads no root attribute
            layer = f.create_group("layer")
            g0 = layer.create_group("0")
            g0.create_dataset("type", (1,), "S10", [b"input"])
            g0.create_dataset("shape", data=np.array(model.specs[0].in_shape))
            depth = 0
            for i, (spec, block) in enumerate(zip(model.specs, model.blocks), start=1):
                spec.write_netx(layer.create_group(str(i)), block, depth)
                depth += spec.spiking
        try:
            desc = read_network(tmp)
        except NetFileError as e:
            raise NetFileError(f"{path}: the exported description is invalid: {e}") from None
    desc.path = path
    return desc
