"""The netx HDF5 network description: read and validate any such file.

A file holds a group ``layer`` with subgroups ``0``, ``1``, ... in network
order. Each has ``type`` (input, dense, dense_rec, conv, flatten, ...) and
``shape`` in (C, H, W) or (features,) order, which netx reverses into Lava's
(x, y, z). Weights are integers on the 8-bit scale (-256..254, even values for
SLAYER's 8-bit quantisation); neurons are described by ``neuron/type``,
``iDecay``, ``vDecay`` (of 4096), ``vThMant`` and friends.

The reader is also the gate every other stage relies on: whatever it accepts,
netx 0.6.0 builds and Lava 0.10.0 runs as written. Lava's process models run in
worker processes, and an exception there (a float threshold that cannot be
shifted, a negative padding) leaves the runtime waiting for good; values that
overflow Lava's fields (int8 conv parameters, int16 biases) are silently
wrapped. So every field is checked, before its data is read where it can be,
for kind (dataset or group, never through a link), dtype, declared shape and
size, finiteness, whole numbers and range, against the limits below.

Every error names the file, the layer and the field, so that a user can find
the bad entry; text from the file is cut short in messages.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from lavasparse.fileio import not_a_regular_file

from .netx_weights import weight_format

SUPPORTED = ("input", "dense", "dense_rec", "conv", "flatten")
# What netx 0.6.0 itself cannot build: we say so up front instead of failing deep inside Lava.
NETX_UNSUPPORTED = ("pool", "average", "concat", "convT", "unpool")
NEURON_FIELDS = ("type", "iDecay", "vDecay", "vThMant")
# What netx 0.6.0 gives a dense layer whose description has no neuron: a
# non-leaky integrator (hdf5.Network.create_dense). Note ``1 << 18 - 1`` there
# is ``1 << 17`` by Python's precedence.
NETX_DEFAULT_DENSE_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17,
                             "refDelay": 1, "gradedSpike": False}

# ---- Limits: every bound the reader applies, and why. -------------------------------------
# The most values read from one dataset, and the most neurons in one layer:
# 2**25 is 32 Loihi 2 chips' worth of neurons (2**20 each) and four times a
# chip's 8-bit dense synaptic memory (128 cores x 128 KiB); a dataset this
# size takes 256 MB as float64. Checked from the declared shape before
# reading, so a small file that declares a huge (chunked, empty) dataset is
# refused without allocating it.
MAX_DATASET_VALUES = 1 << 25
# The longest string field read (layer and neuron types are a few bytes).
MAX_STRING_BYTES = 256
# Text from the file (a type, a key) is cut to this many characters in a message.
SHOWN_CHARS = 60
# The largest |weight|: an 8-bit mantissa with Loihi's largest weight exponent
# (7) reaches 255 << 7 = 32,640; beyond 2**15 netx's int32 shifts and Lava's
# int32 sums are no longer safe, and no chip weight matches.
MAX_ABS_WEIGHT = 1 << 15
# Decays are fractions of 4096 (Lava: decay_unity); iDecay 0 is netx's default integrator.
MAX_DECAY = 4096
# Lava's bit-accurate LIF shifts vth left by 6 in int32; thresholds at or
# above 2**17 never fire (the 24-bit voltage cannot exceed them) and
# ``lavasparse check`` says so, but they run.
MAX_THRESHOLD_MANT = (1 << 25) - 1
# Lava's LIF holds bias_mant in an int16 array: larger biases wrap silently
# (netx casts to int32 first). The chip's 13-bit field is ``check``'s business.
BIAS_RANGE = (-(1 << 15), (1 << 15) - 1)
# Lava's Conv process model holds kernel size, stride, padding, dilation and
# groups in int8 arrays: 128 wraps to -128 silently.
MAX_CONV_PARAM = 127
# netx clamps synaptic delays to 0..62 (DelayDense's buffer holds 63 steps).
MAX_DELAY = 62
# netx/Lava take shapes of one to three axes ((x, y, z) once reversed).
MAX_SHAPE_AXES = 3


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
    bias: np.ndarray | None = None             # dense: scalar or (out,); conv: (C,) or (C, H, W)
    delay: np.ndarray | None = None            # dense: (out, in) steps, as netx broadcasts it; conv: ignored by netx
    delay_in_file_max: int | None = None       # the largest delay the file asks for, before netx's clamp to 62
    origin: str | None = None                  # 'pool' for a pool our export wrote as a conv
    # An input layer with a neuron: netx's Input.transform (weight, bias), which
    # netx stores and Lava never applies (lava-dl's own PilotNet tests feed
    # weight * image + bias to the neuron themselves); netx's defaults 64, 0.
    input_transform: tuple[int, int] | None = None

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


# ---- Text in messages ---------------------------------------------------------------------

def shown(text, limit: int = SHOWN_CHARS) -> str:
    """``repr(text)`` cut to ``limit`` characters, saying how long it was."""
    r = repr(text)
    if len(r) <= limit:
        return r
    size = f"{len(text):,} characters" if isinstance(text, (str, bytes)) else f"{len(r):,} characters shown"
    return f"{r[:limit]}... ({size})"


def _values_shown(a: np.ndarray) -> str:
    """A short account of an array's values for a message."""
    a = np.asarray(a)
    if a.size <= 4:
        return str(a.tolist())
    return f"{a.size:,} values in {a.min()!r}..{a.max()!r}"


