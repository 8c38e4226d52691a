"""What every layer kind is and knows: the base class of the netx network
description, the emulator's synapse, a layer's use of a chip, and the
synaptic-op count.

A layer kind is one module in this package (``input``, ``dense``, ``conv``,
``pool``, ``flatten``), listed in ``lavasparse/layers/__init__.py``; its
``Layer`` subclass is found by the netx types it reads (``KINDS``). The class holds the
layer's shapes and integer parameters in the file's (C, H, W) order and knows
  - how it is read from netx, with the validation that belongs there (``read``);
  - how Lava computes its synapses, for the emulator (``emulator_synapses``);
  - its fan-out, synaptic ops and ANN multiply-accumulates (``fanout``,
    ``synaptic_ops``, ``ann_macs``);
  - its use of a chip's cores (``chip_use``, ``core_axons_in``,
    ``axons_out_reaching``);
  - and, in its ``LayerSpec`` subclass, how it is trained and written (the
    SLAYER block, its token in an architecture string, its export).
No module here imports torch or SLAYER at its top: ``check`` and ``deploy``
read files without them; the emulator's synapses work on the tensors they
are given, and SLAYER is imported where a block is built.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, ClassVar

import h5py
import numpy as np

from .netx_fields import BIAS_RANGE, NetFileError, UnsupportedNetwork, child, declared_shape, numbers, whole_in_range
from .netx_weights import WeightFormat
from .neuron import Neuron, read_neuron


# A limit a layer breaks on a chip: violate(limit, value, allowed, message),
# ``limit`` a field of deploy.loihi2.ChipSpec.
Violate = Callable[[str, float, float, str], None]


@dataclass
class ChipUse:
    """What a layer needs of a chip, before it is split over cores."""

    synapses_nonzero: int
    synapses_dense: int
    weight_bits: int | None
    weight_exponent: int | None
    memory_bits: int            # synaptic memory of the whole layer (per core for a shared kernel)
    memory_encoding: str        # 'dense', 'sparse', 'shared kernel' or '-'
    axons_in: int               # input axons, before the split over cores
    max_input_current: int      # largest |synaptic input| one step can bring (before << 6)
    max_delay: int              # steps, as the file asks (before netx's clamp)
    gate_memory_bits: int = 0   # ISI gates' counters and payload tables, beside memory_bits


def max_input_current(w: np.ndarray, exponent: int, axes: tuple[int, ...]) -> int:
    """Largest |sum of weights| into one neuron when every input spikes once, shifted as Lava does."""
    pos = np.clip(w, 0, None).sum(axis=axes).max()
    neg = -np.clip(w, None, 0).sum(axis=axes).min()
    total = int(max(pos, neg))
    return total << exponent if exponent >= 0 else total >> -exponent


def synaptic_ops(input_spikes: np.ndarray, fanout: np.ndarray) -> int:
    """Total synaptic operations: each input spike times its neuron's fan-out.

    ``input_spikes`` is (N, *in_shape, T) (spike counts; graded spikes count
    once per non-zero message); ``fanout`` is (*in_shape).
    """
    events = (np.asarray(input_spikes) != 0).sum(axis=(0, -1))
    if events.shape != fanout.shape:
        raise ValueError(f"input spikes of shape {input_spikes.shape} do not fit fan-out {fanout.shape}")
    return int((events.astype(np.int64) * fanout).sum())


def exact_float(x, bound: int, what: str):
    """``x`` (a tensor of integers) in the float type in which every integer
    sum up to ``bound`` is exact."""
    if bound < 2 ** 24:
        return x.float()
    if bound < 2 ** 53:
        return x.double()
    raise UnsupportedNetwork(f"{what}: sums up to {bound} are too large to emulate exactly")


class Synapse:
    """One of Lava's synapse processes as the emulator runs it: a function of
    its input over time. ``weights`` one integer array per delay (the kind's
    own layout), ``delays`` the delay of each in steps, ``exponent`` Lava's
    weight exponent (sums shifted by it), ``per_delay_shift`` DelayDense's
    shift of each delay's sum by itself, ``graded`` payloads multiplied as
    they are (else a non-zero input counts 1)."""

    sum_axes: ClassVar[tuple[int, ...]] = (1,)   # the weights' axes that sum into one neuron

    def __init__(self, weights: list[np.ndarray], delays: list[int], exponent: int = 0,
                 per_delay_shift: bool = False, graded: bool = False):
        self.weights, self.delays, self.exponent = weights, delays, exponent
        self.per_delay_shift, self.graded = per_delay_shift, graded
        self._cache: dict = {}

    @property
    def history(self) -> int:
        """Steps of input before a window that reach into it."""
        return max(self.delays) if self.delays else 0

    @functools.cached_property
    def abs_sum(self) -> int:
        """The largest sum of |weights| into one neuron: bounds |sum| per unit of input."""
        w = sum(np.abs(m) for m in self.weights)
        return int(w.sum(axis=self.sum_axes).max()) if w.size else 0

    def bound(self, max_input: int) -> int:
        return self.abs_sum * max_input

    def tensors(self, like) -> list:
        """The weights as tensors of ``like``'s dtype and device (cached)."""
        key = (like.dtype, str(like.device))
        if key not in self._cache:
            self._cache[key] = [like.new_tensor(m) for m in self.weights]
        return self._cache[key]

    def __call__(self, x, steps: int):
        """Synaptic input (steps, B, n_out), integers in a float dtype, from
        time-major input x (history + steps, B, *in_shape), whose first
        ``history`` rows are the steps before the window."""
        if not self.graded:
            x = x != 0
        max_in = int(x.abs().max()) if self.graded and x.numel() else 1
        return self.compute(x, steps, self.bound(max_in))

    def compute(self, x, steps: int, bound: int):
        raise NotImplementedError

    def shift(self, acc):
        """Lava's ``<< e`` or ``>> -e`` (floor) of an integer sum; exact in floats."""
        e = self.exponent
        if e == 0:
            return acc
        return acc * 2.0 ** e if e > 0 else (acc * 2.0 ** e).floor()


