"""The netx HDF5 network description: read and validate any such file.

A file holds a group ``layer`` with subgroups ``0``, ``1``, ... in network
order. Each has ``type`` (input, dense, dense_rec, conv, flatten, ...) and
``shape`` in (C, H, W) or (features,) order, which netx reverses into Lava's
(x, y, z). Weights are integers on the 8-bit scale (-256..254, even values for
SLAYER's 8-bit quantisation); neurons are described by ``neuron/type``,
``iDecay``, ``vDecay`` (of 4096), ``vThMant`` and friends.

Every error names the file and the field, so that a user can find the bad entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

SUPPORTED = ("input", "dense", "dense_rec", "conv", "flatten")
# What netx 0.6.0 itself cannot build: we say so up front instead of failing deep inside Lava.
NETX_UNSUPPORTED = ("pool", "average", "concat", "convT", "unpool")
NEURON_FIELDS = ("type", "iDecay", "vDecay", "vThMant")
# What netx 0.6.0 gives a dense layer whose description has no neuron: a
# non-leaky integrator (hdf5.Network.create_dense). Note ``1 << 18 - 1`` there
# is ``1 << 17`` by Python's precedence.
NETX_DEFAULT_DENSE_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17,
                             "refDelay": 1, "gradedSpike": False}
# netx clamps synaptic delays to 0..62 (DelayDense's buffer holds 63 steps).
MAX_DELAY = 62


class NetFileError(ValueError):
    """A netx HDF5 file that is missing a field or holds a malformed one."""


@dataclass
class LayerDesc:
    """One layer of a netx description, in the file's (C, H, W) order."""

    index: int
    kind: str
    shape: tuple[int, ...]
    in_shape: tuple[int, ...] | None = None
    weight: np.ndarray | None = None           # dense: (out, in); conv: (out, in/groups, kH, kW)
    weight_rec: np.ndarray | None = None       # dense_rec: (out, out), from the layer's own spikes
    neuron: dict | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None            # dense: (out, in) steps, as netx broadcasts it; conv: ignored by netx
    delay_in_file_max: int | None = None       # the largest delay the file asks for, before netx's clamp to 62
    origin: str | None = None                  # 'pool' for a pool our export wrote as a conv

    @property
    def recurrent(self) -> bool:
        return self.weight_rec is not None

    @property
    def name(self) -> str:
        return f"{self.origin or ('dense_rec' if self.recurrent else self.kind)}{self.index}"

    @property
    def num_neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def is_spiking(self) -> bool:
        """Whether Lava builds a neuron population for this layer."""
        return self.kind in ("dense", "conv") or (self.kind == "input" and self.neuron is not None)


@dataclass
class NetDescription:
    path: Path
    layers: list[LayerDesc]

    @property
    def spiking_layers(self) -> list[LayerDesc]:
        return [l for l in self.layers if l.is_spiking]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of what enters the first layer, (C, H, W) or (features,)."""
        first = self.layers[0]
        if first.kind == "input":
            return first.shape
        return first.in_shape

    @property
    def has_input_neuron(self) -> bool:
        return self.layers[0].kind == "input" and self.layers[0].neuron is not None


def _str(ds: h5py.Dataset) -> str:
    value = ds[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _pair(value, where: str) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return int(arr[0]), int(arr[0])
    if arr.size == 2:
        return int(arr[0]), int(arr[1])
    raise NetFileError(f"{where}: expected a scalar or 2 values, got {arr.tolist()}")


def read_network(path: str | Path, any_neuron: bool = False) -> NetDescription:
    """Read and validate a netx HDF5 file; raise NetFileError naming file and field.

    Only CUBA and LOIHI neurons are modelled (simulated, emulated, profiled);
    ``any_neuron`` also reads other neuron types (SDNN, RF, ...) as they are,
    for what needs only the network's structure (``lavasparse check``)."""
    path = Path(path)
    if not path.exists():
        raise NetFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NetFileError(f"{path}: not an HDF5 file ({e})") from None
    with f:
        if "layer" not in f:
            raise NetFileError(f"{path}: missing group 'layer' (not a netx network description)")
        group = f["layer"]
        keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
        if not keys or any(not k.isdigit() for k in keys) or [int(k) for k in keys] != list(range(len(keys))):
            raise NetFileError(f"{path}: 'layer' must hold subgroups 0..N-1, found {list(group.keys())}")
        layers: list[LayerDesc] = []
        shape: tuple[int, ...] | None = None
        for k in keys:
            layer = _read_layer(path, group[k], int(k), shape, any_neuron)
            layers.append(layer)
            shape = layer.shape
    if not any(l.is_spiking for l in layers):
        raise NetFileError(f"{path}: no layer with neurons")
    return NetDescription(path, layers)