def _short(e: BaseException) -> str:
    return shown(str(e), 2 * SHOWN_CHARS).strip("'\"")


# ---- Safe access to the HDF5 tree ------------------------------------------------------------

# What h5py raises on a damaged file (a bad B-tree node, a truncated chunk, ...).
_H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError)


def _child(group: h5py.Group, name: str, where: str, want: type) -> h5py.Dataset | h5py.Group | None:
    """``group[name]`` if it exists as a hard link to a ``want`` (h5py.Dataset
    or h5py.Group), None if absent. Soft and external links are refused, not
    followed: an external link may name any file, a FIFO included."""
    try:
        link = group.get(name, getlink=True)
    except _H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable ({_short(e)})") from None
    if link is None:
        return None
    if isinstance(link, h5py.SoftLink):
        raise NetFileError(f"{where}: a soft link to {shown(link.path)}; links are not followed")
    if isinstance(link, h5py.ExternalLink):
        raise NetFileError(f"{where}: an external link to {shown(link.filename)}; links are not followed")
    try:
        obj = group[name]
    except _H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable ({_short(e)})") from None
    if not isinstance(obj, want):
        found = "a group" if isinstance(obj, h5py.Group) else "a dataset"
        expected = "a group" if want is h5py.Group else "a dataset"
        raise NetFileError(f"{where}: {found}, expected {expected}")
    if isinstance(obj, h5py.Dataset):
        _check_storage(obj, where)
    return obj


def _required(group: h5py.Group, name: str, where: str, want: type, why: str = ""):
    obj = _child(group, name, where, want)
    if obj is None:
        raise NetFileError(f"{where}: missing{f' ({why})' if why else ''}")
    return obj


def _check_storage(ds: h5py.Dataset, where: str) -> None:
    """Refuse datasets whose data lives elsewhere (external raw files, virtual
    datasets): reading them opens other files, which may be FIFOs."""
    try:
        external, virtual = ds.external, ds.is_virtual
    except _H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable ({_short(e)})") from None
    if external:
        raise NetFileError(f"{where}: its data is stored in other files ({shown(str(external[0][0]))}); "
                           f"not followed")
    if virtual:
        raise NetFileError(f"{where}: a virtual dataset (data mapped from other files); not followed")


def _declared_shape(ds: h5py.Dataset, where: str) -> tuple[int, ...]:
    """The dataset's declared shape, refused if empty-spaced or larger than MAX_DATASET_VALUES."""
    shape = ds.shape
    if shape is None:
        raise NetFileError(f"{where}: holds no data (an empty dataspace)")
    size = math.prod(shape)
    if size > MAX_DATASET_VALUES:
        raise NetFileError(f"{where}: declares {size:,} values {shape}; refusing to read more than "
                           f"{MAX_DATASET_VALUES:,} from one dataset")
    return tuple(int(n) for n in shape)


