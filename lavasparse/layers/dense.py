"""Dense layers (netx ``dense``) and recurrent dense layers (``dense_rec``).

Synaptic input of neuron i at step t (Lava's fixed-point Dense, after
netx's ``optimize_weight_bits``: 8-bit mantissas and one exponent e per
layer; with delays, DelayDense):

    a_i[t] = sum_d (sum_j W_d[i, j] s_j[t - d]) >> -e     (>> is floor)

and, for ``dense_rec``, plus the same sum over the layer's own spikes of step
t - 1 through ``weight_rec``. A recurrent layer's two matrices are optimised
together (one exponent).
"""
from __future__ import annotations

import functools
import math
import re
import warnings
from dataclasses import dataclass

import h5py
import numpy as np

from .base import (ChipUse, Layer, LayerSpec, Synapse, UnsupportedNetwork, Violate, exact_float, max_input_current,
                   slayer_cuba, synaptic_ops)
from .flatten import FlattenSpec
from .netx_fields import (MAX_ABS_WEIGHT, MAX_DELAY, NetFileError, child, declared_shape, numbers, read_origin,
                          read_shape, required, whole_in_range)
from .netx_weights import WeightFormat, lava_weights, netx_needs_clipping, netx_scaled
from .neuron import netx_default_dense_neuron

DELAY_BITS = 6   # synaptic memory per synapse of a layer with delays (our mapping's assumption)


class DenseSynapse(Synapse):
    """Lava's Dense (one weight matrix) or DelayDense (one per delay)."""

    def compute(self, x, steps: int, bound: int):
        if self.graded and bound >= 2 ** 31:
            raise UnsupportedNetwork(f"graded dense sums up to {bound} would overflow Lava's int32 dot product")
        h, b = self.history, x.shape[1]
        flat = exact_float(x.reshape(x.shape[0], b, -1), bound, "dense layer")
        ws = self.tensors(flat)
        if not self.per_delay_shift:
            return self.shift(flat[h:] @ ws[0].T)
        out = None
        for w, d in zip(ws, self.delays):
            part = self.shift(flat[h - d:h - d + steps] @ w.T)
            out = part if out is None else out + part
        return out


