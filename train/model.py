"""Spiking networks from SLAYER CUBA blocks (Dense, Conv, Pool, Flatten).

An architecture is a string of '-'-separated tokens, the first the input shape:
  ``784-500-10``                dense layers (input 784, hidden 500, output 10)
  ``1x8x8-c16k3-p2-64-10``      conv 16 channels 3x3 (padding k//2, stride 1),
                                sum-pool 2x2, then dense 64 and 10
  ``784-500i-10i``              dense layers with ISI-modulated synapses
                                (``lavasparse/layers/isi.py``, Adams et al.)
Conv tokens: ``c{channels}k{kernel}[s{stride}][p{padding}]``; pool: ``p{kernel}``.
A flatten is inserted before the first dense layer that follows a spatial one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
from torch.nn.modules import module as nn_module

from lavasparse.defaults import (ACTIVE_BAND, BACKWARDS, DATASET_DEFAULTS, DEFAULT_BACKWARD, DEFAULT_DATASET,
                                 DEFAULT_READOUT, NEURON, POOL_WEIGHT, READOUT_THRESHOLD_MANT, READOUTS, WEIGHT_SCALE,
                                 active_band_of)
from lavasparse.layers import SPEC_CLASSES, IsiConfig, LayerSpec
from lavasparse.train.cuba_cpu import cuba_neuron_forward, cuba_voltage_forward
from lavasparse.train.event_synapse import delayed, dense_synapse
from lavasparse.train.sparse_backward import SparseCuba


# A potential readout's threshold in SLAYER units (the file's mantissa / 64): exactly the largest mantissa
# Lava's vth holds, which the 24-bit voltage reaches only where it saturates; the target refuses a readout
# that spiked (``deploy/lava_runner.check_readout_silent``).
READOUT_THRESHOLD = READOUT_THRESHOLD_MANT / 64


def parse_arch(arch: str) -> list[LayerSpec]:
    """Layer specs (with shapes) for an architecture string; see the module doc.
    Each token is read by the layer kind whose ``token`` it matches
    (``lavasparse.layers.SPEC_CLASSES``)."""
    tokens = [t for t in arch.strip().split("-") if t]
    if len(tokens) < 2:
        raise ValueError(f"architecture {arch!r}: need an input shape and at least one layer")
    try:
        shape = tuple(int(v) for v in tokens[0].split("x"))
    except ValueError:
        raise ValueError(f"architecture {arch!r}: bad input shape {tokens[0]!r}") from None
    if len(shape) not in (1, 3):
        raise ValueError(f"architecture {arch!r}: input shape must be N or CxHxW")
    layers: list[LayerSpec] = []
    for tok in tokens[1:]:
        matches = [(cls, m) for cls in SPEC_CLASSES if cls.token and (m := cls.token.fullmatch(tok))]
        if not matches:
            raise ValueError(f"architecture {arch!r}: cannot read token {tok!r}")
        cls, m = matches[0]
        layers += cls.parse(m, shape, arch)
        shape = layers[-1].out_shape
    if not layers[-1].classifier:
        raise ValueError(f"architecture {arch!r}: the last layer must be dense (the classifier)")
    return layers


@dataclass
class NeuronConfig:
    """CUBA neuron parameters in SLAYER units (state scale 1 << 6)."""

    threshold: float = NEURON["threshold"]
    current_decay: float = NEURON["current_decay"]
    voltage_decay: float = NEURON["voltage_decay"]
    tau_grad: float = NEURON["tau_grad"]
    scale_grad: float = NEURON["scale_grad"]

    def slayer_params(self) -> dict:
        return {**asdict(self), "requires_grad": False}


@dataclass
class NetConfig:
    """An architecture string (see the module doc), its neurons and weight
    scales. ``layer_neurons``, when given, holds one NeuronConfig per spiking
    layer in network order (an imported network's layers each have their
    own threshold and decays, ``export/nir_import.py``); else every layer
    has ``neuron``."""
    arch: str = DATASET_DEFAULTS[DEFAULT_DATASET]["arch"]
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    weight_scale: float = WEIGHT_SCALE
    pool_weight: float = POOL_WEIGHT
    layer_neurons: tuple[NeuronConfig, ...] | None = None
    isi: IsiConfig | None = None   # the ISI-modulated layers' (``{n}i`` tokens); None: IsiConfig's defaults
    # Dense and conv blocks' backward pass: SLAYER's ('dense') or only where |v - theta| < active_band *
    # theta ('sparse', train/sparse_backward.py); it changes gradients, never the forward pass.
    backward: str = DEFAULT_BACKWARD
    active_band: float | None = None   # None: ACTIVE_BAND with the sparse backward; always None with the dense one
    # The class: the output layer's spike counts ('spikes'), or its potential at the end of the window
    # ('potential': the layer never spikes, its threshold at READOUT_THRESHOLD_MANT; Adams et al.'s readout).
    readout: str = DEFAULT_READOUT

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise ValueError(f"unknown readout {self.readout!r}: expected one of {READOUTS}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"unknown backward {self.backward!r}: expected one of {BACKWARDS}")
        self.active_band = active_band_of(self.backward, self.active_band)
        if self.active_band is not None and not self.active_band > 0:
            raise ValueError(f"active_band must be positive (in thresholds), got {self.active_band}")
        if isinstance(self.neuron, dict):
            self.neuron = NeuronConfig(**self.neuron)
        if isinstance(self.isi, dict):
            self.isi = IsiConfig(**self.isi)
        if self.layer_neurons is not None:
            self.layer_neurons = tuple(NeuronConfig(**n) if isinstance(n, dict) else n for n in self.layer_neurons)

    def neurons(self, num_spiking: int) -> list[NeuronConfig]:
        """Each spiking layer's neuron, in network order; a potential
        readout's with the threshold it never reaches (READOUT_THRESHOLD)."""
        if self.layer_neurons is None:
            neurons = [self.neuron] * num_spiking
        elif len(self.layer_neurons) != num_spiking:
            raise ValueError(f"architecture {self.arch!r}: {num_spiking} spiking layers but "
                             f"{len(self.layer_neurons)} layer neurons")
        else:
            neurons = list(self.layer_neurons)
        if self.readout == "potential":
            neurons[-1] = replace(neurons[-1], threshold=READOUT_THRESHOLD)
        return neurons


