"""Flatten (netx ``flatten``): the (C, H, W) spikes of the layer before as
(C * H * W,) features, in (C, H, W) order, as netx's does. No synapses, no
neurons: it changes only the shape the next layer reads."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Layer, LayerSpec, slayer_cuba
from .netx_fields import NetFileError


@dataclass
class FlattenLayer(Layer):
    kind = "flatten"
    netx_types = ("flatten",)

    @classmethod
    def read(cls, g, where, index, netx_type, prev_shape, any_neuron):
        if prev_shape is None:
            raise NetFileError(f"{where}: flatten cannot be the first layer")
        return cls(index, (int(np.prod(prev_shape)),), prev_shape)

    def nir_nodes(self, dt):
        """NIR's ``Flatten`` of every axis (NIR shapes have no batch axis)."""
        import nir
        return [(self.name, nir.Flatten(input_type={"input": np.array(self.in_shape)}, start_dim=0, end_dim=-1))]


@dataclass(frozen=True)
class FlattenSpec(LayerSpec):
    """A flatten to train: SLAYER's ``cuba.Flatten`` (no weights, no neurons),
    inserted by ``train.model.parse_arch`` before a dense layer that follows
    a spatial one."""

    kind = "flatten"
    spiking = False

    def slayer_block(self, neuron_params, net_config):
        return slayer_cuba().Flatten()