@dataclass
class DenseLayer(Layer):
    """``weight`` (out, in); ``weight_rec`` (out, out) from the layer's own
    spikes (dense_rec); ``delay`` (out, in) steps, as netx broadcasts it."""

    kind = "dense"
    netx_types = ("dense", "dense_rec")
    takes_flat_input = True

    weight_rec: np.ndarray | None = None
    delay: np.ndarray | None = None
    delay_in_file_max: int | None = None   # the largest delay the file asks for, before netx's clamp to 62

    @classmethod
    def read(cls, g, where, index, netx_type, prev_shape, any_neuron):
        # netx builds a dense layer flat, (prod(shape),), whatever the file's
        # shape says: lava-dl's own pilotnet_lif stores its dense layers as
        # (100, 1, 1), ... and Lava's spikes for them are (100,).
        shape = (int(np.prod(read_shape(g, f"{where}/shape"))),)
        neuron = cls.read_neuron_group(g, where, shape, any_neuron)
        layer = cls(index, shape, prev_shape, neuron=neuron, origin=read_origin(g))
        cls.needs_input(prev_shape, where, "dense")
        if neuron is None:
            layer.neuron = netx_default_dense_neuron()
        layer._read_synapses(g, where, recurrent=netx_type == "dense_rec")
        layer.read_bias(g, where, ((), (1,), shape), f"one value or {shape[0]}")
        return layer

    def _read_synapses(self, g: h5py.Group, where: str, recurrent: bool) -> None:
        prev_shape = self.in_shape
        n_out, n_in = self.shape[0], int(np.prod(prev_shape))
        # netx connects a (C, 1, 1) conv output straight to a dense layer (the
        # orders agree when H = W = 1; lava-dl's own pilotnet and ntidigits
        # networks do this); any other shape needs a flatten between.
        if len(prev_shape) != 1 and tuple(prev_shape[1:]) != (1, 1):
            raise NetFileError(f"{where}: dense layer after a {prev_shape} layer needs a flatten layer between")
        self.weight = _read_matrix(g, "weight", f"{where}/weight", n_out, n_in)
        if recurrent:
            self.weight_rec = _read_matrix(g, "weight_rec", f"{where}/weight_rec", n_out, n_out,
                                           "a dense_rec layer needs its recurrent weights")
        if not self.weight.any() and (self.weight_rec is None or not self.weight_rec.any()):
            # netx's optimize_weight_bits divides by the largest weight: Lava cannot build this layer.
            raise NetFileError(f"{where}/weight: all zero (netx 0.6.0 cannot scale an all-zero weight matrix)")
        ds = child(g, "delay", f"{where}/delay", h5py.Dataset)
        if ds is not None:
            self.delay, self.delay_in_file_max = _read_delay(f"{where}/delay", ds, self.weight.shape)
            if recurrent and self.weight.shape != self.weight_rec.shape:
                # netx hands the same delay matrix to both synapses, and Lava's
                # DelayDense rejects it for the recurrent one.
                raise NetFileError(f"{where}/delay: netx applies one delay matrix to the input and the "
                                   f"recurrent weights, which needs as many inputs as neurons "
                                   f"({self.weight.shape[1]} vs {self.weight.shape[0]})")

    # ---- What it is -----------------------------------------------------------------------

    @property
    def recurrent(self) -> bool:
        return self.weight_rec is not None

    @property
    def name(self) -> str:
        return f"{self.origin or ('dense_rec' if self.recurrent else self.kind)}{self.index}"

    @property
    def is_spiking(self) -> bool:
        return True

    @functools.cached_property
    def _matrices(self) -> list[np.ndarray]:
        """The input weights and, recurrent, the recurrent ones, as int64:
        converted once for the scaling, the Lava weights and the chip mapping."""
        return [self.weight.astype(np.int64)] + ([self.weight_rec.astype(np.int64)] if self.recurrent else [])

    @functools.cached_property
    def _netx_scaled(self) -> tuple[np.ndarray, int, int, str]:
        """netx's ``optimize_weight_bits`` at load (``netx_scaled``), worked
        out once for the emulator, the chip mapping and the description."""
        return netx_scaled(*self._matrices)

    def nir_nodes(self, dt):
        """``Linear`` (the weights Lava's Dense applies, after netx's scaling
        and Lava's truncation, times 2^exponent, / 64), then the neurons."""
        import nir
        if self.recurrent:
            raise UnsupportedNetwork(f"layer {self.name}/weight_rec: recurrent layers are not written to NIR yet")
        if self.delay is not None and self.delay.any():
            raise UnsupportedNetwork(f"layer {self.name}/delay: synaptic delays are not written to NIR "
                                     f"(NIR's Delay node is per neuron, not per synapse)")
        w, _, exponent = self._lava_weights
        return [(self.name, nir.Linear(weight=w.astype(np.float64) * 2.0 ** exponent / 64)), self.nir_neuron(dt)]

    @functools.cached_property
    def _lava_weights(self) -> tuple[np.ndarray, np.ndarray | None, int]:
        """The weights Lava's Dense applies (input, recurrent or None) and
        their exponent: what ``lava_dense_weights`` (the function the tests
        compare with netx's and Lava's own) computes, from the scaling worked
        out once (``_netx_scaled``)."""
        scaled, bits, exponent, _ = self._netx_scaled
        return (*lava_weights(scaled, bits, self.weight.shape[1]), exponent)

    def weight_format(self) -> WeightFormat | None:
        """Through netx's own ``optimize_weight_bits``, the rule it applies at load."""
        _, bits, exponent, sign = self._netx_scaled
        return WeightFormat(bits, exponent, sign)

    # ---- Counting -------------------------------------------------------------------------

    def fanout(self) -> np.ndarray:
        return (self.weight != 0).sum(axis=0).astype(np.int64).reshape(self.in_shape)

    def recurrent_fanout(self) -> np.ndarray:
        """Non-zero recurrent synapses leaving each neuron (features,); int64.
        ``weight_rec[i, j]`` connects neuron j to neuron i."""
        if self.weight_rec is None:
            raise ValueError(f"layer {self.name} has no recurrent synapses")
        return (self.weight_rec != 0).sum(axis=0).astype(np.int64).reshape(self.shape)

    def ann_macs(self) -> int:
        return int(self.weight.size) + (int(self.weight_rec.size) if self.weight_rec is not None else 0)

    def synaptic_ops(self, incoming: np.ndarray, spikes: np.ndarray) -> int:
        # a flatten between layers keeps (C, H, W) order, as netx's does
        ops = synaptic_ops(incoming.reshape(len(incoming), *self.in_shape, incoming.shape[-1]), self.fanout())
        if self.recurrent:   # the layer's own spikes reach its neurons again
            ops += synaptic_ops(spikes, self.recurrent_fanout())
        return ops

    # ---- Emulating ------------------------------------------------------------------------

    def emulator_synapses(self, graded: bool):
        w, w_rec, exponent = self._lava_weights
        if self.delay is None:
            ff = DenseSynapse([w], [0], exponent, graded=graded)
            rec = DenseSynapse([w_rec], [0], exponent) if w_rec is not None else None
            return ff, rec
        if self.recurrent:
            exponent = 0   # netx 0.6.0's RecurrentDense passes no weight_exp to its DelayDense synapses

        def split(m: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
            ds = sorted(int(d) for d in np.unique(self.delay[m != 0])) or [0]
            return [np.where(self.delay == d, m, 0) for d in ds], ds

        ff = DenseSynapse(*split(w), exponent, per_delay_shift=True, graded=graded)
        rec = DenseSynapse(*split(w_rec), exponent, per_delay_shift=True) if w_rec is not None else None
        return ff, rec

    # ---- Placing on a chip ----------------------------------------------------------------

    def chip_use(self, spec, violate: Violate) -> ChipUse:
        """Synapses live with their destination neurons, each core storing its
        neurons' weights in the cheaper encoding: dense (weight bits per
        possible synapse) or sparse (weight bits plus an input index per
        non-zero synapse), plus DELAY_BITS per synapse with delays."""
        mats = self._matrices
        w = mats[0]
        n_out, n_in = w.shape
        both_eff, bits, exponent, _ = self._netx_scaled
        clipped = netx_needs_clipping(np.hstack(mats))
        if clipped:
            violate("weight_bits", int(np.abs(w).max()), 254,
                    f"{clipped} weights do not fit 8 bits with one exponent (mixed signs must lie "
                    f"in -256..254); netx would clip them")
        nonzero = sum(int((m != 0).sum()) for m in mats)
        dense = self.ann_macs()   # every possible synapse, once
        inputs = n_in + (n_out if self.weight_rec is not None else 0)
        delay_bits = DELAY_BITS if self.delay is not None else 0
        dense_bits = dense * (bits + delay_bits)
        sparse_bits = nonzero * (bits + _index_bits(inputs) + delay_bits)
        memory, encoding = (dense_bits, "dense") if dense_bits <= sparse_bits else (sparse_bits, "sparse")
        # a single neuron's synapses must fit one core
        per_neuron = max(int((m != 0).sum(axis=1).max()) for m in mats) * (bits + _index_bits(inputs) + delay_bits)
        if min(per_neuron, inputs * (bits + delay_bits)) > spec.synaptic_memory_bits_per_core.value:
            violate("synaptic_memory_bits_per_core", per_neuron, spec.synaptic_memory_bits_per_core.value,
                    "one neuron's synapses alone exceed a core's memory: the layer cannot be split")
        current = max_input_current(both_eff[:, :n_in], exponent, (1,))
        if self.weight_rec is not None:
            current += max_input_current(both_eff[:, n_in:], exponent, (1,))
        return ChipUse(nonzero, dense, int(bits), int(exponent), memory, encoding, inputs, current,
                       int(self.delay_in_file_max or 0))


def _index_bits(n: int) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def _read_matrix(g: h5py.Group, name: str, where: str, n_out: int, n_in: int, why: str = "") -> np.ndarray:
    """A dense (n_out, n_in) weight matrix, or its flat (n_out * n_in,) form,
    as netx reshapes it; its declared shape is checked before it is read."""
    ds = required(g, name, where, h5py.Dataset, why)
    shape = declared_shape(ds, where)
    if shape not in ((n_out, n_in), (n_out * n_in,)):
        raise NetFileError(f"{where}: shape {shape} does not fit {n_in} inputs and {n_out} neurons "
                           f"(expected {(n_out, n_in)})")
    w = numbers(ds, where).reshape(n_out, n_in)
    whole_in_range(w, where, -MAX_ABS_WEIGHT, MAX_ABS_WEIGHT,
                   "weights are integers; netx truncates fractions silently")
    return w


def _read_delay(where: str, ds: h5py.Dataset, weight_shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Delays per synapse (out, in), broadcast as netx 0.6.0's create_dense does:
    a scalar for all, (out,) per neuron, (in,) per input, or the full matrix;
    values above 62 are clamped there (with a warning) and so here. Returns
    (delays, the largest delay in the file, taken from the raw values before
    any cast: 1e30 must not become a negative int64)."""
    out, n_in = weight_shape
    shape = declared_shape(ds, where)
    if shape not in ((), (out,), (n_in,), weight_shape):
        raise NetFileError(f"{where}: shape {shape} fits neither the weights {weight_shape}, "
                           f"their {out} outputs nor their {n_in} inputs")
    d = numbers(ds, where)
    if d.size and d.min() < 0:
        raise NetFileError(f"{where}: negative delay {d.min()!r} (Lava's DelayDense takes 0..{MAX_DELAY})")
    whole_in_range(d, where, 0, math.inf, "delays are whole steps; netx truncates fractions silently")
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


@dataclass(frozen=True)
class DenseSpec(LayerSpec):
    """A dense layer to train (token: its number of neurons, e.g. ``500``):
    SLAYER's ``cuba.Dense``, written by SLAYER's own export."""

    sparse_backward = True

    kind = "dense"
    prunable = True
    classifier = True
    token = re.compile(r"[0-9]+")

    @classmethod
    def parse(cls, match, shape, arch):
        specs = []
        if len(shape) == 3:     # a flatten before the first dense layer after a spatial one
            specs.append(FlattenSpec((shape[0] * shape[1] * shape[2],), shape))
            shape = specs[-1].out_shape
        return specs + [cls((int(match[0]),), shape)]

    def slayer_block(self, neuron_params, net_config):
        return slayer_cuba().Dense(neuron_params, self.in_shape[0], self.out_shape[0],
                                   weight_scale=net_config.weight_scale)

    def block_fanout(self, gate):
        return gate.reshape(gate.shape[0], -1).sum(dim=0).reshape(self.in_shape)
