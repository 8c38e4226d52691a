"""ISI-modulated dense and conv layers (Adams et al., IMSNN): layers whose
input spikes are weighted by a Gaussian of their presynaptic inter-spike
interval, z_j[t] = sum_i h_ji G_i(phi_i[t]) s_i[t] (the equations, the
reconstruction and its assumptions: ``isi_synapse.py``).

Token ``{neurons}i`` (``784-500i-10i``) or ``c{channels}k{kernel}...i``
(``1x28x28-c16k5i-...``) in an architecture string, or every dense and conv
layer with ``--synapse isi`` (``isi_arch``). Trained as SLAYER's
``cuba.Dense`` or ``cuba.Conv`` block whose synapse is
``isi_synapse.IsiDense`` or ``IsiConv``: the neuron, the 8-bit heights,
pruning and the cost terms are the dense or conv layer's; mu and width are
drawn once per presynaptic neuron (dense) or input channel (conv, [A]: the
paper's tying within a kernel, kept per presynaptic neuron so that the gate
still sends the payload) from ``IsiConfig``'s ranges.

On the target (netx type ``isi_dense``, ``IsiDenseLayer``) the layer is an
ISI gate in front of an ordinary dense synapse of heights. The gate of input
neuron i counts the steps phi_i since i's previous spike and sends, with
each spike, the graded payload P_i[phi_i] = round(G_i(phi_i) * 2^b)
(b = ``payload_fraction_bits``, 6: payloads 0..64). Lava's fixed-point Dense
multiplies the payloads by the heights and shifts the sum right by b - e
(e the exponent netx gives the heights), a floor:

    a_j[t]   = floor(sum_i W_ji P_i[phi_i[t]] s_i[t] / 2^b)     W the file's heights
    phi_i[t] = t + 1 + c   before i's first spike of the sample (t from 0 in
               the layer's input window), then the steps since that spike

which is what training computes (``isi_synapse.IsiDense``), integer for
integer. c (``counter_start``) is the steps the sample has spent in the
network before this layer's input window, one per spiking layer before it:
training counts intervals from the network's first step, where SLAYER's
shifted spike trains start. The gate receives and sends in the same step,
so it adds no latency. In Lava it is ``deploy/lava_blocks/isi.py``'s
``IsiGate`` process; in the emulator, ``IsiSynapse`` below. A conv layer
(netx type ``isi_conv``, ``IsiConvLayer``) is the same with Lava's Conv and
one row of payloads per input channel; Lava's fixed-point Conv applies no
weight exponent, so its sum is shifted right by b in a process of ours
(``RightShift``) between the synapse and the neurons.

The file's group ``isi`` holds ``payload`` (inputs, K + 1), integers for
phi = 0 .. K (0 for any longer interval: K is where every G has rounded to
0), ``counter_start`` c, ``payload_fraction_bits`` b, and ``mu`` and
``width`` (steps), which say where the payloads came from. netx 0.6.0 skips
a layer type it does not know: plain netx builds a network without its ISI
layers (or, where all are ISI, fails with an IndexError). ``lavasparse
deploy`` builds them (``IsiNetwork``).

Synaptic ops count payloads that are not 0 (a spike whose G rounds to 0
sends nothing); their energy is priced as a binary spike's synaptic op, an
estimate: the energy profiles have no figure for graded spikes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

import h5py
import numpy as np

from lavasparse.defaults import ISI, ISI_RULES

from .conv import ConvLayer, ConvSpec, ConvSynapse
from .dense import DenseLayer, DenseSpec, DenseSynapse
from .netx_fields import NetFileError, UnsupportedNetwork, numbers, required, whole_in_range

ISI_NETX_TYPE = "isi_dense"
ISI_CONV_NETX_TYPE = "isi_conv"
# Loihi 2's graded spikes carry up to 24 bits (signed: payloads up to 2^23 - 1 here).
MAX_PAYLOAD = (1 << 23) - 1

ISI_SUFFIX = "i"


@dataclass
class IsiConfig:
    """The backward rule (``ISI_RULES``) and the ranges, in steps, from which
    each presynaptic neuron's mean interval mu and width w are drawn,
    uniformly, when a network is built (then saved with its weights)."""

    rule: str = ISI["rule"]
    mu: tuple[float, float] = ISI["mu"]
    width: tuple[float, float] = ISI["width"]
    payload_fraction_bits: int = ISI["payload_fraction_bits"]   # G sent as round(G * 2^bits), as training computes it

    def __post_init__(self):
        self.mu, self.width = tuple(float(v) for v in self.mu), tuple(float(v) for v in self.width)
        if self.rule not in ISI_RULES:
            raise ValueError(f"unknown ISI rule {self.rule!r}: expected one of {ISI_RULES}")
        for name, (lo, hi) in (("mu", self.mu), ("width", self.width)):
            if not 0 <= lo <= hi:
                raise ValueError(f"ISI {name} range {lo}..{hi}: need 0 <= low <= high")
        if self.width[0] <= 0:
            raise ValueError(f"ISI width range {self.width}: widths must be positive")
        if not 1 <= self.payload_fraction_bits <= 16:
            raise ValueError(f"ISI payload_fraction_bits {self.payload_fraction_bits}: expected 1 to 16")


def isi_arch(arch: str) -> str:
    """``arch`` with every dense and conv token made ISI-modulated (``500`` ->
    ``500i``, ``c16k5`` -> ``c16k5i``)."""
    tokens = arch.split("-")
    isi = lambda t: DenseSpec.token.fullmatch(t) or ConvSpec.token.fullmatch(t)   # noqa: E731
    return "-".join([tokens[0]] + [t + ISI_SUFFIX if isi(t) else t for t in tokens[1:]])


@dataclass(frozen=True)
class IsiDenseSpec(DenseSpec):
    """An ISI-modulated dense layer to train (token ``{neurons}i``)."""

    sparse_backward = False   # the ISI synapse has its own backward (isi_synapse.py)

    kind = "isi"
    synapse = "isi"
    token = re.compile(r"([0-9]+)" + ISI_SUFFIX)

    @classmethod
    def parse(cls, match, shape, arch):
        dense = DenseSpec.parse(re.fullmatch(r"[0-9]+", match[1]), shape, arch)
        return dense[:-1] + [cls(dense[-1].out_shape, dense[-1].in_shape)]

    def slayer_block(self, neuron_params, net_config):
        from .isi_synapse import IsiDense

        block = super().slayer_block(neuron_params, net_config)
        isi = net_config.isi or IsiConfig()
        mu, width = _draw(isi, self.in_shape[0])
        synapse = IsiDense(self.in_shape[0], self.out_shape[0], mu, width, isi.rule,
                           pre_hook_fx=block.synapse.pre_hook_fx, payload_fraction_bits=isi.payload_fraction_bits,
                           state_scale=int(block.neuron.w_scale))
        return _with_synapse(block, synapse)

    def write_netx(self, group: h5py.Group, block, depth: int) -> None:
        """SLAYER's dense export (heights, neuron), typed ``isi_dense``, with
        the gates' payloads in group ``isi`` (see the module doc); ``depth``
        (the spiking layers before it) is where the gates' counters start."""
        super().write_netx(group, block, depth)
        _write_isi(group, block.synapse, ISI_NETX_TYPE, depth)


