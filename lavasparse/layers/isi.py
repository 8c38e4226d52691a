"""ISI-modulated dense layers (Adams et al., IMSNN): a dense layer whose
input spikes are weighted by a Gaussian of their presynaptic inter-spike
interval, z_j[t] = sum_i h_ji G_i(phi_i[t]) s_i[t] (the equations, the
reconstruction and its assumptions: ``isi_synapse.py``).

Token ``{neurons}i`` in an architecture string (``784-500i-10i``), or every
dense layer with ``--synapse isi`` (``isi_arch``). Trained as SLAYER's
``cuba.Dense`` block whose synapse is ``isi_synapse.IsiDense``: the neuron,
the 8-bit heights, pruning and the cost terms are the dense layer's; mu and
width are drawn once per presynaptic neuron from ``IsiConfig``'s ranges.

Not yet written to netx, so not yet deployed, emulated or profiled (issue
14's next part: a graded-spike ISI process in front of a dense synapse of
heights); the export refuses, naming the layer, before it writes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lavasparse.defaults import ISI, ISI_RULES

from .dense import DenseSpec
from .netx_fields import UnsupportedNetwork

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

    def check_exportable(self, name: str, block) -> None:
        raise UnsupportedNetwork(f"layer {name}: ISI-modulated synapses are not written to netx yet (training "
                                 f"only; their Lava process is the next part of issue 14)")
