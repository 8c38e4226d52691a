"""The input layer: the network's input shape and, optionally, a neuron.

Without a neuron (what lavasparse writes) it holds only the shape, and the
input spikes enter the first synaptic layer. With one (lava-dl's PilotNet
files), Lava builds a neuron population that the input is added to as
current: its synapse is the identity, ``a_in = x``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import h5py

from .base import ChipUse, Layer, Synapse, Violate
from .netx_fields import NetFileError, child, numbers, read_origin, read_shape

NETX_INPUT_TRANSFORM_DEFAULT = {"weight": 64, "bias": 0}   # hdf5.Network.create_input


class IdentitySynapse(Synapse):
    """What enters an input neuron: the input itself, as current."""

    def __init__(self):
        super().__init__([], [])

    @property
    def abs_sum(self) -> int:
        return 1

    def __call__(self, x, steps: int):
        return x[self.history:].reshape(steps, x.shape[1], -1).double()


@dataclass
class InputLayer(Layer):
    kind = "input"
    netx_types = ("input",)
    is_input = True

    # With a neuron: netx's Input.transform (weight, bias), which netx stores
    # and Lava never applies (lava-dl's own PilotNet tests feed weight * image
    # + bias to the neuron themselves); netx's defaults 64, 0.
    input_transform: tuple[int, int] | None = None

    @classmethod
    def read(cls, g, where, index, netx_type, prev_shape, any_neuron):
        shape = read_shape(g, f"{where}/shape")
        layer = cls(index, shape, prev_shape, neuron=cls.read_neuron_group(g, where, shape, any_neuron),
                    origin=read_origin(g))
        if index != 0:
            raise NetFileError(f"{where}/type: an input layer must come first")
        if layer.neuron is not None:
            layer.input_transform = _read_input_transform(g, where)
        return layer

    @property
    def is_spiking(self) -> bool:
        return self.neuron is not None

    @property
    def network_input_shape(self) -> tuple[int, ...]:
        return self.shape

    def emulator_synapses(self, graded: bool):
        return IdentitySynapse(), None

    def chip_use(self, spec, violate: Violate) -> ChipUse:
        return ChipUse(0, 0, None, None, 0, "-", self.num_neurons, 0, 0)

    def core_axons_in(self, use: ChipUse, cores: int) -> int:
        return math.ceil(self.num_neurons / cores)   # one axon per neuron of the core


def _read_input_transform(g: h5py.Group, where: str) -> tuple[int, int]:
    """An input layer's (weight, bias) as netx's create_input reads them: int()
    of one finite number each (and then stored, not applied), netx's defaults
    where absent."""
    out = []
    for name in ("weight", "bias"):
        ds = child(g, name, f"{where}/{name}", h5py.Dataset)
        if ds is None:
            out.append(NETX_INPUT_TRANSFORM_DEFAULT[name])
            continue
        a = numbers(ds, f"{where}/{name}")
        if a.size != 1:
            raise NetFileError(f"{where}/{name}: {a.size} values; netx reads an input layer's {name} as one number")
        out.append(int(a.reshape(-1)[0]))
    return out[0], out[1]