@dataclass(frozen=True)
class IsiConvSpec(ConvSpec):
    """An ISI-modulated conv layer to train (token ``c{channels}k{kernel}[s..][p..]i``):
    SLAYER's ``cuba.Conv`` block with ``isi_synapse.IsiConv``, mu and width
    one per input channel."""

    sparse_backward = False   # the ISI synapse has its own backward (isi_synapse.py)

    kind = "isi_conv"
    synapse = "isi"
    token = re.compile(ConvSpec.token.pattern + ISI_SUFFIX)

    @classmethod
    def parse(cls, match, shape, arch):
        (conv,) = ConvSpec.parse(match, shape, arch)
        return [cls(conv.out_shape, conv.in_shape, conv.kernel, conv.stride, conv.padding)]

    def slayer_block(self, neuron_params, net_config):
        from .isi_synapse import IsiConv

        block = super().slayer_block(neuron_params, net_config)
        isi = net_config.isi or IsiConfig()
        mu, width = _draw(isi, self.in_shape[0])
        synapse = IsiConv(self.in_shape[0], self.out_shape[0], self.kernel, self.stride, self.padding, mu, width,
                          isi.rule, pre_hook_fx=block.synapse.pre_hook_fx,
                          payload_fraction_bits=isi.payload_fraction_bits, state_scale=int(block.neuron.w_scale))
        return _with_synapse(block, synapse)

    def write_netx(self, group: h5py.Group, block, depth: int) -> None:
        """SLAYER's conv export, typed ``isi_conv``, with one row of payloads per input channel."""
        super().write_netx(group, block, depth)
        _write_isi(group, block.synapse, ISI_CONV_NETX_TYPE, depth)