def _numbers(ds: h5py.Dataset, where: str, integer_dtype: str | None = None) -> np.ndarray:
    """The dataset's numbers, finite, read after checking its dtype and size.
    ``integer_dtype`` (the reason) demands an integer dtype, not just whole values."""
    kind = ds.dtype.kind
    if kind not in "iuf":
        raise NetFileError(f"{where}: not numbers ({_dtype_name(ds.dtype)})")
    if integer_dtype and kind not in "iu":
        raise NetFileError(f"{where}: stored as {ds.dtype}, must be stored as integers ({integer_dtype})")
    _declared_shape(ds, where)
    try:
        a = np.asarray(ds[()])
    except _H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable data ({_short(e)})") from None
    if kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            raise NetFileError(f"{where}: {int(bad.sum())} NaN or infinite values")
    return a


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.kind == "O" or dtype.kind == "S":
        return "strings"
    if dtype.kind == "V":
        return "compound or opaque data"
    return str(dtype)


def _whole_in_range(a: np.ndarray, where: str, lo: float, hi: float, why: str) -> None:
    """Every value a whole number in lo..hi; the message gives the first one that is not."""
    if a.size == 0:
        return
    if a.dtype.kind == "f":
        frac = a != np.trunc(a)
        if frac.any():
            raise NetFileError(f"{where}: {a[frac].flat[0]!r} is not a whole number ({why})")
    low, high = a.min(), a.max()
    if low < lo or high > hi:
        bad = low if low < lo else high
        raise NetFileError(f"{where}: {bad!r} is outside {lo:,}..{hi:,} ({why})")


def _string(ds_parent: h5py.Group, name: str, where: str) -> str:
    """A required one-element ASCII string field (as netx reads it)."""
    ds = _required(ds_parent, name, where, h5py.Dataset)
    kind = ds.dtype.kind
    vlen = h5py.check_string_dtype(ds.dtype)
    if kind != "S" and vlen is None:
        raise NetFileError(f"{where}: not a string ({_dtype_name(ds.dtype)})")
    shape = _declared_shape(ds, where)
    if math.prod(shape) != 1:
        raise NetFileError(f"{where}: {math.prod(shape)} strings {shape}, expected one")
    if kind == "S" and ds.dtype.itemsize > MAX_STRING_BYTES:
        raise NetFileError(f"{where}: a {ds.dtype.itemsize:,}-byte string; no netx field is longer than "
                           f"{MAX_STRING_BYTES}")
    try:
        value = np.asarray(ds[()]).reshape(-1)[0]
    except _H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable data ({_short(e)})") from None
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if len(value) > MAX_STRING_BYTES:
        raise NetFileError(f"{where}: a {len(value):,}-byte string {shown(value)}; no netx field is longer "
                           f"than {MAX_STRING_BYTES}")
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise NetFileError(f"{where}: {shown(value)} is not ASCII (netx decodes it as ASCII)") from None


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
    except _H5_ERRORS as e:
        raise NetFileError(f"{path}: not an HDF5 file ({_short(e)})") from None
    with f:
        try:
            layers = _read_layers(path, f, any_neuron)
        except (OSError, RuntimeError) as e:   # h5py, on a damaged file, where no helper expected it
            raise NetFileError(f"{path}: damaged HDF5 file ({_short(e)})") from None
    if not any(l.is_spiking for l in layers):
        raise NetFileError(f"{path}: no layer with neurons")
    return NetDescription(path, layers)