def class_scores(output: torch.Tensor, readout: str) -> torch.Tensor:
    """(batch, classes) from the output layer's (batch, *neurons, time):
    spike counts, or with a potential readout the voltage at the last step."""
    score = output[..., -1] if readout == "potential" else output.sum(-1)
    return score.reshape(score.shape[0], -1)


def _only_synapse_and_neuron(block) -> None:
    """SpikingNet runs a block as synapse then neuron, with the one-step delay
    every layer has on the target (``SpikingNet.forward``), not through the
    block's forward: a SLAYER axonal delay or weight mask set on a block would
    be exported but never trained, so it is refused."""
    for name in ("delay", "mask"):
        if getattr(block, name, None) is not None:
            raise ValueError(f"a {type(block).__name__} block with a {name} is not supported: SpikingNet trains "
                             f"synapse and neuron only, and the file would hold what training never saw")


def hooked(block) -> bool:
    """Forward hooks on the block's synapse or neuron, or on every module
    (NeuroBench records activations and counts synaptic ops with them). The
    fast paths (compiled integrators, event-driven synapse, sparse backward)
    do not call the modules, so such a block runs as SLAYER's modules."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in (block.synapse, block.neuron)) \
        or bool(nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks)


class SpikingNet(torch.nn.Module):
    """A feed-forward SLAYER network. ``forward`` returns the spikes of every
    spiking layer, each (batch, *shape, time), in network order; with a
    potential readout (``NetConfig.readout``) the last entry is the output
    layer's voltage instead, in SLAYER units (the target's v is it x 64 x
    64), with its gradient through both integrators (no surrogate: the layer
    never spikes). ``scores`` turns the output into a score per class.

    The input (batch, *in_shape, T) is zero-padded by L - 1 steps (L spiking
    layers) so that the last layer sees the whole response; layer l's spikes for
    the sample are those at padded steps [l - 1, T + l - 2] (see ``layer_windows``),
    which is exactly what a Lava run with reset_interval T counts for it.

    On the CPU, each neuron's current and voltage go through SLAYER's
    integrators compiled (``train/cuba_cpu.py``: the same integers, no Python
    loop over time) and a dense synapse adds the weights of the inputs that
    spiked (``train/event_synapse.py``: the same values);
    ``compiled_cpu_dynamics = False`` runs SLAYER's own synapse and loop.
    With ``backward='sparse'`` (``NetConfig``), hidden dense and conv blocks
    that qualify train with the sparse backward (``train/sparse_backward.py``)
    while gradients are on: the same spikes, gradients only near threshold.
    """

    compiled_cpu_dynamics: bool = True

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.specs = parse_arch(config.arch)
        neurons = iter(config.neurons(self.num_spiking_layers))
        # A flatten has no neurons: it is given ``neuron`` and ignores it.
        self.blocks = torch.nn.ModuleList(
            spec.slayer_block((next(neurons) if spec.spiking else config.neuron).slayer_params(), config)
            for spec in self.specs)
        # SLAYER sizes its neurons on the first forward pass; do it now, so that a
        # new net can load a state or export itself straight away (no randomness used).
        self.backward_mode = config.backward   # 'dense' or 'sparse'; ``gradient_cosine`` switches it for a batch
        self.sparse: list[SparseCuba | None] = [None] * len(self.blocks)
        with torch.no_grad():
            self(torch.zeros(1, *self.specs[0].in_shape, 1))
        # After the first pass (SLAYER's neurons know their shape). The output layer keeps SLAYER's backward:
        # its neurons sit far below threshold for the wrong classes, where a band gives them no gradient and
        # the network none at all (SSGD's own readout is a non-spiking integrator with a dense gradient).
        last = len(self.specs) - 1
        band = ACTIVE_BAND if config.active_band is None else config.active_band   # a dense net may switch for a batch
        self.sparse = [SparseCuba(block, band)
                       if spec.sparse_backward and i != last and SparseCuba.applies(block) else None
                       for i, (spec, block) in enumerate(zip(self.specs, self.blocks))]

    @property
    def num_spiking_layers(self) -> int:
        return sum(s.spiking for s in self.specs)

    @property
    def layer_names(self) -> list[str]:
        """Names of the spiking layers, as the exported file names them
        (kind + index in the file, where layer 0 is the input)."""
        return [f"{spec.kind}{i}" for i, spec in enumerate(self.specs, start=1) if spec.spiking]

    @property
    def readout(self) -> str:
        """'spikes' or 'potential' (``NetConfig.readout``)."""
        return self.config.readout

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # Every synaptic layer sees its input delayed (by one step past the
        # first) and padded to T + L - 1 steps. The compiled dense synapse
        # reads x at that offset; every other path is given the copy.
        steps, delay = x.shape[-1] + self.num_spiking_layers - 1, 0
        spikes = []
        sparse = self.backward_mode == "sparse" and torch.is_grad_enabled()
        readout_at = len(self.specs) - 1 if self.readout == "potential" else None   # the classifier is last
        for i, (spec, block, sparse_block) in enumerate(zip(self.specs, self.blocks, self.sparse)):
            if not spec.spiking:   # a flatten: a new shape, no neurons (and no time: the delay waits)
                x = block(x)
                continue
            _only_synapse_and_neuron(block)
            if i == readout_at:   # the voltage (a neuron's forward hook does not fire: its forward is not run)
                if hooked(block) or not self.compiled_cpu_dynamics:
                    s = block.neuron.dynamics(block.synapse(delayed(x, delay, steps)))[1]
                else:
                    s = cuba_voltage_forward(block.neuron, dense_synapse(block.synapse, x, delay, steps))
            elif hooked(block):   # the hooks must fire: SLAYER's modules
                s = block.neuron(block.synapse(delayed(x, delay, steps)))
            elif sparse and sparse_block is not None:
                s = sparse_block.spikes(delayed(x, delay, steps))
            elif self.compiled_cpu_dynamics:
                s = cuba_neuron_forward(block.neuron, dense_synapse(block.synapse, x, delay, steps))
            else:
                s = block.neuron(block.synapse(delayed(x, delay, steps)))
            spikes.append(s)
            x, delay = s, 1
        return spikes

    def scores(self, out: list[torch.Tensor]) -> torch.Tensor:
        """(batch, classes): each class's score from ``forward``'s output (or
        its ``windowed`` cut), whose argmax is the prediction (lowest index on
        ties, as the target's): the output layer's spikes, or with a
        potential readout its voltage at the end of the window (SLAYER units)."""
        return class_scores(out[-1], self.readout)

    def spike_trains(self, out: list[torch.Tensor]) -> list[torch.Tensor]:
        """``forward``'s output as every spiking layer's spikes: a potential
        readout's are zeros (its threshold is beyond what it reaches; the
        target checks that, ``check_readout_silent``)."""
        if self.readout != "potential":
            return out
        return [*out[:-1], torch.zeros_like(out[-1])]

    def active_fractions(self) -> list[float | None]:
        """Per spiking layer, the share of neuron-steps in the sparse
        backward's active set over the training passes since the last call
        (None: the layer has no sparse backward, or no pass ran)."""
        return [None if sb is None else sb.record.take()
                for spec, sb in zip(self.specs, self.sparse) if spec.spiking]

    def layer_windows(self, steps: int) -> list[slice]:
        """For input length ``steps``: layer l's (1-based) window, [l - 1, steps + l - 2]."""
        return [slice(l, l + steps) for l in range(self.num_spiking_layers)]

    def windowed(self, spikes: list[torch.Tensor], steps: int) -> list[torch.Tensor]:
        """Each layer's spikes cut to its window: what the target produces per sample."""
        return [s[..., w] for s, w in zip(spikes, self.layer_windows(steps))]
