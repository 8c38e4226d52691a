"""The netx HDF5 network description: read and validate any such file.

A file holds a group ``layer`` with subgroups ``0``, ``1``, ... in network
order. Each has ``type`` (input, dense, dense_rec, conv, flatten, ...) and
``shape`` in (C, H, W) or (features,) order, which netx reverses into Lava's
(x, y, z). Weights are integers on the 8-bit scale (-256..254, even values for
SLAYER's 8-bit quantisation); neurons are described by ``neuron/type``,
``iDecay``, ``vDecay`` (of 4096), ``vThMant`` and friends.

Our export also marks the root with ``lavasparse_readout``: 'potential' when
the class is the output layer's final potential (a layer that never spikes,
``train/model.py``), else 'spikes'; netx ignores the attribute, and a file
without it is read out by spike counts.

The reader is also the gate every other stage relies on: whatever it accepts,
netx 0.6.0 builds and Lava 0.10.0 runs as written. This module reads the
file's structure and hands each layer group to the class of its type
(``lavasparse.layers.KINDS``), which reads and checks its own fields with the
helpers and limits of ``lavasparse.layers.netx_fields``. Every error names
the file, the layer and the field.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py

from lavasparse.defaults import DEFAULT_READOUT, READOUTS
from lavasparse.fileio import not_a_regular_file
from lavasparse.layers import KINDS, Layer, NetFileError
from lavasparse.layers.netx_fields import H5_ERRORS, child, short, shown, string

SUPPORTED = tuple(KINDS)
# What netx 0.6.0 itself cannot build: we say so up front instead of failing deep inside Lava.
NETX_UNSUPPORTED = ("pool", "average", "concat", "convT", "unpool")


@dataclass
class NetDescription:
    """A netx network: its file and its layers (``lavasparse.layers``), in order."""

    path: Path
    layers: list[Layer]
    readout: str = DEFAULT_READOUT   # 'spikes' or 'potential': what gives the class (the file's lavasparse_readout)

    @property
    def spiking_layers(self) -> list[Layer]:
        return [l for l in self.layers if l.is_spiking]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of what enters the first layer, (C, H, W) or (features,)."""
        return self.layers[0].network_input_shape

    @property
    def has_input_neuron(self) -> bool:
        first = self.layers[0]
        return first.is_input and first.neuron is not None


# ---- The network -------------------------------------------------------------------------

def read_network(path: str | Path, any_neuron: bool = False) -> NetDescription:
    """Read and validate a netx HDF5 file; raise NetFileError naming file and field.

    Only CUBA and LOIHI neurons are modelled (simulated, emulated, profiled);
    ``any_neuron`` also reads other neuron types (SDNN, RF, ...) as they are,
    for what needs only the network's structure (``lavasparse check``)."""
    path = Path(path)
    problem = not_a_regular_file(path)
    if problem:
        raise NetFileError(f"{path}: {problem}")
    try:
        f = h5py.File(path, "r")
    except H5_ERRORS as e:
        raise NetFileError(f"{path}: not an HDF5 file ({short(e)})") from None
    with f:
        try:
            layers = _read_layers(path, f, any_neuron)
            readout = _read_readout(path, f)
        except (OSError, RuntimeError) as e:   # h5py, on a damaged file, where no helper expected it
            raise NetFileError(f"{path}: damaged HDF5 file ({short(e)})") from None
    if not any(l.is_spiking for l in layers):
        raise NetFileError(f"{path}: no layer with neurons")
    return NetDescription(path, layers, readout)


def _read_readout(path: Path, f: h5py.File) -> str:
    """The root's ``lavasparse_readout`` (our export's), DEFAULT_READOUT where absent."""
    where = f"{path}: attribute lavasparse_readout"
    try:
        if "lavasparse_readout" not in f.attrs:
            return DEFAULT_READOUT
        if f.attrs.get_id("lavasparse_readout").get_storage_size() > 64:
            raise NetFileError(f"{where}: longer than any readout {READOUTS}")
        value = f.attrs["lavasparse_readout"]
    except H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable ({short(e)})") from None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or value not in READOUTS:
        raise NetFileError(f"{where}: {shown(value)}, expected one of {READOUTS}")
    return value


def _read_layers(path: Path, f: h5py.File, any_neuron: bool) -> list[Layer]:
    group = child(f, "layer", f"{path}: layer", h5py.Group)
    if group is None:
        raise NetFileError(f"{path}: missing group 'layer' (not a netx network description)")
    try:
        names = list(group.keys())
    except H5_ERRORS as e:
        raise NetFileError(f"{path}: layer: unreadable ({short(e)})") from None
    numbered = [k for k in names if k.isascii() and k.isdigit()]
    keys = sorted(numbered, key=int)
    if not keys or len(numbered) != len(names) or [int(k) for k in keys] != list(range(len(keys))):
        raise NetFileError(f"{path}: 'layer' must hold subgroups 0..N-1, found {shown(names)}")
    layers: list[Layer] = []
    shape: tuple[int, ...] | None = None
    for k in keys:
        g = child(group, k, f"{path}: layer/{k}", h5py.Group)
        layer = _read_layer(path, g, int(k), shape, any_neuron)
        layers.append(layer)
        shape = layer.shape
    return layers


def _read_layer(path: Path, g: h5py.Group, index: int, prev_shape, any_neuron: bool = False) -> Layer:
    where = f"{path}: layer/{index}"
    netx_type = string(g, "type", f"{where}/type")
    if netx_type in NETX_UNSUPPORTED:
        raise NetFileError(f"{where}/type: '{netx_type}' layers cannot be deployed (netx 0.6.0 does not "
                           f"implement them; lavasparse exports pooling as a grouped conv)")
    if netx_type not in KINDS:
        raise NetFileError(f"{where}/type: unsupported layer type {shown(netx_type)} (supported: {SUPPORTED})")
    return KINDS[netx_type].read(g, where, index, netx_type, prev_shape, any_neuron)


def describe(desc: NetDescription) -> list[dict]:
    """One row per layer: name, type, shape, neurons, weights, weight bits, exponent."""
    return [layer.describe_row() for layer in desc.layers]
