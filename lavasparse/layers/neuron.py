"""The neuron of a netx layer: a typed object, read and validated from the file.

Only CUBA and LOIHI neurons (Lava's fixed-point LIF) are modelled by the
emulator, the profiler and the current-overflow analysis; other types (SDNN,
RF, ...) are read for ``lavasparse check``, which needs only the structure.
"""
from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from .netx_fields import (MAX_DECAY, MAX_THRESHOLD_MANT, NetFileError, UnsupportedNetwork, child, declared_shape,
                          numbers, required, shown, string, whole_in_range)

LIF_TYPES = ("CUBA", "LOIHI")
# Fields a CUBA/LOIHI neuron must have.
NEURON_FIELDS = ("type", "iDecay", "vDecay", "vThMant")
# CUBA/LOIHI neuron fields netx 0.6.0 passes to Lava's LIF: (lowest, highest, why).
LIF_FIELD_RANGES = {"iDecay": (0, MAX_DECAY, "a decay in 4096ths"), "vDecay": (0, MAX_DECAY, "a decay in 4096ths"),
                    "vThMant": (1, MAX_THRESHOLD_MANT, "Lava shifts it left by 6 in int32")}
# CUBA/LOIHI neuron fields netx 0.6.0 ignores, and the value under which
# ignoring them changes nothing: any other value would silently not happen.
IGNORED_NEURON_FIELDS = {"refDelay": 1, "wgtExp": 0, "gradedSpike": 0}
# Numeric fields of other neuron types (SDNN, RF, ...) that ``check`` reads.
OTHER_NEURON_NUMBERS = ("vThMant", "iDecay", "vDecay")


@dataclass
class Neuron:
    """A layer's neurons as netx describes them. CUBA/LOIHI (Lava's
    fixed-point LIF, 24-bit states, per step t):

        u[t] = u[t-1] * (4096 - i_decay) / 4096 + (a_in[t] << 6)
        v[t] = v[t-1] * (4096 - v_decay) / 4096 + u[t] + (bias << 6)
        spike, and v[t] = 0, when v[t] > v_th_mant << 6

    Each parameter is one integer for the layer, or an array with one per
    neuron. Another neuron type keeps whichever of the three its file has
    (None for the rest). Fields netx reads but does not apply (refDelay,
    wgtExp, gradedSpike) are accepted only at the values under which that
    changes nothing (``read_neuron``), so none is kept."""

    type: str
    i_decay: int | np.ndarray | None = None     # current decay, 4096ths per step
    v_decay: int | np.ndarray | None = None     # voltage decay, 4096ths per step
    v_th_mant: int | np.ndarray | None = None   # threshold mantissa (x 64 in the voltage's units)

    @property
    def is_lif(self) -> bool:
        """A CUBA/LOIHI neuron: what the emulator, the profiler and the current analysis model."""
        return self.type in LIF_TYPES

    def nir_node(self, shape: tuple[int, ...], dt: float, bias=None, where: str = "neuron"):
        """This neuron as NIR's continuous-time node, for a reader that
        discretises it with forward Euler at ``dt`` seconds per step (as
        snnTorch's reader and NIR's own reference do), every value on
        SLAYER's scale (the file's integers / 64, weights and threshold alike),
        reset to zero. With a = i_decay / 4096 and c = v_decay / 4096:

            CubaLIF: tau_syn = dt / a, w_in = tau_syn / dt, tau_mem = dt / c, r = tau_mem / dt
                     (Euler: I += -a I + S; v += -c v + I), when the current persists (a < 1);
            LIF:     tau = dt / c, r = tau / dt, when it does not (a = 1: I = S each step);
            IF:      r = 1 / dt, when neither the current persists nor the voltage leaks (c = 0).

        A bias b (the file's mantissa) adds b / 64 to v every step: v_leak = (b / 64) tau_mem / dt.
        Refused (UnsupportedNetwork, naming ``where`` and the field): a current
        that never decays (a = 0), a non-leaking voltage under a persisting
        current, and a bias on an IF neuron, none of which NIR's nodes hold
        with finite parameters."""
        import nir   # only where NIR is written: reading and checking a file need it not

        if not self.is_lif:
            raise UnsupportedNetwork(f"{where}/type: {self.type} neurons have no NIR node here (CUBA and LOIHI do)")
        full = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), shape).copy()   # noqa: E731
        a, c = full(self.i_decay) / MAX_DECAY, full(self.v_decay) / MAX_DECAY
        threshold = full(self.v_th_mant) / 64
        per_step_bias = full(0 if bias is None else bias) / 64
        if (a == 0).any():
            raise UnsupportedNetwork(f"{where}/iDecay: 0 (a current that never decays) has no NIR node with "
                                     f"finite tau_syn and w_in")
        if (a < 1).any():
            if (c == 0).any():
                raise UnsupportedNetwork(f"{where}/vDecay: 0 under a decaying current; NIR's CubaLIF needs a "
                                         f"finite tau_mem")
            tau_syn, tau_mem = dt / a, dt / c
            return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=per_step_bias * tau_mem / dt,
                               v_threshold=threshold, v_reset=np.zeros(shape), w_in=tau_syn / dt)
        if (c > 0).all():
            tau = dt / c
            return nir.LIF(tau=tau, r=tau / dt, v_leak=per_step_bias * tau / dt, v_threshold=threshold,
                           v_reset=np.zeros(shape))
        if (c > 0).any():
            raise UnsupportedNetwork(f"{where}/vDecay: 0 for some neurons and not others (NIR's LIF and IF are "
                                     f"one node each)")
        if per_step_bias.any():
            raise UnsupportedNetwork(f"{where}: a bias on a neuron whose voltage does not leak (NIR's IF has no "
                                     f"v_leak)")
        return nir.IF(r=np.full(shape, 1 / dt), v_threshold=threshold, v_reset=np.zeros(shape))


