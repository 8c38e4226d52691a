"""Does a netx network fit Loihi 2, and what does it use? Per layer and in
total: neurons, synapses, synaptic memory, axons, delays, cores and chips;
and every limit it breaks, named with the layer, the limit and the value.

The mapping model (what a compiler would do, simplified; each rule is an
assumption where Intel publishes no detail):
  - a layer's neurons are spread evenly over as many cores as its largest
    need: neurons per core, synapses per core, or synaptic memory per core;
  - a dense layer's synapses live with their destination neurons, each core
    storing the weights of its neurons in the cheaper of two encodings:
    dense (weight bits per possible synapse) or sparse (weight bits plus an
    input index per non-zero synapse), plus 6 delay bits per synapse when
    the layer has delays;
  - a conv layer's kernel is stored once in every core that holds part of
    the layer (weight sharing), so it costs kernel size x weight bits per core;
  - a conv layer split over cores is split by output rows, so a core needs
    the input rows its outputs see (all input channels); a dense core needs
    every input; an input layer's core one axon per neuron;
  - a neuron sends one output axon per core that holds a neuron it reaches:
    every core of a dense layer, the one or two cores whose rows its
    kernel footprint touches in a conv;
  - an ISI layer's gates (a counter per input neuron, a payload table per
    row) are kept once, spread over the layer's cores beside its synapses.
Each kind's rules live with the kind (``Layer.chip_use``, ``core_axons_in``,
``axons_out_reaching`` in ``lavasparse.layers``); this module splits layers
over cores and checks the chip's limits.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from lavasparse.export.netx_format import NetDescription
from lavasparse.layers.base import ChipUse, Layer, Violate

from .loihi2 import LOIHI2, ChipSpec


@dataclass
class Violation:
    """A limit the network breaks: which layer, which limit, its value and the allowed one."""

    layer: str
    limit: str
    value: float
    allowed: float
    message: str
    assumed: bool = False     # the limit is our assumption, not a published figure

    def __str__(self) -> str:
        note = " [limit assumed, not published]" if self.assumed else ""
        return f"layer {self.layer}: {self.limit} = {self.value:g} (allowed: {self.allowed:g}){note}: {self.message}"


@dataclass
class LayerUse:
    name: str
    kind: str
    neurons: int
    synapses_nonzero: int
    synapses_dense: int
    weight_bits: int | None
    weight_exponent: int | None
    memory_bits: int            # all cores of the layer together
    memory_encoding: str
    axons_in: int               # input axons a core of the layer receives (the busiest core)
    axons_out: int              # output axons per neuron (cores of the next layer it reaches)
    max_delay: int
    cores: int
    cores_by: str               # the limit that set the core count
    max_input_current: int      # largest |synaptic input| one step can bring (before << 6)
    gate_memory_bits: int = 0   # ISI gates' counters and payload tables (included in memory_bits)


@dataclass
class CheckReport:
    network: str
    chip: str
    layers: list[LayerUse]
    violations: list[Violation]
    warnings: list[str]
    assumptions: list[str]
    totals: dict = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fits"] = self.fits
        return d


def check_network(desc: NetDescription, spec: ChipSpec = LOIHI2) -> CheckReport:
    """Map ``desc`` onto ``spec``'s cores and list every limit it breaks."""
    violations: list[Violation] = []
    warnings: list[str] = []
    layers: list[LayerUse] = []
    spiking = desc.spiking_layers
    for layer in spiking:
        def violate(limit: str, value: float, allowed: float, message: str) -> None:
            violations.append(Violation(layer.name, limit, value, allowed, message))

        use = layer.chip_use(spec, violate)
        if use.max_delay > spec.max_delay.value:
            violate("max_delay", use.max_delay, spec.max_delay.value,
                    "netx clamps longer delays to 62: the deployed network would differ")
        _check_neuron(layer, use, spec, violate, warnings)
        cores, cores_by, memory_bits = _cores_of(layer, use, spec, violate)
        axons_in = layer.core_axons_in(use, cores)
        if axons_in > spec.input_axons_per_core.value:
            violate("input_axons_per_core", axons_in, spec.input_axons_per_core.value,
                    "each core of the layer needs more input axons than a core has: the layer "
                    "cannot be split across cores")
        layers.append(LayerUse(layer.name, layer.kind, layer.num_neurons, use.synapses_nonzero, use.synapses_dense,
                               use.weight_bits, use.weight_exponent, int(memory_bits), use.memory_encoding,
                               int(axons_in), 0, use.max_delay, cores, cores_by, int(use.max_input_current),
                               use.gate_memory_bits))
    for i, use in enumerate(layers[:-1]):
        use.axons_out = spiking[i + 1].axons_out_reaching(layers[i + 1].cores)
        neurons_per_core = math.ceil(use.neurons / use.cores)
        if neurons_per_core * use.axons_out > spec.output_axons_per_core.value:
            violations.append(Violation(use.name, "output_axons_per_core", neurons_per_core * use.axons_out,
                                        spec.output_axons_per_core.value,
                                        f"{neurons_per_core} neurons per core each reach {use.axons_out} cores"))
    for v in violations:
        lim = getattr(spec, v.limit, None)
        v.assumed = bool(lim is not None and not lim.public)
    cores = sum(l.cores for l in layers)
    totals = {"neurons": sum(l.neurons for l in layers), "synapses_nonzero": sum(l.synapses_nonzero for l in layers),
              "synapses_dense": sum(l.synapses_dense for l in layers),
              "memory_bits": sum(l.memory_bits for l in layers), "cores": cores,
              "chips": math.ceil(cores / spec.cores_per_chip.value)}
    used = {"neurons_per_core", "synapses_per_core", "synaptic_memory_bits_per_core", "input_axons_per_core",
            "output_axons_per_core", "cores_per_chip", "state_bits", "weight_bits", "max_delay"}
    assumptions = [f"{k}: {lim.source}" for k, lim in spec.rows() if k in used and not lim.public]
    return CheckReport(str(desc.path), spec.name, layers, violations, warnings, assumptions, totals)


