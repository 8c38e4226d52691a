"""ISI-modulated dense layers (Adams et al., IMSNN): a dense layer whose
input spikes are weighted by a Gaussian of their presynaptic inter-spike
interval, z_j[t] = sum_i h_ji G_i(phi_i[t]) s_i[t] (the equations, the
reconstruction and its assumptions: ``isi_synapse.py``).

Token ``{neurons}i`` in an architecture string (``784-500i-10i``), or every
dense layer with ``--synapse isi`` (``isi_arch``). Trained as SLAYER's
``cuba.Dense`` block whose synapse is ``isi_synapse.IsiDense``: the neuron,
the 8-bit heights, pruning and the cost terms are the dense layer's; mu and
width are drawn once per presynaptic neuron from ``IsiConfig``'s ranges.

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
``IsiGate`` process; in the emulator, ``IsiSynapse`` below.

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

import h5py
import numpy as np

from lavasparse.defaults import ISI, ISI_RULES

from .dense import DenseLayer, DenseSpec, DenseSynapse
from .netx_fields import NetFileError, UnsupportedNetwork, numbers, required, whole_in_range

ISI_NETX_TYPE = "isi_dense"
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
    """``arch`` with every dense token made ISI-modulated (``500`` -> ``500i``)."""
    tokens = arch.split("-")
    return "-".join([tokens[0]] + [t + ISI_SUFFIX if DenseSpec.token.fullmatch(t) else t for t in tokens[1:]])


@dataclass(frozen=True)
class IsiDenseSpec(DenseSpec):
    """An ISI-modulated dense layer to train (token ``{neurons}i``)."""

    kind = "isi"
    token = re.compile(r"([0-9]+)" + ISI_SUFFIX)

    @classmethod
    def parse(cls, match, shape, arch):
        dense = DenseSpec.parse(re.fullmatch(r"[0-9]+", match[1]), shape, arch)
        return dense[:-1] + [cls(dense[-1].out_shape, dense[-1].in_shape)]

    def slayer_block(self, neuron_params, net_config):
        import torch

        from .isi_synapse import IsiDense

        block = super().slayer_block(neuron_params, net_config)
        isi = net_config.isi or IsiConfig()
        n = self.in_shape[0]
        mu = isi.mu[0] + (isi.mu[1] - isi.mu[0]) * torch.rand(n)
        width = isi.width[0] + (isi.width[1] - isi.width[0]) * torch.rand(n)
        synapse = IsiDense(n, self.out_shape[0], mu, width, isi.rule, pre_hook_fx=block.synapse.pre_hook_fx,
                           payload_fraction_bits=isi.payload_fraction_bits, state_scale=int(block.neuron.w_scale))
        with torch.no_grad():   # SLAYER's initial heights, as its dense layer would have them
            synapse.weight.copy_(block.synapse.weight)
        block.synapse = synapse
        return block

    def write_netx(self, group: h5py.Group, block, depth: int = 0) -> None:
        """SLAYER's dense export (heights, neuron), typed ``isi_dense``, with
        the gate's payloads in group ``isi`` (see the module doc); training
        counts intervals from the network's first step, ``depth`` steps before
        this layer's input sees the sample: the gates start there."""
        super().write_netx(group, block, depth)
        del group["type"]
        group.create_dataset("type", (1,), "S10", [ISI_NETX_TYPE.encode()])
        syn = block.synapse
        bits = syn.payload_fraction_bits if syn.payload_fraction_bits is not None else ISI["payload_fraction_bits"]
        isi = group.create_group("isi")
        isi.create_dataset("payload", data=export_payloads(syn.mu, syn.width, bits))
        isi.create_dataset("mu", data=syn.mu.detach().cpu().numpy())
        isi.create_dataset("width", data=syn.width.detach().cpu().numpy())
        isi.create_dataset("payload_fraction_bits", data=bits)
        isi.create_dataset("counter_start", data=depth)


def export_payloads(mu, width, fraction_bits: int) -> np.ndarray:
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
        raise ValueError(f"ISI payloads do not reach 0 by interval {longest}")   # the bound above is wrong
    last = int(np.flatnonzero(payload.any(axis=0)).max(initial=0))
    return payload[:, :last + 1].astype(np.int32)


class IsiSynapse(DenseSynapse):
    """The ISI gate, then Lava's Dense with graded input (see the module
    doc): the emulator's synapse of an ``isi_dense`` layer. Each window of
    its input is one sample from its first step, where the gates restart."""

    def __init__(self, weights: np.ndarray, exponent: int, payload: np.ndarray, counter_start: int):
        super().__init__([weights], [0], exponent, graded=True)
        self.payload, self.counter_start = payload, counter_start

    def __call__(self, x, steps: int):
        import torch   # the emulator's: it hands us tensors

        from .isi_gate import gate_payloads

        if x.shape[0] != steps:
            raise UnsupportedNetwork("an ISI gate is emulated only without history (no delays or recurrence "
                                     "before it)")
        spikes = x.reshape(steps, x.shape[1], -1).permute(1, 2, 0)   # (B, n, T), as the gate counts
        if (spikes.numel() and spikes.min() < 0) or (spikes > 1).any():
            raise UnsupportedNetwork("graded spikes into an ISI gate are not modelled (the gate counts binary ones)")
        table = torch.as_tensor(self.payload, device=x.device)
        payloads = gate_payloads(spikes, table, self.counter_start).permute(2, 0, 1).to(torch.float64)
        return self.compute(payloads, steps, self.bound(int(self.payload.max(initial=0))))


