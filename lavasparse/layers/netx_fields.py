"""Safe, validating access to the fields of a netx HDF5 file: the helpers
every layer kind's reader uses, the limits they apply, and the error they
raise.

Lava's process models run in worker processes, and an exception there (a
float threshold that cannot be shifted, a negative padding) leaves the
runtime waiting for good; values that overflow Lava's fields (int8 conv
parameters, int16 biases) are silently wrapped. So every field is checked,
before its data is read where it can be, for kind (dataset or group, never
through a link), dtype, declared shape and size, finiteness, whole numbers
and range, against the limits below. Every error names the file, the layer
and the field; text from the file is cut short in messages.
"""
from __future__ import annotations

import math

import h5py
import numpy as np

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


class UnsupportedNetwork(ValueError):
    """The network holds something the emulator does not model exactly, or
    NIR cannot hold."""


# ---- Text in messages ---------------------------------------------------------------------

def shown(text, limit: int = SHOWN_CHARS) -> str:
    """``repr(text)`` cut to ``limit`` characters, saying how long it was."""
    r = repr(text)
    if len(r) <= limit:
        return r
    size = f"{len(text):,} characters" if isinstance(text, (str, bytes)) else f"{len(r):,} characters shown"
    return f"{r[:limit]}... ({size})"


def short(e: BaseException) -> str:
    return shown(str(e), 2 * SHOWN_CHARS).strip("'\"")


# ---- Safe access to the HDF5 tree ------------------------------------------------------------

# What h5py raises on a damaged file (a bad B-tree node, a truncated chunk, ...).
H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError)


def child(group: h5py.Group, name: str, where: str, want: type) -> h5py.Dataset | h5py.Group | None:
    """``group[name]`` if it exists as a hard link to a ``want`` (h5py.Dataset
    or h5py.Group), None if absent. Soft and external links are refused, not
    followed: an external link may name any file, a FIFO included."""
    try:
        link = group.get(name, getlink=True)
    except H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable ({short(e)})") from None
    if link is None:
        return None
    if isinstance(link, h5py.SoftLink):
        raise NetFileError(f"{where}: a soft link to {shown(link.path)}; links are not followed")
    if isinstance(link, h5py.ExternalLink):
        raise NetFileError(f"{where}: an external link to {shown(link.filename)}; links are not followed")
    try:
        obj = group[name]
    except H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable ({short(e)})") from None
    if not isinstance(obj, want):
        found = "a group" if isinstance(obj, h5py.Group) else "a dataset"
        expected = "a group" if want is h5py.Group else "a dataset"
        raise NetFileError(f"{where}: {found}, expected {expected}")
    if isinstance(obj, h5py.Dataset):
        check_storage(obj, where)
    return obj


def required(group: h5py.Group, name: str, where: str, want: type, why: str = ""):
    obj = child(group, name, where, want)
    if obj is None:
        raise NetFileError(f"{where}: missing{f' ({why})' if why else ''}")
    return obj


def check_storage(ds: h5py.Dataset, where: str) -> None:
    """Refuse datasets whose data lives elsewhere (external raw files, virtual
    datasets): reading them opens other files, which may be FIFOs."""
    try:
        external, virtual = ds.external, ds.is_virtual
    except H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable ({short(e)})") from None
    if external:
        raise NetFileError(f"{where}: its data is stored in other files ({shown(str(external[0][0]))}); "
                           f"not followed")
    if virtual:
        raise NetFileError(f"{where}: a virtual dataset (data mapped from other files); not followed")


def declared_shape(ds: h5py.Dataset, where: str) -> tuple[int, ...]:
    """The dataset's declared shape, refused if empty-spaced or larger than MAX_DATASET_VALUES."""
    shape = ds.shape
    if shape is None:
        raise NetFileError(f"{where}: holds no data (an empty dataspace)")
    size = math.prod(shape)
    if size > MAX_DATASET_VALUES:
        raise NetFileError(f"{where}: declares {size:,} values {shape}; refusing to read more than "
                           f"{MAX_DATASET_VALUES:,} from one dataset")
    return tuple(int(n) for n in shape)