@dataclass
class Layer:
    """One layer of a netx description, in the file's (C, H, W) order. The
    base class holds what every kind has; the kind's class adds its own
    fields and behaviour (see the module doc)."""

    kind: ClassVar[str]                   # the name in tables and in layer names
    netx_types: ClassVar[tuple[str, ...]]  # the netx 'type' strings this class reads
    is_input: ClassVar[bool] = False      # the network's input layer
    takes_flat_input: ClassVar[bool] = False   # netx hands it its input flat
    lava_block: ClassVar[bool] = False    # netx 0.6.0 cannot build it: deploy/lava_blocks does

    index: int
    shape: tuple[int, ...]
    in_shape: tuple[int, ...] | None = None
    neuron: Neuron | None = None
    bias: np.ndarray | None = None        # the bias mantissa, broadcastable to ``shape``
    origin: str | None = None             # 'pool' for a pool our export wrote as a conv
    weight: np.ndarray | None = None      # the synapses' integer weights, in the kind's layout

    # ---- Reading --------------------------------------------------------------------------

    @classmethod
    def read(cls, g: h5py.Group, where: str, index: int, netx_type: str, prev_shape: tuple[int, ...] | None,
             any_neuron: bool) -> "Layer":
        """The layer in group ``g`` (``where`` names it in errors), after a
        layer of ``prev_shape`` (None for the first)."""
        raise NotImplementedError

    @staticmethod
    def read_neuron_group(g: h5py.Group, where: str, shape: tuple[int, ...], any_neuron: bool) -> Neuron | None:
        ng = child(g, "neuron", f"{where}/neuron", h5py.Group)
        return read_neuron(f"{where}/neuron", ng, shape, any_neuron) if ng is not None else None

    @staticmethod
    def needs_input(prev_shape, where: str, kind: str) -> None:
        if prev_shape is None:
            raise NetFileError(f"{where}: a {kind} layer needs an input layer before it "
                               f"(with 'shape') to know its input size")

    def read_bias(self, g: h5py.Group, where: str, allowed: tuple[tuple[int, ...], ...],
                  allowed_text: str) -> None:
        """The bias mantissa if the file has one, in one of the ``allowed``
        declared shapes (a 3-axis one in Lava's (W, H, C) order, stored in ours)."""
        ds = child(g, "bias", f"{where}/bias", h5py.Dataset)
        if ds is None:
            return
        shape = declared_shape(ds, f"{where}/bias")
        if shape not in allowed:
            raise NetFileError(f"{where}/bias: shape {shape} does not fit the layer's {self.shape} neurons "
                               f"(netx takes {allowed_text})")
        b = numbers(ds, f"{where}/bias")
        whole_in_range(b, f"{where}/bias", *BIAS_RANGE,
                       "Lava's LIF holds bias_mant in an int16; netx truncates fractions silently")
        if b.ndim == 3:      # per neuron, (W, H, C) -> (C, H, W)
            b = b.transpose(2, 1, 0)
        elif b.ndim == 1 and len(self.shape) == 3 and len(b) == self.shape[0]:
            b = b[:, None, None]   # one per channel: broadcast over (H, W), as netx applies it
        self.bias = b

    # ---- What it is -----------------------------------------------------------------------

    @property
    def recurrent(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return f"{self.origin or self.kind}{self.index}"

    @property
    def num_neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def is_spiking(self) -> bool:
        """Whether Lava builds a neuron population for this layer."""
        return False

    @property
    def network_input_shape(self) -> tuple[int, ...]:
        """Shape of what enters the network when this is its first layer."""
        return self.in_shape

    def weight_format(self) -> WeightFormat | None:
        """Bits, exponent and sign mode netx gives the layer's weights; None without weights."""
        return None

    def describe_row(self) -> dict:
        """One row of ``netx_format.describe``."""
        fmt = self.weight_format()
        return {
            "name": self.name, "type": self.kind, "shape": list(self.shape),
            "neurons": self.num_neurons if self.is_spiking else 0,
            "weights": int(self.weight.size) if self.weight is not None else 0,
            "weight_bits": fmt.weight_bits if fmt else None,
            "weight_exponent": fmt.weight_exponent if fmt else None,
            "sign_mode": fmt.sign_mode if fmt else None,
            "groups": None,
        }

    # ---- Counting -------------------------------------------------------------------------

    def fanout(self) -> np.ndarray:
        """Non-zero synapses leaving each input neuron, shaped like the input; int64."""
        raise ValueError(f"layer {self.name} has no synapses")

    def ann_macs(self) -> int:
        """Multiply-accumulates of the same layer in an ANN, per inference."""
        return 0

    def synaptic_ops(self, incoming: np.ndarray, spikes: np.ndarray) -> int:
        """Synaptic ops of N samples: ``incoming`` the spikes that reach the
        layer (N, ..., T), ``spikes`` its own (N, *shape, T)."""
        return 0

    # ---- Emulating ------------------------------------------------------------------------

    def emulator_synapses(self, graded: bool) -> tuple[Synapse, Synapse | None]:
        """The synapse that feeds the layer's neurons and, for a recurrent
        layer, the one its own spikes feed back through."""
        raise UnsupportedNetwork(f"layer {self.name} of type {self.kind} is not emulated")

    # ---- NIR ------------------------------------------------------------------------------

    def nir_nodes(self, dt: float) -> list[tuple[str, object]]:
        """The layer as NIR nodes in a chain, each (name, node): its synapse,
        then its neuron (``Neuron.nir_node``), on SLAYER's scale (the file's
        integers / 64). Raise UnsupportedNetwork naming the layer and field
        where NIR or this mapping cannot hold it."""
        raise UnsupportedNetwork(f"layer {self.name}: a {self.kind} layer has no NIR node here")

    def nir_neuron(self, dt: float) -> tuple[str, object]:
        """(name, node) of the layer's neurons (see ``Neuron.nir_node``)."""
        return f"{self.name}_neuron", self.neuron.nir_node(self.shape, dt, self.bias, f"layer {self.name}/neuron")

    # ---- Placing on a chip ----------------------------------------------------------------

    def chip_use(self, spec, violate: Violate) -> ChipUse:
        """Synapses, memory, axons, current and delays on ``spec`` (a
        deploy.loihi2.ChipSpec); limits the layer itself breaks go to ``violate``."""
        raise NotImplementedError

    def core_axons_in(self, use: ChipUse, cores: int) -> int:
        """Input axons of the busiest core once the layer is split over ``cores``."""
        return use.axons_in

    def axons_out_reaching(self, cores: int) -> int:
        """Cores of this layer (split over ``cores``) that one neuron of the layer before reaches."""
        return cores


# ---- Training: the layer as a SLAYER block --------------------------------------------------

def slayer_cuba():
    """lava-dl SLAYER's CUBA blocks (``slayer.block.cuba``)."""
    # SLAYER (and torch) only where a network is built for training: reading,
    # checking and deploying a file load neither.
    import lava.lib.dl.slayer as slayer
    return slayer.block.cuba


@dataclass(frozen=True)
class LayerSpec:
    """One layer of an architecture to train (``train.model.parse_arch``),
    before it has weights: its kind, shapes ((features,) or (C, H, W)) and
    geometry. The kind's subclass knows the SLAYER block that trains it, the
    fan-out of that block's surviving synapses (training's cost term) and how
    the block is written to netx."""

    kind: ClassVar[str]
    spiking: ClassVar[bool] = True       # has neurons (and a layer name in the file)
    prunable: ClassVar[bool] = False     # trained weights, one per synapse (pruning acts on them)
    classifier: ClassVar[bool] = False   # may end a network
    token: ClassVar[re.Pattern | None] = None   # its token in an architecture string
    synapse: ClassVar[str] = "cuba"      # defaults.SYNAPSES: SLAYER's synapse, or 'isi' (ISI-modulated)
    sparse_backward: ClassVar[bool] = False   # its SLAYER block may train with train/sparse_backward.py

    out_shape: tuple[int, ...]
    in_shape: tuple[int, ...]
    kernel: int = 0
    stride: int = 1
    padding: int = 0

    @classmethod
    def parse(cls, match: re.Match, shape: tuple[int, ...], arch: str) -> list["LayerSpec"]:
        """The spec(s) of one architecture token that matched ``token``,
        after a layer of ``shape`` (a dense token after a spatial layer adds
        the flatten before it)."""
        raise NotImplementedError

    def slayer_block(self, neuron_params: dict, net_config):
        """A new SLAYER block for this layer (``net_config`` a train.model.NetConfig)."""
        raise NotImplementedError

    def block_fanout(self, gate):
        """Synapses leaving each input neuron, shaped ``in_shape``, from the
        block's gate (1.0 where a weight survives export; a torch tensor
        shaped like the weight), differentiable through the gate."""
        raise ValueError(f"no fan-out for a {self.kind!r} block")

    def check_exportable(self, name: str, block) -> None:
        """Refuse to write a block whose weights are not finite."""
        bad = ~block.synapse.weight.detach().isfinite()
        if bad.any():
            raise ValueError(f"layer {name}: {int(bad.sum())} NaN or infinite weights; refusing to export")

    def write_netx(self, group: h5py.Group, block, depth: int) -> None:
        """Write the trained block into netx layer group ``group`` (SLAYER's
        own export); ``depth``: the spiking layers before it, each a step of
        latency between the network's input and this layer's."""
        block.export_hdf5(group)
