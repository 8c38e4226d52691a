"""Convolution layers (netx ``conv``), and pools, which lavasparse writes as
a depthwise conv (``origin`` 'pool').

Synaptic input of output channel o at position (y, x), step t (Lava's
PyConvModelFixed: raw integer weights, no exponent; netx ignores conv
delays), a correlation as SLAYER's:

    a_o[y, x, t] = sum_{c in o's group, ky, kx} W[o, c, ky, kx]
                   * s_c[y * sy + ky * dy - py, x * sx + kx * dx - px, t]

wrapped to signed 24 bits (Lava's ``signed_clamp``, a modulo).
"""
from __future__ import annotations

import functools
import math
import re
import warnings
from dataclasses import dataclass

import h5py
import numpy as np

from .base import (ChipUse, Layer, LayerSpec, Synapse, UnsupportedNetwork, Violate, max_input_current, slayer_cuba,
                   synaptic_ops)
from .geometry import conv_fanout, conv_out_size, soft_conv_fanout
from .netx_fields import (MAX_ABS_WEIGHT, MAX_CONV_PARAM, NetFileError, child, declared_shape, numbers,
                          read_origin, read_shape, required, whole_in_range)
from .netx_weights import WeightFormat


class ConvSynapse(Synapse):
    """Lava's Conv, computed in float32 as Lava computes it."""

    sum_axes = (1, 2, 3)

    def __init__(self, layer: "ConvLayer", graded: bool):
        super().__init__([layer.weight.astype(np.int64)], [0], graded=graded)
        self.layer = layer

    def compute(self, x, steps: int, bound: int):
        # torch only where a network is emulated: reading and checking a file need none.
        import torch.nn.functional as F
        d, h, b = self.layer, self.history, x.shape[1]
        if bound >= 2 ** 24:
            # Lava's PyConvModelFixed convolves in float32: above 2**24 its
            # sums round in an order we cannot reproduce.
            raise UnsupportedNetwork(f"layer {d.name}: conv sums up to {bound} (Lava computes them "
                                     f"in float32, exactly only below 2**24)")
        frames = x[h:].reshape(steps * b, *x.shape[2:]).float()
        (w,) = self.tensors(frames)
        out = F.conv2d(frames, w, stride=d.stride, padding=d.padding, dilation=d.dilation, groups=d.groups)
        if bound >= 2 ** 23:
            # Lava's PyConvModelFixed.clamp_precision is utils.signed_clamp,
            # which wraps: (x + 2**23) % 2**24 - 2**23 (in float64: exact).
            out = (out.double() + 2 ** 23).remainder(2 ** 24) - 2 ** 23
        return out.reshape(steps, b, -1)