def _read_layers(path: Path, f: h5py.File, any_neuron: bool) -> list[LayerDesc]:
    group = _child(f, "layer", f"{path}: layer", h5py.Group)
    if group is None:
        raise NetFileError(f"{path}: missing group 'layer' (not a netx network description)")
    try:
        names = list(group.keys())
    except _H5_ERRORS as e:
        raise NetFileError(f"{path}: layer: unreadable ({_short(e)})") from None
    numbered = [k for k in names if k.isascii() and k.isdigit()]
    keys = sorted(numbered, key=int)
    if not keys or len(numbered) != len(names) or [int(k) for k in keys] != list(range(len(keys))):
        raise NetFileError(f"{path}: 'layer' must hold subgroups 0..N-1, found {shown(names)}")
    layers: list[LayerDesc] = []
    shape: tuple[int, ...] | None = None
    for k in keys:
        g = _child(group, k, f"{path}: layer/{k}", h5py.Group)
        layer = _read_layer(path, g, int(k), shape, any_neuron)
        layers.append(layer)
        shape = layer.shape
    return layers


def _read_layer(path: Path, g: h5py.Group, index: int, prev_shape, any_neuron: bool = False) -> LayerDesc:
    where = f"{path}: layer/{index}"
    kind = _string(g, "type", f"{where}/type")
    if kind in NETX_UNSUPPORTED:
        raise NetFileError(f"{where}/type: '{kind}' layers cannot be deployed (netx 0.6.0 does not "
                           f"implement them; lavasparse exports pooling as a grouped conv)")
    if kind not in SUPPORTED:
        raise NetFileError(f"{where}/type: unsupported layer type {shown(kind)} (supported: {SUPPORTED})")
    recurrent = kind == "dense_rec"
    kind = "dense" if recurrent else kind
    if kind == "flatten":
        if prev_shape is None:
            raise NetFileError(f"{where}: flatten cannot be the first layer")
        return LayerDesc(index, kind, (int(np.prod(prev_shape)),), prev_shape)
    shape = _read_shape(g, f"{where}/shape")
    if kind == "dense":
        # netx builds a dense layer flat, (prod(shape),), whatever the file's
        # shape says: lava-dl's own pilotnet_lif stores its dense layers as
        # (100, 1, 1), ... and Lava's spikes for them are (100,).
        shape = (int(np.prod(shape)),)
    ng = _child(g, "neuron", f"{where}/neuron", h5py.Group)
    neuron = _read_neuron(f"{where}/neuron", ng, shape, any_neuron) if ng is not None else None
    desc = LayerDesc(index, kind, shape, prev_shape, neuron=neuron, origin=_read_origin(g))
    if kind == "input":
        if index != 0:
            raise NetFileError(f"{where}/type: an input layer must come first")
        if neuron is not None:
            desc.input_transform = _read_input_transform(g, where)
        return desc
    if prev_shape is None:
        raise NetFileError(f"{where}: a {kind} layer needs an input layer before it "
                           f"(with 'shape') to know its input size")
    if neuron is None:
        if kind != "dense":
            raise NetFileError(f"{where}/neuron: missing")
        desc.neuron = dict(NETX_DEFAULT_DENSE_NEURON)
    if kind == "dense":
        _read_dense(desc, g, where, recurrent)
    else:
        _read_conv(desc, g, where)
    desc.bias = _read_bias(desc, g, where)
    return desc


def _read_shape(g: h5py.Group, where: str) -> tuple[int, ...]:
    ds = _required(g, "shape", where, h5py.Dataset)
    declared = _declared_shape(ds, where)
    if len(declared) != 1 or not 1 <= declared[0] <= MAX_SHAPE_AXES:
        raise NetFileError(f"{where}: must list 1 to {MAX_SHAPE_AXES} sizes, (C, H, W) or (features,); "
                           f"found a dataset of shape {declared}")
    a = _numbers(ds, where, integer_dtype="netx hands it to Lava unconverted")
    _whole_in_range(a, where, 1, MAX_DATASET_VALUES, "layer sizes")
    shape = tuple(int(v) for v in a)
    if math.prod(shape) > MAX_DATASET_VALUES:
        raise NetFileError(f"{where}: {shape} is {math.prod(shape):,} neurons; lavasparse reads layers of up "
                           f"to {MAX_DATASET_VALUES:,}")
    return shape