def _draw(isi: IsiConfig, n: int):
    """mu and width for ``n`` gates, uniform in ``isi``'s ranges (steps)."""
    import torch
    mu = isi.mu[0] + (isi.mu[1] - isi.mu[0]) * torch.rand(n)
    return mu, isi.width[0] + (isi.width[1] - isi.width[0]) * torch.rand(n)


def _with_synapse(block, synapse):
    """``block`` with ``synapse`` in place of SLAYER's, which keeps its initial heights."""
    import torch
    with torch.no_grad():
        synapse.weight.copy_(block.synapse.weight)
    block.synapse = synapse
    return block


def _write_isi(group: h5py.Group, synapse, netx_type: str, depth: int) -> None:
    """Type the written group ``netx_type`` and add the gates' group ``isi``."""
    del group["type"]
    group.create_dataset("type", (1,), "S10", [netx_type.encode()])
    bits = synapse.payload_fraction_bits if synapse.payload_fraction_bits is not None else ISI["payload_fraction_bits"]
    isi = group.create_group("isi")
    isi.create_dataset("payload", data=export_payloads(synapse.mu, synapse.width, bits, group.name))
    isi.create_dataset("mu", data=synapse.mu.detach().cpu().numpy())
    isi.create_dataset("width", data=synapse.width.detach().cpu().numpy())
    isi.create_dataset("payload_fraction_bits", data=bits)
    isi.create_dataset("counter_start", data=depth)


def export_payloads(mu, width, fraction_bits: int, where: str = "ISI layer") -> np.ndarray:
    """The gate's payloads (inputs, K + 1), int32, for phi = 0 .. K, computed
    as training computes them (float32 G of the float32 mu and width, then
    rounded); K is the last interval at which any payload is not 0: beyond
    mu + w * sqrt(2 ln 2^(b+1)) every G rounds to 0."""
    from .isi_gate import isi_table, payload_table   # torch: only where a trained block is written

    reach = math.sqrt(2 * math.log(2 ** (fraction_bits + 1)))
    longest = int(math.ceil(float((mu + width * reach).max()))) + 2
    table, _ = isi_table(mu.detach().float().cpu(), width.detach().float().cpu(), longest)
    payload = payload_table(table, fraction_bits).numpy()
    if payload[:, -1].any():
        raise ValueError(f"{where}: ISI payloads do not reach 0 by interval {longest}")   # the bound above is wrong
    last = int(np.flatnonzero(payload.any(axis=0)).max(initial=0))
    return payload[:, :last + 1].astype(np.int32)


def _read_isi(layer, g: h5py.Group, where: str, rows: int, row_is: str) -> None:
    """Group ``isi`` into ``layer``: ``payload`` (rows, K + 1), one row per
    ``row_is``; ``payload_fraction_bits``, ``counter_start``; ``mu`` and
    ``width`` where the file has them."""
    isi = required(g, "isi", f"{where}/isi", h5py.Group, "an ISI layer needs its gates' payloads")
    payload = numbers(required(isi, "payload", f"{where}/isi/payload", h5py.Dataset), f"{where}/isi/payload")
    if payload.ndim != 2 or payload.shape[0] != rows or payload.shape[1] < 1:
        raise NetFileError(f"{where}/isi/payload: shape {payload.shape}; expected ({rows}, K + 1), one row "
                           f"of payloads (phi = 0 .. K) per {row_is}")
    whole_in_range(payload, f"{where}/isi/payload", 0, MAX_PAYLOAD,
                   "payloads are graded spikes of at most 24 bits, not negative")
    layer.payload = payload.astype(np.int64)
    for name, hi, why in (("payload_fraction_bits", 24, "the payloads' binary point"),
                          ("counter_start", 1 << 16, "a count of steps")):
        value = numbers(required(isi, name, f"{where}/isi/{name}", h5py.Dataset), f"{where}/isi/{name}")
        whole_in_range(value, f"{where}/isi/{name}", 0, hi, why)
        if value.size != 1:
            raise NetFileError(f"{where}/isi/{name}: one value expected, got shape {value.shape}")
        setattr(layer, name, int(value.reshape(-1)[0]))
    for name in ("mu", "width"):
        ds = isi.get(name)
        if ds is not None:
            setattr(layer, name, numbers(ds, f"{where}/isi/{name}").reshape(-1))