@dataclass
class ConvLayer(Layer):
    """``weight`` (out, in / groups, kH, kW); (H, W) pairs ``stride``,
    ``padding``, ``dilation``; ``groups``."""

    kind = "conv"
    netx_types = ("conv",)

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @classmethod
    def read(cls, g, where, index, netx_type, prev_shape, any_neuron):
        shape = read_shape(g, f"{where}/shape")
        neuron = cls.read_neuron_group(g, where, shape, any_neuron)
        layer = cls(index, shape, prev_shape, neuron=neuron, origin=read_origin(g))
        cls.needs_input(prev_shape, where, "conv")
        if neuron is None:
            raise NetFileError(f"{where}/neuron: missing")
        layer._read_synapses(g, where)
        lava_shape = tuple(reversed(shape))
        layer.read_bias(g, where, ((shape[0],), lava_shape),
                        f"({shape[0]},) per channel or {lava_shape} per neuron, in Lava's (W, H, C) order")
        return layer

    def _read_synapses(self, g: h5py.Group, where: str) -> None:
        prev_shape, shape = self.in_shape, self.shape
        if len(prev_shape) != 3 or len(shape) != 3:
            raise NetFileError(f"{where}/shape: conv needs (C, H, W) shapes, got input {prev_shape}, output {shape}")
        if child(g, "delay", f"{where}/delay", h5py.Dataset) is not None:
            warnings.warn(f"{where}/delay: netx 0.6.0 ignores delays on conv layers (so does Lava, and so do we)")
        self.stride = _read_pair(g, "stride", f"{where}/stride", 1)
        self.padding = _read_pair(g, "padding", f"{where}/padding", 0)
        self.dilation = _read_pair(g, "dilation", f"{where}/dilation", 1)
        self.groups = _read_groups(g, f"{where}/groups")
        ds = required(g, "weight", f"{where}/weight", h5py.Dataset)
        wshape = declared_shape(ds, f"{where}/weight")
        if len(wshape) == 5 and wshape[4] == 1:      # SLAYER writes (out, in, kH, kW, 1)
            wshape = wshape[:4]
        if len(wshape) != 4 or min(wshape) < 1:
            raise NetFileError(f"{where}/weight: conv weight must be (out, in/groups, kH, kW), got {ds.shape}")
        c_in, c_out = prev_shape[0], shape[0]
        if wshape[0] != c_out or wshape[1] * self.groups != c_in or c_out % self.groups:
            raise NetFileError(f"{where}/weight: shape {wshape} with groups={self.groups} does not map "
                               f"{c_in} input channels to {c_out} output channels (both must divide by groups)")
        if max(wshape[2:]) > MAX_CONV_PARAM:
            raise NetFileError(f"{where}/weight: kernel {wshape[2:]} beyond {MAX_CONV_PARAM} (Lava's Conv model "
                               f"holds the kernel size in an int8)")
        expected = tuple(conv_out_size(prev_shape[1 + i], wshape[2 + i], self.stride[i], self.padding[i],
                                       self.dilation[i]) for i in range(2))
        if expected != shape[1:]:
            raise NetFileError(f"{where}/shape: {shape} but the conv of a {prev_shape} input gives "
                               f"{(shape[0], *expected)}")
        w = numbers(ds, f"{where}/weight").reshape(wshape)
        whole_in_range(w, f"{where}/weight", -MAX_ABS_WEIGHT, MAX_ABS_WEIGHT,
                       "weights are integers; netx truncates fractions silently")
        self.weight = w

    # ---- What it is -----------------------------------------------------------------------

    @property
    def is_spiking(self) -> bool:
        return True

    def weight_format(self) -> WeightFormat | None:
        """netx passes conv weights unscaled (exponent 0): the bits of the raw integers."""
        return WeightFormat.of_raw_integers(self.weight)

    def nir_nodes(self, dt):
        """``Conv2d`` (the file's integer kernel / 64, with its stride,
        padding and dilation), then the neurons. Grouped kernels (a pool our
        export wrote as a depthwise conv among them) are written as the same
        conv with groups 1, zero between groups: NIR 1.0.8 infers a grouped
        Conv2d's input channels as the kernel's in / groups and refuses the
        graph. The import reads a depthwise sum back as a pool."""
        import nir
        w = self.weight.astype(np.float64) / 64
        if self.groups > 1:
            c_out, c_in_g = w.shape[:2]
            full = np.zeros((c_out, c_in_g * self.groups, *w.shape[2:]))
            per_group = c_out // self.groups
            for o in range(c_out):
                g = o // per_group
                full[o, g * c_in_g:(g + 1) * c_in_g] = w[o]
            w = full
        return [(self.name, nir.Conv2d(input_shape=tuple(self.in_shape[1:]), weight=w, stride=tuple(self.stride),
                                       padding=tuple(self.padding), dilation=tuple(self.dilation), groups=1,
                                       bias=np.zeros(self.shape[0]))),
                self.nir_neuron(dt)]

    def describe_row(self) -> dict:
        return {**super().describe_row(), "groups": self.groups}

    # ---- Counting -------------------------------------------------------------------------

    def fanout(self) -> np.ndarray:
        """Exact per input pixel: with padding and stride an edge pixel reaches
        fewer outputs than a centre one (``lavasparse.layers.geometry``)."""
        return self._fanout

    @functools.cached_property
    def _fanout(self) -> np.ndarray:
        # Worked out once per layer: a profile needs it for the synaptic ops
        # and again for the chip mapping, and a description's weights do not change.
        fanout = conv_fanout(self.weight != 0, self.in_shape, self.shape, self.stride, self.padding, self.dilation,
                             self.groups)
        fanout.flags.writeable = False
        return fanout

    def ann_macs(self) -> int:
        """The kernel once per output position."""
        return int(np.prod(self.shape)) * int(np.prod(self.weight.shape[1:]))

    def synaptic_ops(self, incoming: np.ndarray, spikes: np.ndarray) -> int:
        return synaptic_ops(incoming.reshape(len(incoming), *self.in_shape, incoming.shape[-1]), self.fanout())

    # ---- Emulating ------------------------------------------------------------------------

    def emulator_synapses(self, graded: bool):
        return ConvSynapse(self, graded), None

    # ---- Placing on a chip ----------------------------------------------------------------

    def chip_use(self, spec, violate: Violate) -> ChipUse:
        """The kernel is stored once in every core that holds part of the
        layer (weight sharing): kernel size x weight bits per core."""
        w = self.weight.astype(np.int64)
        if w.max(initial=0) > 255 or w.min(initial=0) < -256:
            violate("weight_bits", int(np.abs(w).max()), 255,
                    "conv weights beyond 8 bits (netx passes conv weights unscaled)")
        bits = self.weight_format().weight_bits
        nonzero = int(self.fanout().sum())
        return ChipUse(nonzero, self.ann_macs(), bits, 0, int(w.size) * bits, "shared kernel", int(np.prod(self.in_shape)),
                       max_input_current(w, 0, (1, 2, 3)), 0)

    def _rows_per_core(self, cores: int) -> int:
        return max(1, math.ceil(self.shape[1] / cores))

    def core_axons_in(self, use: ChipUse, cores: int) -> int:
        """Split by output rows: a core needs the input rows its outputs see (all channels)."""
        rows = self._rows_per_core(cores)
        kh = self.weight.shape[2]
        in_rows = min(self.in_shape[1], (rows - 1) * self.stride[0] + (kh - 1) * self.dilation[0] + 1)
        return in_rows * self.in_shape[2] * self.in_shape[0]

    def axons_out_reaching(self, cores: int) -> int:
        """An input row reaches the output rows within its kernel footprint."""
        if cores == 1:
            return cores
        span = (self.weight.shape[2] - 1) * self.dilation[0] // self.stride[0] + 1
        return min(cores, math.ceil(span / self._rows_per_core(cores)) + 1)