def _read_origin(g: h5py.Group) -> str | None:
    """Our export's marker for a pool written as a conv; anything else is ignored."""
    try:
        if "lavasparse_origin" not in g.attrs or g.attrs.get_id("lavasparse_origin").get_storage_size() > 16:
            return None
        value = g.attrs["lavasparse_origin"]
    except _H5_ERRORS:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return "pool" if value == "pool" else None


NETX_INPUT_TRANSFORM_DEFAULT = {"weight": 64, "bias": 0}   # hdf5.Network.create_input


def _read_input_transform(g: h5py.Group, where: str) -> tuple[int, int]:
    """An input layer's (weight, bias) as netx's create_input reads them: int()
    of one finite number each (and then stored, not applied), netx's defaults
    where absent."""
    out = []
    for name in ("weight", "bias"):
        ds = _child(g, name, f"{where}/{name}", h5py.Dataset)
        if ds is None:
            out.append(NETX_INPUT_TRANSFORM_DEFAULT[name])
            continue
        a = _numbers(ds, f"{where}/{name}")
        if a.size != 1:
            raise NetFileError(f"{where}/{name}: {a.size} values; netx reads an input layer's {name} as one number")
        out.append(int(a.reshape(-1)[0]))
    return out[0], out[1]


# ---- Synapses -----------------------------------------------------------------------------

def _read_matrix(g: h5py.Group, name: str, where: str, n_out: int, n_in: int, why: str = "") -> np.ndarray:
    """A dense (n_out, n_in) weight matrix, or its flat (n_out * n_in,) form,
    as netx reshapes it; its declared shape is checked before it is read."""
    ds = _required(g, name, where, h5py.Dataset, why)
    shape = _declared_shape(ds, where)
    if shape not in ((n_out, n_in), (n_out * n_in,)):
        raise NetFileError(f"{where}: shape {shape} does not fit {n_in} inputs and {n_out} neurons "
                           f"(expected {(n_out, n_in)})")
    w = _numbers(ds, where).reshape(n_out, n_in)
    _whole_in_range(w, where, -MAX_ABS_WEIGHT, MAX_ABS_WEIGHT,
                    "weights are integers; netx truncates fractions silently")
    return w


def _read_dense(desc: LayerDesc, g: h5py.Group, where: str, recurrent: bool) -> None:
    prev_shape = desc.in_shape
    n_out, n_in = desc.shape[0], int(np.prod(prev_shape))
    # netx connects a (C, 1, 1) conv output straight to a dense layer (the
    # orders agree when H = W = 1; lava-dl's own pilotnet and ntidigits
    # networks do this); any other shape needs a flatten between.
    if len(prev_shape) != 1 and tuple(prev_shape[1:]) != (1, 1):
        raise NetFileError(f"{where}: dense layer after a {prev_shape} layer needs a flatten layer between")
    desc.weight = _read_matrix(g, "weight", f"{where}/weight", n_out, n_in)
    if recurrent:
        desc.weight_rec = _read_matrix(g, "weight_rec", f"{where}/weight_rec", n_out, n_out,
                                       "a dense_rec layer needs its recurrent weights")
    if not desc.weight.any() and (desc.weight_rec is None or not desc.weight_rec.any()):
        # netx's optimize_weight_bits divides by the largest weight: Lava cannot build this layer.
        raise NetFileError(f"{where}/weight: all zero (netx 0.6.0 cannot scale an all-zero weight matrix)")
    ds = _child(g, "delay", f"{where}/delay", h5py.Dataset)
    if ds is not None:
        desc.delay, desc.delay_in_file_max = _read_delay(f"{where}/delay", ds, desc.weight.shape)
        if recurrent and desc.weight.shape != desc.weight_rec.shape:
            # netx hands the same delay matrix to both synapses, and Lava's
            # DelayDense rejects it for the recurrent one.
            raise NetFileError(f"{where}/delay: netx applies one delay matrix to the input and the "
                               f"recurrent weights, which needs as many inputs as neurons "
                               f"({desc.weight.shape[1]} vs {desc.weight.shape[0]})")