def _sent(layer, incoming: np.ndarray) -> np.ndarray:
    """What ``layer``'s gates send for ``incoming`` (N, *in_shape, T): the
    payloads, shaped as the spikes."""
    import torch

    from .isi_gate import gate_payloads

    x = torch.as_tensor(np.asarray(incoming).reshape(len(incoming), -1, incoming.shape[-1]) != 0)
    return gate_payloads(x, torch.as_tensor(layer.gate_table()), layer.counter_start).numpy().reshape(incoming.shape)


class _Gated:
    """The gates before a synapse, in the emulator: each window of its input
    is one sample from its first step, where the gates restart."""

    def __init__(self, layer):
        self.payload, self.counter_start, self.name = layer.gate_table(), layer.counter_start, layer.name

    def __call__(self, x, steps: int):
        import torch   # the emulator's: it hands us tensors

        from .isi_gate import gate_payloads

        if x.shape[0] != steps:
            raise UnsupportedNetwork(f"layer {self.name}: an ISI gate is emulated only in a network without "
                                     f"delays or recurrence")
        spikes = x.reshape(steps, x.shape[1], -1).permute(1, 2, 0)   # (B, n, T), as the gate counts
        if (spikes.numel() and spikes.min() < 0) or (spikes > 1).any():
            raise UnsupportedNetwork(f"layer {self.name}: graded spikes into an ISI gate are not modelled (the "
                                     f"gate counts binary ones)")
        table = torch.as_tensor(self.payload, device=x.device)
        payloads = gate_payloads(spikes, table, self.counter_start).permute(2, 0, 1).to(torch.float64)
        return self.compute(payloads.reshape(x.shape), steps, self.bound(int(self.payload.max(initial=0))))


class IsiSynapse(_Gated, DenseSynapse):
    """The gates, then Lava's Dense with graded input (see the module doc):
    the emulator's synapse of an ``isi_dense`` layer."""

    def __init__(self, layer: "IsiDenseLayer"):
        w, _, exponent = layer._lava_weights
        DenseSynapse.__init__(self, [w], [0], exponent - layer.payload_fraction_bits, graded=True)
        _Gated.__init__(self, layer)


class IsiConvSynapse(_Gated, ConvSynapse):
    """The gates, then Lava's Conv with graded input, its sum shifted right
    by the payloads' fraction bits (``deploy/lava_blocks/isi.py``'s
    ``RightShift``: Lava's fixed-point Conv applies no weight exponent)."""

    def __init__(self, layer: "IsiConvLayer"):
        ConvSynapse.__init__(self, layer, graded=True)
        _Gated.__init__(self, layer)
        self.fraction_bits = layer.payload_fraction_bits

    def compute(self, x, steps: int, bound: int):
        return (super().compute(x, steps, bound) * 2.0 ** -self.fraction_bits).floor()


def message_bits(payload: np.ndarray) -> int:
    """Message bits of the largest payload: a graded synapse's ``num_message_bits``."""
    return max(1, int(np.max(payload, initial=0)).bit_length())