def _read_pair(g: h5py.Group, name: str, where: str, lo: int) -> tuple[int, int]:
    """A conv's stride, padding or dilation: one value or (H, W), as netx expands it."""
    ds = required(g, name, where, h5py.Dataset, "netx 0.6.0 reads it for every conv layer")
    shape = declared_shape(ds, where)
    if len(shape) > 1 or math.prod(shape) not in (1, 2):
        raise NetFileError(f"{where}: expected one value or two (H, W), found a dataset of shape {shape}")
    a = numbers(ds, where, integer_dtype="netx hands it to Lava's Conv unconverted").reshape(-1)
    whole_in_range(a, where, lo, MAX_CONV_PARAM, "Lava's Conv model holds it in an int8")
    return (int(a[0]), int(a[-1]))


def _read_groups(g: h5py.Group, where: str) -> int:
    ds = required(g, "groups", where, h5py.Dataset, "netx 0.6.0 reads it for every conv layer")
    if declared_shape(ds, where) != ():
        raise NetFileError(f"{where}: must be a scalar (Lava's Conv refuses anything else), found shape {ds.shape}")
    a = numbers(ds, where, integer_dtype="netx hands it to Lava's Conv unconverted")
    whole_in_range(a, where, 1, MAX_CONV_PARAM, "Lava's Conv model holds it in an int8")
    return int(a)


@dataclass(frozen=True)
class ConvSpec(LayerSpec):
    """A conv layer to train, token ``c{channels}k{kernel}[s{stride}][p{padding}]``
    (padding kernel // 2 unless given): SLAYER's ``cuba.Conv``, written by
    SLAYER's own export."""

    sparse_backward = True

    kind = "conv"
    prunable = True
    token = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?")

    @classmethod
    def parse(cls, match, shape, arch):
        if len(shape) != 3:
            raise ValueError(f"architecture {arch!r}: conv {match[0]!r} needs a CxHxW input")
        ch, k = int(match[1]), int(match[2])
        s = int(match[3] or 1)
        p = int(match[4]) if match[4] is not None else k // 2
        h, w = conv_out_size(shape[1], k, s, p), conv_out_size(shape[2], k, s, p)
        if h < 1 or w < 1:
            raise ValueError(f"architecture {arch!r}: {match[0]!r} leaves no output pixels")
        return [cls((ch, h, w), shape, k, s, p)]

    def slayer_block(self, neuron_params, net_config):
        return slayer_cuba().Conv(neuron_params, self.in_shape[0], self.out_shape[0], self.kernel,
                                  stride=self.stride, padding=self.padding, weight_scale=net_config.weight_scale)

    def block_fanout(self, gate):
        return soft_conv_fanout(gate[..., 0], self.in_shape, self.out_shape, (self.stride,) * 2,   # drop SLAYER's
                                (self.padding,) * 2)                                                # time axis