def _check_neuron(layer: Layer, use: ChipUse, spec: ChipSpec, violate: Violate, warnings: list[str]) -> None:
    """The neuron's fields against the chip's: bias and threshold mantissas,
    and whether the largest input current can wrap the 24-bit current u."""
    n = layer.neuron
    cuba = n.is_lif
    if not cuba:
        warnings.append(f"layer {layer.name}: {n.type} neurons: resources are counted, but the "
                        f"current-overflow analysis (a CUBA current u) does not apply")
    bias_max = int(np.abs(np.asarray(layer.bias)).max()) if layer.bias is not None else 0
    bias_lim = 2 ** (int(spec.bias_bits.value) - 1)
    if bias_max >= bias_lim:
        violate("bias_bits", bias_max, bias_lim - 1, "bias mantissa beyond the neuron's signed bias field")
    vth = int(np.max(n.v_th_mant)) if n.v_th_mant is not None else 0
    if vth >= 2 ** int(spec.threshold_bits.value):
        note = (" (1 << 17 is netx's default for a dense layer without a neuron, a non-spiking integrator; "
                "lava-dl's own mnist.net uses it for its output layer)" if vth == 1 << 17 else "")
        violate("threshold_bits", vth, 2 ** int(spec.threshold_bits.value) - 1,
                "threshold mantissa beyond the neuron's threshold field" + note)
    # The current u is a 24-bit state and takes a << 6 each step.
    half_state = 2 ** (int(spec.state_bits.value) - 1)
    step = use.max_input_current * 64 if cuba else 0
    if step >= half_state:
        violate("state_bits", step, half_state - 1,
                "one step's largest input current (all inputs spiking, << 6) overflows "
                "the 24-bit current u: it would wrap")
    elif use.max_input_current and cuba:
        du = int(np.max(n.i_decay))
        steady = math.inf if du == 0 else step * 4096 / du
        if steady >= half_state:
            warnings.append(f"layer {layer.name}: sustained largest input could drive the current u past "
                            f"24 bits ({'no current decay' if du == 0 else f'bound {steady:.3g}'}); "
                            f"it wraps on the chip as in Lava")