# What netx 0.6.0 gives a dense layer whose description has no neuron: a
# non-leaky integrator (hdf5.Network.create_dense). Note ``1 << 18 - 1`` there
# is ``1 << 17`` by Python's precedence.
def netx_default_dense_neuron() -> Neuron:
    return Neuron("CUBA", i_decay=0, v_decay=4096, v_th_mant=1 << 17)


_NETX_KEYS = {"iDecay": "i_decay", "vDecay": "v_decay", "vThMant": "v_th_mant"}


def _neuron_values(ng: h5py.Group, key: str, where: str, shape: tuple[int, ...], integer_dtype: str | None):
    """A neuron parameter: one value for the layer, or one per neuron of a
    flat layer (Lava's LIF broadcasts an (n,) parameter over (n,) neurons only)."""
    ds = required(ng, key, where, h5py.Dataset)
    declared = declared_shape(ds, where)
    size = int(np.prod(declared))
    if size != 1 and not (len(shape) == 1 and declared == shape):
        raise NetFileError(f"{where}: {size} values {declared}; netx takes one value"
                           + (f" or {shape[0]} (one per neuron)" if len(shape) == 1 else " for a layer of this shape"))
    a = numbers(ds, where, integer_dtype)
    return a.item() if a.size == 1 else a


def read_neuron(where: str, ng: h5py.Group, shape: tuple[int, ...], any_neuron: bool = False) -> Neuron:
    """The neuron group ``ng`` of a layer of ``shape``; raise NetFileError naming ``where`` and the field."""
    neuron_type = string(ng, "type", f"{where}/type")
    if neuron_type not in LIF_TYPES:
        if not any_neuron:
            raise NetFileError(f"{where}/type: {shown(neuron_type)} neurons are not modelled by lavasparse "
                               f"(CUBA and LOIHI are)")
        values = {_NETX_KEYS[key]: _neuron_values(ng, key, f"{where}/{key}", shape, None)
                  for key in OTHER_NEURON_NUMBERS if child(ng, key, f"{where}/{key}", h5py.Dataset) is not None}
        return Neuron(neuron_type, **values)
    for key in NEURON_FIELDS:
        if child(ng, key, f"{where}/{key}", h5py.Dataset) is None:
            raise NetFileError(f"{where}/{key}: missing")
    if child(ng, "messageBits", f"{where}/messageBits", h5py.Dataset) is not None:
        # netx 0.6.0's NetDict does not list messageBits among its number
        # fields, so it hands the block a group, and Lava fails to compile
        # ("'>' not supported between instances of 'NetDict' and 'int'").
        raise NetFileError(f"{where}/messageBits: netx 0.6.0 cannot read this field (graded "
                           f"output spikes); remove it. Graded input spikes are set with "
                           f"input_message_bits when the network is run.")
    # netx hands these to Lava's LIF unconverted, and its fixed-point model
    # shifts them: a float there (even 80.0) stops the run in a worker process.
    integer = "netx hands it to Lava's fixed-point LIF unconverted"
    values = {}
    for key, (lo, hi, why) in LIF_FIELD_RANGES.items():
        values[_NETX_KEYS[key]] = _neuron_values(ng, key, f"{where}/{key}", shape, integer)
        whole_in_range(np.asarray(values[_NETX_KEYS[key]]), f"{where}/{key}", lo, hi, why)
    for key, value in IGNORED_NEURON_FIELDS.items():
        if child(ng, key, f"{where}/{key}", h5py.Dataset) is None:
            continue
        ds = ng[key]
        if declared_shape(ds, f"{where}/{key}") not in ((), (1,)):
            raise NetFileError(f"{where}/{key}: expected one value, found shape {ds.shape}")
        a = np.asarray(ds[()]) if ds.dtype.kind == "b" else numbers(ds, f"{where}/{key}")
        if a.item() != value:
            raise NetFileError(f"{where}/{key}: {a.item()!r}; netx 0.6.0 ignores this field, so only "
                               f"{value!r} runs as the file says")
    return Neuron(neuron_type, **values)