def numbers(ds: h5py.Dataset, where: str, integer_dtype: str | None = None) -> np.ndarray:
    """The dataset's numbers, finite, read after checking its dtype and size.
    ``integer_dtype`` (the reason) demands an integer dtype, not just whole values."""
    kind = ds.dtype.kind
    if kind not in "iuf":
        raise NetFileError(f"{where}: not numbers ({dtype_name(ds.dtype)})")
    if integer_dtype and kind not in "iu":
        raise NetFileError(f"{where}: stored as {ds.dtype}, must be stored as integers ({integer_dtype})")
    declared_shape(ds, where)
    try:
        a = np.asarray(ds[()])
    except H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable data ({short(e)})") from None
    if kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            raise NetFileError(f"{where}: {int(bad.sum())} NaN or infinite values")
    return a


def dtype_name(dtype: np.dtype) -> str:
    if dtype.kind == "O" or dtype.kind == "S":
        return "strings"
    if dtype.kind == "V":
        return "compound or opaque data"
    return str(dtype)


def whole_in_range(a: np.ndarray, where: str, lo: float, hi: float, why: str) -> None:
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


def string(ds_parent: h5py.Group, name: str, where: str) -> str:
    """A required one-element ASCII string field (as netx reads it)."""
    ds = required(ds_parent, name, where, h5py.Dataset)
    kind = ds.dtype.kind
    vlen = h5py.check_string_dtype(ds.dtype)
    if kind != "S" and vlen is None:
        raise NetFileError(f"{where}: not a string ({dtype_name(ds.dtype)})")
    shape = declared_shape(ds, where)
    if math.prod(shape) != 1:
        raise NetFileError(f"{where}: {math.prod(shape)} strings {shape}, expected one")
    if kind == "S" and ds.dtype.itemsize > MAX_STRING_BYTES:
        raise NetFileError(f"{where}: a {ds.dtype.itemsize:,}-byte string; no netx field is longer than "
                           f"{MAX_STRING_BYTES}")
    try:
        value = np.asarray(ds[()]).reshape(-1)[0]
    except H5_ERRORS as e:
        raise NetFileError(f"{where}: unreadable data ({short(e)})") from None
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if len(value) > MAX_STRING_BYTES:
        raise NetFileError(f"{where}: a {len(value):,}-byte string {shown(value)}; no netx field is longer "
                           f"than {MAX_STRING_BYTES}")
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise NetFileError(f"{where}: {shown(value)} is not ASCII (netx decodes it as ASCII)") from None


def read_shape(g: h5py.Group, where: str) -> tuple[int, ...]:
    ds = required(g, "shape", where, h5py.Dataset)
    declared = declared_shape(ds, where)
    if len(declared) != 1 or not 1 <= declared[0] <= MAX_SHAPE_AXES:
        raise NetFileError(f"{where}: must list 1 to {MAX_SHAPE_AXES} sizes, (C, H, W) or (features,); "
                           f"found a dataset of shape {declared}")
    a = numbers(ds, where, integer_dtype="netx hands it to Lava unconverted")
    whole_in_range(a, where, 1, MAX_DATASET_VALUES, "layer sizes")
    shape = tuple(int(v) for v in a)
    if math.prod(shape) > MAX_DATASET_VALUES:
        raise NetFileError(f"{where}: {shape} is {math.prod(shape):,} neurons; lavasparse reads layers of up "
                           f"to {MAX_DATASET_VALUES:,}")
    return shape


def read_origin(g: h5py.Group) -> str | None:
    """Our export's marker for a pool written as a conv; anything else is ignored."""
    try:
        if "lavasparse_origin" not in g.attrs or g.attrs.get_id("lavasparse_origin").get_storage_size() > 16:
            return None
        value = g.attrs["lavasparse_origin"]
    except H5_ERRORS:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return "pool" if value == "pool" else None