def _read_layer(path: Path, g: h5py.Group, index: int, prev_shape, any_neuron: bool = False) -> LayerDesc:
    where = f"{path}: layer/{index}"
    if "type" not in g:
        raise NetFileError(f"{where}/type: missing")
    kind = _str(g["type"])
    if kind in NETX_UNSUPPORTED:
        raise NetFileError(f"{where}/type: '{kind}' layers cannot be deployed (netx 0.6.0 does not "
                           f"implement them; lavasparse exports pooling as a grouped conv)")
    if kind not in SUPPORTED:
        raise NetFileError(f"{where}/type: unsupported layer type {kind!r} (supported: {SUPPORTED})")
    recurrent = kind == "dense_rec"
    kind = "dense" if recurrent else kind
    if kind == "flatten":
        if prev_shape is None:
            raise NetFileError(f"{where}: flatten cannot be the first layer")
        return LayerDesc(index, kind, (int(np.prod(prev_shape)),), prev_shape)
    if "shape" not in g:
        raise NetFileError(f"{where}/shape: missing")
    shape = tuple(int(v) for v in np.asarray(g["shape"][()]).reshape(-1))
    if not shape or min(shape) < 1:
        raise NetFileError(f"{where}/shape: must be positive, got {shape}")
    if kind == "dense":
        # netx builds a dense layer flat, (prod(shape),), whatever the file's
        # shape says: lava-dl's own pilotnet_lif stores its dense layers as
        # (100, 1, 1), ... and Lava's spikes for them are (100,).
        shape = (int(np.prod(shape)),)
    neuron = _read_neuron(where, g, any_neuron) if "neuron" in g else None
    desc = LayerDesc(index, kind, shape, prev_shape, neuron=neuron,
                     origin=g.attrs.get("lavasparse_origin"))
    if kind == "input":
        if index != 0:
            raise NetFileError(f"{where}/type: an input layer must come first")
        return desc
    if prev_shape is None:
        raise NetFileError(f"{where}: a {kind} layer needs an input layer before it "
                           f"(with 'shape') to know its input size")
    if neuron is None:
        if kind != "dense":
            raise NetFileError(f"{where}/neuron: missing")
        desc.neuron = dict(NETX_DEFAULT_DENSE_NEURON)
    if "weight" not in g:
        raise NetFileError(f"{where}/weight: missing")
    weight = np.asarray(g["weight"][()])
    if not np.issubdtype(weight.dtype, np.number):
        raise NetFileError(f"{where}/weight: not numeric ({weight.dtype})")
    bad = ~np.isfinite(weight)
    if bad.any():
        raise NetFileError(f"{where}/weight: {int(bad.sum())} NaN or infinite values")
    if kind == "dense":
        n_in = int(np.prod(prev_shape))
        if weight.ndim == 1 and weight.size == shape[0] * n_in:
            weight = weight.reshape(shape[0], n_in)
        if weight.shape != (int(np.prod(shape)), n_in):
            raise NetFileError(f"{where}/weight: shape {weight.shape} does not fit {n_in} inputs "
                               f"and {int(np.prod(shape))} neurons (expected {(int(np.prod(shape)), n_in)})")
        desc.weight = weight
        # netx connects a (C, 1, 1) conv output straight to a dense layer (the
        # orders agree when H = W = 1; lava-dl's own pilotnet and ntidigits
        # networks do this); any other shape needs a flatten between.
        if len(prev_shape) != 1 and tuple(prev_shape[1:]) != (1, 1):
            raise NetFileError(f"{where}: dense layer after a {prev_shape} layer needs a flatten layer between")
        if recurrent:
            desc.weight_rec = _read_recurrent_weight(where, g, int(np.prod(shape)))
        if "delay" in g:
            desc.delay, desc.delay_in_file_max = _read_delay(where, g["delay"][()], desc.weight.shape)
            if recurrent and desc.weight.shape != desc.weight_rec.shape:
                # netx hands the same delay matrix to both synapses, and Lava's
                # DelayDense rejects it for the recurrent one.
                raise NetFileError(f"{where}/delay: netx applies one delay matrix to the input and the "
                                   f"recurrent weights, which needs as many inputs as neurons "
                                   f"({desc.weight.shape[1]} vs {desc.weight.shape[0]})")
    else:  # conv
        if len(prev_shape) != 3 or len(shape) != 3:
            raise NetFileError(f"{where}/shape: conv needs (C, H, W) shapes, got input {prev_shape}, output {shape}")
        weight = weight.reshape(weight.shape[:4]) if weight.ndim == 5 else weight
        if weight.ndim != 4:
            raise NetFileError(f"{where}/weight: conv weight must be (out, in/groups, kH, kW), got {weight.shape}")
        desc.weight = weight
        if "delay" in g:
            import warnings

            warnings.warn(f"{where}/delay: netx 0.6.0 ignores delays on conv layers (so does Lava, and so "
                          f"do we)")
        desc.groups = int(np.asarray(g["groups"][()]).reshape(-1)[0]) if "groups" in g else 1
        for name in ("stride", "padding", "dilation"):
            if name in g:
                setattr(desc, name, _pair(g[name][()], f"{where}/{name}"))
        if weight.shape[0] != shape[0] or weight.shape[1] * desc.groups != prev_shape[0]:
            raise NetFileError(f"{where}/weight: shape {weight.shape} with groups={desc.groups} does not map "
                               f"{prev_shape[0]} input channels to {shape[0]} output channels")
        expected = tuple(
            (prev_shape[1 + i] + 2 * desc.padding[i] - desc.dilation[i] * (weight.shape[2 + i] - 1) - 1)
            // desc.stride[i] + 1 for i in range(2))
        if expected != shape[1:]:
            raise NetFileError(f"{where}/shape: {shape} but the conv of a {prev_shape} input gives "
                               f"{(shape[0], *expected)}")
    if "bias" in g:
        desc.bias = np.asarray(g["bias"][()])
    return desc


def _read_recurrent_weight(where: str, g: h5py.Group, n: int) -> np.ndarray:
    if "weight_rec" not in g:
        raise NetFileError(f"{where}/weight_rec: missing (a dense_rec layer needs its recurrent weights)")
    w = np.asarray(g["weight_rec"][()])
    if not np.issubdtype(w.dtype, np.number) or not np.all(np.isfinite(w)):
        raise NetFileError(f"{where}/weight_rec: must hold finite numbers")
    if w.ndim == 1 and w.size == n * n:
        w = w.reshape(n, n)
    if w.shape != (n, n):
        raise NetFileError(f"{where}/weight_rec: shape {w.shape}, expected {(n, n)}")
    return w


def _read_delay(where: str, value, weight_shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Delays per synapse (out, in), broadcast as netx 0.6.0's create_dense does:
    a scalar for all, (out,) per neuron, (in,) per input, or the full matrix;
    values above 62 are clamped there (with a warning) and so here. Returns
    (delays, the largest delay in the file)."""
    import warnings

    d = np.asarray(value)
    if not np.issubdtype(d.dtype, np.number) or not np.all(np.isfinite(d)):
        raise NetFileError(f"{where}/delay: delays must be finite numbers of steps")
    if not np.array_equal(d, np.trunc(d)):
        warnings.warn(f"{where}/delay: fractional delays; netx truncates them to whole steps, and so do we")
    if d.size and d.min() < 0:
        raise NetFileError(f"{where}/delay: negative delay {int(d.min())} (Lava's DelayDense takes 0..{MAX_DELAY})")
    d = d.astype(np.int64)
    out, n_in = weight_shape
    if d.ndim == 0:
        d = np.full(weight_shape, int(d))
    elif d.ndim == 1 and d.size == out:      # netx checks the output count first
        d = np.repeat(d.reshape(-1, 1), n_in, axis=1)
    elif d.ndim == 1 and d.size == n_in:
        d = np.repeat(d.reshape(1, -1), out, axis=0)
    elif d.shape != weight_shape:
        raise NetFileError(f"{where}/delay: shape {d.shape} fits neither the weights {weight_shape}, "
                           f"their {out} outputs nor their {n_in} inputs")
    in_file = int(d.max())
    if in_file > MAX_DELAY:
        warnings.warn(f"{where}/delay: max delay {in_file} > {MAX_DELAY}; netx clamps it, and so do we")
        d = np.clip(d, 0, MAX_DELAY)
    return d, in_file


def _read_neuron(where: str, g: h5py.Group, any_neuron: bool = False) -> dict:
    ng = g["neuron"]
    neuron = {}
    if any_neuron and "type" in ng and _str(ng["type"]) not in ("CUBA", "LOIHI"):
        return {key: _str(ng[key]) if key == "type" else np.asarray(ng[key][()]) for key in ng.keys()
                if isinstance(ng[key], h5py.Dataset)}
    if "type" in ng and _str(ng["type"]) not in ("CUBA", "LOIHI"):
        raise NetFileError(f"{where}/neuron/type: {_str(ng['type'])!r} neurons are not modelled by lavasparse "
                           f"(CUBA and LOIHI are)")
    for key in NEURON_FIELDS:
        if key not in ng:
            raise NetFileError(f"{where}/neuron/{key}: missing")
    for key in ng.keys():
        neuron[key] = _str(ng[key]) if key == "type" else np.asarray(ng[key][()]).item() \
            if np.asarray(ng[key][()]).size == 1 else np.asarray(ng[key][()])
    if "messageBits" in neuron:
        # netx 0.6.0's NetDict does not list messageBits among its number
        # fields, so it hands the block a group, and Lava fails to compile
        # ("'>' not supported between instances of 'NetDict' and 'int'").
        raise NetFileError(f"{where}/neuron/messageBits: netx 0.6.0 cannot read this field (graded "
                           f"output spikes); remove it. Graded input spikes are set with "
                           f"input_message_bits when the network is run.")
    if neuron["type"] not in ("CUBA", "LOIHI"):
        raise NetFileError(f"{where}/neuron/type: {neuron['type']!r} is not a CUBA/LOIHI neuron")
    for key, hi in (("iDecay", 4096), ("vDecay", 4096)):
        v = np.asarray(neuron[key])
        if np.any(v < 0) or np.any(v > hi):
            raise NetFileError(f"{where}/neuron/{key}: must lie in 0..{hi}, got {neuron[key]}")
    if np.any(np.asarray(neuron["vThMant"]) <= 0):
        raise NetFileError(f"{where}/neuron/vThMant: must be positive, got {neuron['vThMant']}")
    return neuron