def _cores_of(layer: Layer, use: ChipUse, spec: ChipSpec, violate: Violate) -> tuple[int, str, float]:
    """The cores the layer takes, what sets their number (neurons, synapses
    or memory), and the layer's memory over all of them (bits): a shared
    conv kernel is stored once per core, ISI gates once for the layer."""
    per_core = spec.synaptic_memory_bits_per_core.value
    shared = use.memory_encoding == "shared kernel"
    if shared and use.memory_bits > per_core:
        violate("synaptic_memory_bits_per_core", float(use.memory_bits), per_core,
                "the conv kernel alone exceeds a core's memory")
    elif shared and use.gate_memory_bits and use.memory_bits == per_core:
        violate("synaptic_memory_bits_per_core", float(use.memory_bits + use.gate_memory_bits), per_core,
                "the conv kernel fills a core's memory: no room for the ISI gates")
    if not shared:
        by_memory = math.ceil((use.memory_bits + use.gate_memory_bits) / per_core)
    elif use.gate_memory_bits and use.memory_bits < per_core:   # the gates fill what each kernel leaves
        by_memory = math.ceil(use.gate_memory_bits / (per_core - use.memory_bits))
    else:
        by_memory = 1
    by = {"neurons": math.ceil(layer.num_neurons / spec.neurons_per_core.value),
          "synapses": math.ceil(use.synapses_nonzero / spec.synapses_per_core.value),
          "synaptic memory": by_memory}
    cores_by = max(by, key=by.get)
    cores = max(1, by[cores_by])
    return cores, cores_by, use.memory_bits * (cores if shared else 1) + use.gate_memory_bits


def format_report(r: CheckReport) -> str:
    head = (f"{'layer':>12s} {'type':>6s} {'neurons':>8s} {'synapses':>10s} {'dense':>10s} {'w.bits':>6s} "
            f"{'exp':>4s} {'memory (bits)':>14s} {'encoding':>13s} {'ax.in':>6s} {'ax.out':>6s} {'delay':>5s} "
            f"{'cores':>5s}  {'cores set by':s}")
    lines = [f"{r.network} on {r.chip}", head]
    for l in r.layers:
        lines.append(f"{l.name:>12s} {l.kind:>6s} {l.neurons:8d} {l.synapses_nonzero:10d} {l.synapses_dense:10d} "
                     f"{'-' if l.weight_bits is None else l.weight_bits:>6} "
                     f"{'-' if l.weight_exponent is None else l.weight_exponent:>4} {l.memory_bits:14d} "
                     f"{l.memory_encoding:>13s} {l.axons_in:6d} {l.axons_out:6d} {l.max_delay:5d} {l.cores:5d}  "
                     f"{l.cores_by}")
    t = r.totals
    lines.append(f"{'total':>12s} {'':>6s} {t['neurons']:8d} {t['synapses_nonzero']:10d} {t['synapses_dense']:10d} "
                 f"{'':>6s} {'':>4s} {t['memory_bits']:14d} {'':>13s} {'':>6s} {'':>6s} {'':>5s} {t['cores']:5d}  "
                 f"{t['chips']} chip(s)")
    if r.violations:
        lines.append(f"\nDOES NOT FIT: {len(r.violations)} violation(s)")
        lines += [f"  - {v}" for v in r.violations]
    else:
        lines.append("\nfits: no limit broken")
    lines += [f"warning: {w}" for w in r.warnings]
    lines += [f"layer {l.name}: its memory includes {l.gate_memory_bits} bits of ISI gates (a counter per input "
              f"neuron, a payload table per row), kept with the layer's synapses" for l in r.layers if l.gate_memory_bits]
    if r.assumptions:
        lines.append("these verdicts rest on assumptions (no public Loihi 2 figure):")
        lines += [f"  - {a}" for a in r.assumptions]
    return "\n".join(lines)