def _read_delay(where: str, ds: h5py.Dataset, weight_shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Delays per synapse (out, in), broadcast as netx 0.6.0's create_dense does:
    a scalar for all, (out,) per neuron, (in,) per input, or the full matrix;
    values above 62 are clamped there (with a warning) and so here. Returns
    (delays, the largest delay in the file, taken from the raw values before
    any cast: 1e30 must not become a negative int64)."""
    out, n_in = weight_shape
    shape = _declared_shape(ds, where)
    if shape not in ((), (out,), (n_in,), weight_shape):
        raise NetFileError(f"{where}: shape {shape} fits neither the weights {weight_shape}, "
                           f"their {out} outputs nor their {n_in} inputs")
    d = _numbers(ds, where)
    if d.size and d.min() < 0:
        raise NetFileError(f"{where}: negative delay {d.min()!r} (Lava's DelayDense takes 0..{MAX_DELAY})")
    _whole_in_range(d, where, 0, math.inf, "delays are whole steps; netx truncates fractions silently")
    in_file = int(d.max()) if d.size else 0
    if in_file > MAX_DELAY:
        warnings.warn(f"{where}: max delay {in_file:,} > {MAX_DELAY}; netx clamps it, and so do we")
    d = np.clip(d, 0, MAX_DELAY).astype(np.int64)    # clamp first, then cast: the order netx uses
    if d.ndim == 0:
        d = np.full(weight_shape, int(d))
    elif d.ndim == 1 and d.size == out:      # netx checks the output count first
        d = np.repeat(d.reshape(-1, 1), n_in, axis=1)
    elif d.ndim == 1 and d.size == n_in:
        d = np.repeat(d.reshape(1, -1), out, axis=0)
    return d, in_file


def _read_pair(g: h5py.Group, name: str, where: str, lo: int) -> tuple[int, int]:
    """A conv's stride, padding or dilation: one value or (H, W), as netx expands it."""
    ds = _required(g, name, where, h5py.Dataset, "netx 0.6.0 reads it for every conv layer")
    shape = _declared_shape(ds, where)
    if len(shape) > 1 or math.prod(shape) not in (1, 2):
        raise NetFileError(f"{where}: expected one value or two (H, W), found a dataset of shape {shape}")
    a = _numbers(ds, where, integer_dtype="netx hands it to Lava's Conv unconverted").reshape(-1)
    _whole_in_range(a, where, lo, MAX_CONV_PARAM, "Lava's Conv model holds it in an int8")
    return (int(a[0]), int(a[-1]))


def _read_groups(g: h5py.Group, where: str) -> int:
    ds = _required(g, "groups", where, h5py.Dataset, "netx 0.6.0 reads it for every conv layer")
    if _declared_shape(ds, where) != ():
        raise NetFileError(f"{where}: must be a scalar (Lava's Conv refuses anything else), found shape {ds.shape}")
    a = _numbers(ds, where, integer_dtype="netx hands it to Lava's Conv unconverted")
    _whole_in_range(a, where, 1, MAX_CONV_PARAM, "Lava's Conv model holds it in an int8")
    return int(a)


def _read_conv(desc: LayerDesc, g: h5py.Group, where: str) -> None:
    prev_shape, shape = desc.in_shape, desc.shape
    if len(prev_shape) != 3 or len(shape) != 3:
        raise NetFileError(f"{where}/shape: conv needs (C, H, W) shapes, got input {prev_shape}, output {shape}")
    if _child(g, "delay", f"{where}/delay", h5py.Dataset) is not None:
        warnings.warn(f"{where}/delay: netx 0.6.0 ignores delays on conv layers (so does Lava, and so do we)")
    desc.stride = _read_pair(g, "stride", f"{where}/stride", 1)
    desc.padding = _read_pair(g, "padding", f"{where}/padding", 0)
    desc.dilation = _read_pair(g, "dilation", f"{where}/dilation", 1)
    desc.groups = _read_groups(g, f"{where}/groups")
    ds = _required(g, "weight", f"{where}/weight", h5py.Dataset)
    wshape = _declared_shape(ds, f"{where}/weight")
    if len(wshape) == 5 and wshape[4] == 1:      # SLAYER writes (out, in, kH, kW, 1)
        wshape = wshape[:4]
    if len(wshape) != 4 or min(wshape) < 1:
        raise NetFileError(f"{where}/weight: conv weight must be (out, in/groups, kH, kW), got {ds.shape}")
    c_in, c_out = prev_shape[0], shape[0]
    if wshape[0] != c_out or wshape[1] * desc.groups != c_in or c_out % desc.groups:
        raise NetFileError(f"{where}/weight: shape {wshape} with groups={desc.groups} does not map "
                           f"{c_in} input channels to {c_out} output channels (both must divide by groups)")
    if max(wshape[2:]) > MAX_CONV_PARAM:
        raise NetFileError(f"{where}/weight: kernel {wshape[2:]} beyond {MAX_CONV_PARAM} (Lava's Conv model "
                           f"holds the kernel size in an int8)")
    expected = tuple(
        (prev_shape[1 + i] + 2 * desc.padding[i] - desc.dilation[i] * (wshape[2 + i] - 1) - 1)
        // desc.stride[i] + 1 for i in range(2))
    if expected != shape[1:]:
        raise NetFileError(f"{where}/shape: {shape} but the conv of a {prev_shape} input gives "
                           f"{(shape[0], *expected)}")
    w = _numbers(ds, f"{where}/weight").reshape(wshape)
    _whole_in_range(w, f"{where}/weight", -MAX_ABS_WEIGHT, MAX_ABS_WEIGHT,
                    "weights are integers; netx truncates fractions silently")
    desc.weight = w


def _read_bias(desc: LayerDesc, g: h5py.Group, where: str) -> np.ndarray | None:
    """The bias mantissa in the shapes netx's blocks accept: a dense layer's
    scalar or one per neuron; a conv's one per channel (C,) or one per neuron
    in Lava's (W, H, C) order, returned in ours, (C, H, W)."""
    ds = _child(g, "bias", f"{where}/bias", h5py.Dataset)
    if ds is None:
        return None
    shape = _declared_shape(ds, f"{where}/bias")
    lava_shape = tuple(reversed(desc.shape))
    if desc.kind == "dense":
        ok = shape in ((), (1,), desc.shape)
        allowed = f"one value or {desc.shape[0]}"
    else:
        ok = shape in ((desc.shape[0],), lava_shape)
        allowed = f"({desc.shape[0]},) per channel or {lava_shape} per neuron, in Lava's (W, H, C) order"
    if not ok:
        raise NetFileError(f"{where}/bias: shape {shape} does not fit the layer's {desc.shape} neurons "
                           f"(netx takes {allowed})")
    b = _numbers(ds, f"{where}/bias")
    _whole_in_range(b, f"{where}/bias", *BIAS_RANGE,
                    "Lava's LIF holds bias_mant in an int16; netx truncates fractions silently")
    if b.ndim == 3:      # per neuron, (W, H, C) -> (C, H, W)
        b = b.transpose(2, 1, 0)
    return b


# ---- Neurons ------------------------------------------------------------------------------

# CUBA/LOIHI neuron fields netx 0.6.0 passes to Lava's LIF: (lowest, highest, why).
LIF_FIELD_RANGES = {"iDecay": (0, MAX_DECAY, "a decay in 4096ths"), "vDecay": (0, MAX_DECAY, "a decay in 4096ths"),
                    "vThMant": (1, MAX_THRESHOLD_MANT, "Lava shifts it left by 6 in int32")}
# CUBA/LOIHI neuron fields netx 0.6.0 ignores, and the value under which
# ignoring them changes nothing: any other value would silently not happen.
IGNORED_NEURON_FIELDS = {"refDelay": 1, "wgtExp": 0, "gradedSpike": 0}
# Numeric fields of other neuron types (SDNN, RF, ...) that ``check`` reads.
OTHER_NEURON_NUMBERS = ("vThMant", "iDecay", "vDecay")


def _neuron_values(ng: h5py.Group, key: str, where: str, shape: tuple[int, ...], integer_dtype: str | None):
    """A neuron parameter: one value for the layer, or one per neuron of a
    flat layer (Lava's LIF broadcasts an (n,) parameter over (n,) neurons only)."""
    ds = _required(ng, key, where, h5py.Dataset)
    declared = _declared_shape(ds, where)
    size = math.prod(declared)
    if size != 1 and not (len(shape) == 1 and declared == shape):
        raise NetFileError(f"{where}: {size} values {declared}; netx takes one value"
                           + (f" or {shape[0]} (one per neuron)" if len(shape) == 1 else " for a layer of this shape"))
    a = _numbers(ds, where, integer_dtype)
    return a.item() if a.size == 1 else a


def _read_neuron(where: str, ng: h5py.Group, shape: tuple[int, ...], any_neuron: bool = False) -> dict:
    neuron_type = _string(ng, "type", f"{where}/type")
    if neuron_type not in ("CUBA", "LOIHI"):
        if not any_neuron:
            raise NetFileError(f"{where}/type: {shown(neuron_type)} neurons are not modelled by lavasparse "
                               f"(CUBA and LOIHI are)")
        neuron = {"type": neuron_type}
        for key in OTHER_NEURON_NUMBERS:
            if _child(ng, key, f"{where}/{key}", h5py.Dataset) is not None:
                neuron[key] = _neuron_values(ng, key, f"{where}/{key}", shape, None)
        return neuron
    for key in NEURON_FIELDS:
        if _child(ng, key, f"{where}/{key}", h5py.Dataset) is None:
            raise NetFileError(f"{where}/{key}: missing")
    if _child(ng, "messageBits", f"{where}/messageBits", h5py.Dataset) is not None:
        # netx 0.6.0's NetDict does not list messageBits among its number
        # fields, so it hands the block a group, and Lava fails to compile
        # ("'>' not supported between instances of 'NetDict' and 'int'").
        raise NetFileError(f"{where}/messageBits: netx 0.6.0 cannot read this field (graded "
                           f"output spikes); remove it. Graded input spikes are set with "
                           f"input_message_bits when the network is run.")
    # netx hands these to Lava's LIF unconverted, and its fixed-point model
    # shifts them: a float there (even 80.0) stops the run in a worker process.
    integer = "netx hands it to Lava's fixed-point LIF unconverted"
    neuron = {"type": neuron_type}
    for key, (lo, hi, why) in LIF_FIELD_RANGES.items():
        neuron[key] = _neuron_values(ng, key, f"{where}/{key}", shape, integer)
        _whole_in_range(np.asarray(neuron[key]), f"{where}/{key}", lo, hi, why)
    for key, value in IGNORED_NEURON_FIELDS.items():
        if _child(ng, key, f"{where}/{key}", h5py.Dataset) is None:
            continue
        ds = ng[key]
        if _declared_shape(ds, f"{where}/{key}") not in ((), (1,)):
            raise NetFileError(f"{where}/{key}: expected one value, found shape {ds.shape}")
        a = np.asarray(ds[()]) if ds.dtype.kind == "b" else _numbers(ds, f"{where}/{key}")
        if a.item() != value:
            raise NetFileError(f"{where}/{key}: {a.item()!r}; netx 0.6.0 ignores this field, so only "
                               f"{value!r} runs as the file says")
        neuron[key] = a.item()
    return neuron


def describe(desc: NetDescription) -> list[dict]:
    """One row per layer: name, type, shape, neurons, weights, weight bits, exponent."""
    rows = []
    for layer in desc.layers:
        fmt = weight_format(layer)
        rows.append({
            "name": layer.name, "type": layer.kind, "shape": list(layer.shape),
            "neurons": layer.num_neurons if layer.is_spiking else 0,
            "weights": int(layer.weight.size) if layer.weight is not None else 0,
            "weight_bits": fmt.weight_bits if fmt else None,
            "weight_exponent": fmt.weight_exponent if fmt else None,
            "sign_mode": fmt.sign_mode if fmt else None,
            "groups": layer.groups if layer.kind == "conv" else None,
        })
    return rows