@dataclass
class IsiDenseLayer(DenseLayer):
    """netx ``isi_dense``: a dense layer (``DenseLayer``'s fields and checks,
    no delays or recurrence) behind ISI gates: ``payload`` (inputs, K + 1)
    the graded payload each input sends at interval phi = 0 .. K,
    ``payload_fraction_bits`` b (the synapse's sum is shifted right by b more
    than a dense layer's), ``counter_start`` c (the count the gates start a
    sample with); ``mu`` and ``width`` (steps) where they came from."""

    kind = "isi"
    netx_types = (ISI_NETX_TYPE,)

    payload: np.ndarray | None = None
    payload_fraction_bits: int = ISI["payload_fraction_bits"]
    counter_start: int = 0
    mu: np.ndarray | None = None
    width: np.ndarray | None = None

    @classmethod
    def read(cls, g, where, index, netx_type, prev_shape, any_neuron):
        layer = super().read(g, where, index, "dense", prev_shape, any_neuron)
        if layer.delay is not None:
            raise NetFileError(f"{where}/delay: ISI-modulated layers take no synaptic delays")
        isi = required(g, "isi", f"{where}/isi", h5py.Group, "an isi_dense layer needs its gates' payloads")
        n_in = int(np.prod(prev_shape))
        payload = numbers(required(isi, "payload", f"{where}/isi/payload", h5py.Dataset), f"{where}/isi/payload")
        if payload.ndim != 2 or payload.shape[0] != n_in or payload.shape[1] < 1:
            raise NetFileError(f"{where}/isi/payload: shape {payload.shape}; expected ({n_in}, K + 1), one row "
                               f"of payloads (phi = 0 .. K) per input neuron")
        whole_in_range(payload, f"{where}/isi/payload", 0, MAX_PAYLOAD,
                       "payloads are graded spikes of at most 24 bits, not negative")
        layer.payload = payload.astype(np.int64)
        bits = numbers(required(isi, "payload_fraction_bits", f"{where}/isi/payload_fraction_bits", h5py.Dataset),
                       f"{where}/isi/payload_fraction_bits")
        whole_in_range(bits, f"{where}/isi/payload_fraction_bits", 0, 24, "the payloads' binary point")
        if bits.size != 1:
            raise NetFileError(f"{where}/isi/payload_fraction_bits: one value expected, got shape {bits.shape}")
        layer.payload_fraction_bits = int(bits.reshape(-1)[0])
        start = numbers(required(isi, "counter_start", f"{where}/isi/counter_start", h5py.Dataset),
                        f"{where}/isi/counter_start")
        whole_in_range(start, f"{where}/isi/counter_start", 0, 1 << 16, "a count of steps")
        if start.size != 1:
            raise NetFileError(f"{where}/isi/counter_start: one value expected, got shape {start.shape}")
        layer.counter_start = int(start.reshape(-1)[0])
        for name in ("mu", "width"):
            ds = isi.get(name)
            if ds is not None:
                setattr(layer, name, numbers(ds, f"{where}/isi/{name}").reshape(-1))
        return layer

    @property
    def name(self) -> str:
        return f"{self.kind}{self.index}"

    @property
    def payload_bits(self) -> int:
        """Message bits of the largest payload (Lava's Dense ``num_message_bits``)."""
        return max(1, int(self.payload.max(initial=0)).bit_length())

    def synaptic_ops(self, incoming: np.ndarray, spikes: np.ndarray) -> int:
        """A spike whose payload is 0 sends nothing: only payloads count."""
        import torch

        from .isi_gate import gate_payloads

        x = torch.as_tensor(np.asarray(incoming).reshape(len(incoming), -1, incoming.shape[-1]) != 0)
        sent = gate_payloads(x, torch.as_tensor(self.payload), self.counter_start).numpy()
        return super().synaptic_ops(sent.reshape(incoming.shape), spikes)

    def emulator_synapses(self, graded: bool):
        if graded:
            raise UnsupportedNetwork(f"layer {self.name}: graded spikes into an ISI gate are not modelled "
                                     f"(the gate counts binary spikes)")
        w, _, exponent = self._lava_weights
        return IsiSynapse(w, exponent - self.payload_fraction_bits, self.payload, self.counter_start), None

    def nir_nodes(self, dt):
        raise UnsupportedNetwork(f"layer {self.name}: NIR has no node for an ISI-modulated synapse")

    def chip_use(self, spec, violate):
        """The dense synapse of heights (the gates' counters and tables live
        with the neurons before, and are not counted yet); its largest input
        current scaled by the largest payload over 2^b (a binary spike's 1)."""
        use = super().chip_use(spec, violate)
        use.max_input_current = use.max_input_current * int(self.payload.max(initial=0)) >> self.payload_fraction_bits
        return use