@dataclass
class _IsiGates:
    """What an ISI layer adds to its dense or conv layer: the gates'
    ``payload`` rows (phi = 0 .. K), ``payload_fraction_bits`` b (the
    synapse's sum is shifted right by b more), ``counter_start`` c (the count
    the gates start a sample with), and ``mu`` and ``width`` (steps) where
    the payloads came from; and what that changes in counting, emulating,
    NIR and placing. A class listed before its layer class."""

    lava_block: ClassVar[bool] = True
    synapse_class: ClassVar[type]   # the emulator's synapse

    payload: np.ndarray | None = None
    payload_fraction_bits: int = ISI["payload_fraction_bits"]
    counter_start: int = 0
    mu: np.ndarray | None = None
    width: np.ndarray | None = None

    def gate_table(self) -> np.ndarray:
        """The payload row of each input neuron (inputs, K + 1), in (C, H, W) order."""
        raise NotImplementedError

    @property
    def payload_bits(self) -> int:
        return message_bits(self.payload)

    def synaptic_ops(self, incoming: np.ndarray, spikes: np.ndarray) -> int:
        """A spike whose payload is 0 sends nothing: only payloads count."""
        return super().synaptic_ops(_sent(self, incoming), spikes)

    def emulator_synapses(self, graded: bool):
        if graded:
            raise UnsupportedNetwork(f"layer {self.name}: graded spikes into an ISI gate are not modelled "
                                     f"(the gate counts binary spikes)")
        return self.synapse_class(self), None

    def nir_nodes(self, dt):
        raise UnsupportedNetwork(f"layer {self.name}: NIR has no node for an ISI-modulated synapse")

    def chip_use(self, spec, violate):
        """The synapse's use, its largest input current scaled by the largest
        payload over 2^b (a binary spike's 1), rounded up; and the gates'
        memory: a counter up to K + 1 per input neuron, and K + 1 payloads of
        ``payload_bits`` per payload row (an input neuron, or a conv input
        channel). Where a compiler would keep them is not published: here,
        in the memory of the layer's cores, beside its synapses."""
        use = super().chip_use(spec, violate)
        use.max_input_current = -((-use.max_input_current * int(self.payload.max(initial=0)))
                                  >> self.payload_fraction_bits)
        rows, entries = self.payload.shape
        use.gate_memory_bits = (int(np.prod(self.in_shape)) * entries.bit_length()
                                + rows * entries * self.payload_bits)
        return use


@dataclass
class IsiDenseLayer(_IsiGates, DenseLayer):
    """netx ``isi_dense``: a dense layer (``DenseLayer``'s fields and checks,
    no delays or recurrence) behind ISI gates (``_IsiGates``), one row of
    payloads per input neuron."""

    kind = "isi"
    netx_types = (ISI_NETX_TYPE,)
    synapse_class = IsiSynapse

    @classmethod
    def read(cls, g, where, index, netx_type, prev_shape, any_neuron):
        layer = super().read(g, where, index, "dense", prev_shape, any_neuron)
        if layer.delay is not None:
            raise NetFileError(f"{where}/delay: ISI-modulated layers take no synaptic delays")
        _read_isi(layer, g, where, int(np.prod(prev_shape)), "input neuron")
        return layer

    @property
    def name(self) -> str:
        return f"{self.kind}{self.index}"

    def gate_table(self) -> np.ndarray:
        return self.payload


@dataclass
class IsiConvLayer(_IsiGates, ConvLayer):
    """netx ``isi_conv``: a conv layer (``ConvLayer``'s fields and checks)
    behind ISI gates (``_IsiGates``), one row of payloads per input channel
    (every neuron of a feature map shares it); Lava's Conv sum is shifted
    right by b."""

    kind = "isi_conv"
    netx_types = (ISI_CONV_NETX_TYPE,)
    synapse_class = IsiConvSynapse

    @classmethod
    def read(cls, g, where, index, netx_type, prev_shape, any_neuron):
        layer = super().read(g, where, index, "conv", prev_shape, any_neuron)
        if len(prev_shape) != 3:
            raise NetFileError(f"{where}: an isi_conv layer needs a (C, H, W) input, got {prev_shape}")
        _read_isi(layer, g, where, prev_shape[0], "input channel")
        return layer

    def gate_table(self) -> np.ndarray:
        return np.repeat(self.payload, self.in_shape[1] * self.in_shape[2], axis=0)
