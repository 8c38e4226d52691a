"""Run a netx HDF5 network in Lava's process simulator (``Loihi2SimCfg``,
``fixed_pt``), our stand-in for the chip, on many samples in one run.

Samples are laid end to end, ``reset_interval = T`` steps apart, and netx resets
each layer one step after the one before it. Lava's Dense and Conv send at
step t what they accumulated at t - 1, so layer l (1-based, counting the input
layer when it has a neuron) sees sample k during steps
    [k*T + l + o, k*T + l + o + T - 1]          (Lava's time starts at 1)
with o = 0 when the first layer is an input neuron fed through its ``a_in``,
and o = 1 when the spikes enter the first synaptic layer. We pass o as netx's
``reset_offset`` so that every layer is reset on the very step it first sees a
sample, and cut each layer's probe to that window.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lavasparse.defaults import DEFAULT_LAYOUT, LAYOUTS
from lavasparse.deploy.lava_guard import STOP_TIMEOUT_S, LavaRunGuard
from lavasparse.export.netx_format import NetDescription
from lavasparse.fileio import not_a_regular_file


def predict(output_spikes: np.ndarray, readout_potential: np.ndarray | None = None) -> np.ndarray:
    """Class per sample, the lowest index on ties (numpy's argmax): the
    output neuron with most spikes (``output_spikes`` (N, *shape, T)), or,
    for a potential readout, with the highest potential at the end of the
    window (``readout_potential`` (N, *shape))."""
    if readout_potential is not None:
        return readout_potential.reshape(readout_potential.shape[0], -1).argmax(1)
    return output_spikes.reshape(output_spikes.shape[0], -1, output_spikes.shape[-1]).sum(-1).argmax(1)


READOUT_POTENTIAL_KEY = "readout_potential"   # its name among a run's saved arrays (``saved_arrays``)


def saved_arrays(layer_names: list[str], spikes: list[np.ndarray],
                 readout_potential: np.ndarray | None) -> dict[str, np.ndarray]:
    """A target run as the .npz files hold it: each layer's spikes (int8) by
    name, and a potential readout's final potentials (READOUT_POTENTIAL_KEY)."""
    arrays = {} if readout_potential is None else {READOUT_POTENTIAL_KEY: readout_potential}
    return {**arrays, **{name: s.astype(np.int8) for name, s in zip(layer_names, spikes)}}


def check_readout_silent(desc: NetDescription, output_spikes: np.ndarray) -> None:
    """Raise where a potential readout (``desc.readout``) spiked: its voltage
    reached the threshold (it saturated at 24 bits) and was reset, so the
    potential the class is read from is not the network's."""
    if desc.readout == "potential" and output_spikes.any():
        layer = desc.spiking_layers[-1]
        raise ValueError(f"{desc.path}: the readout layer {layer.name} spiked ({int((output_spikes != 0).sum())} "
                         f"spikes): its potential reached the threshold (vThMant {layer.neuron.v_th_mant}) and was "
                         f"reset, so the class read from it is wrong; its weights or input are too large")


@dataclass
class LavaRun:
    """Per-layer spikes from a Lava run, each (N, *shape, T) in (C, H, W) order."""

    desc: NetDescription
    layer_names: list[str]
    spikes: list[np.ndarray]
    steps: int
    lava_steps: int
    seconds: float
    currents: list[np.ndarray] | None = None   # u per layer, (N, *shape, T), with record_states
    voltages: list[np.ndarray] | None = None   # v per layer, after the spike reset
    readout_potential: np.ndarray | None = None   # a potential readout's v at each window's end, (N, *shape)

    @property
    def predictions(self) -> np.ndarray:
        return predict(self.spikes[-1], self.readout_potential)


# An input current enters an input neuron's a_in, which Lava's fixed-point LIF
# shifts left by 6 in int32: beyond 2**25 - 1 it would wrap silently.
MAX_INPUT_CURRENT = (1 << 25) - 1
# Graded payloads leave the input source as int32 (Lava's RingBuffer, fixed_pt).
MAX_INPUT_MESSAGE_BITS = 32
_NPY_MAGIC = b"\x93NUMPY"


def load_input(path: str | Path, layout: str = DEFAULT_LAYOUT) -> np.ndarray:
    """An input array from ``path`` (.npy), in our (C, H, W) order.

    ``layout`` says how the file holds a 3-d input: "chw" (ours) or "whc"
    (Lava's (x, y, z), as lava-dl's own example inputs are), each with time
    last and an optional batch axis first: (W, H, C, T) or (N, W, H, C, T).
    Flat inputs, (n, T) or (N, n, T), are the same in both.

    The file is refused, naming it, unless it is a regular file holding one
    .npy array of numbers (bool, integers or floats) with every byte it
    declares; its header is read before its data, and pickles are never
    loaded. Values are checked against the network by ``check_input``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {LAYOUTS}")
    x = load_array(path, "input")
    if layout == "whc" and x.ndim == 4:
        return x.transpose(2, 1, 0, 3)
    if layout == "whc" and x.ndim == 5:
        return x.transpose(0, 3, 2, 1, 4)
    return x


def load_array(path: str | Path, what: str) -> np.ndarray:
    """One numeric .npy array from ``path``; ValueError naming the file otherwise."""
    problem = not_a_regular_file(path)
    if problem:
        raise ValueError(f"{path}: {problem} (the {what} must be a .npy file)")
    shape, dtype = _npy_header(path, what)
    if dtype.kind not in "biuf":
        raise ValueError(f"{path}: the {what} holds {dtype} values; expected numbers (bool, integers or floats)")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: the {what} cannot be read ({str(e)[:120]})") from None
    if x.shape != shape:
        raise ValueError(f"{path}: the {what} declares shape {shape} but holds {x.shape}")
    return x


def _npy_header(path: str | Path, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy header, and a check that the file holds
    every byte the header declares, before any data is read."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            if f.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                raise ValueError(f"{path}: the {what} is not a .npy array (an .npz archive, a pickle or "
                                 f"another format)")
            f.seek(0)
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            data_start = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        if str(e).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: the {what} has no readable .npy header ({str(e)[:120]})") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: the {what} holds Python objects; only numeric arrays are read (no pickles)")
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    have = Path(path).stat().st_size - data_start
    if have < need:
        raise ValueError(f"{path}: the {what} declares shape {shape} of {dtype} ({need:,} bytes) but the file "
                         f"holds {have:,}: truncated")
    return tuple(int(n) for n in shape), dtype


def input_range(desc: NetDescription, input_message_bits: int = 0) -> tuple[int, int, str]:
    """(lowest, highest, what they are) for the values of an input to ``desc``.

    Into an input neuron the array is a current (graded by nature); into the
    first synapse it is spikes, 0 or 1 (Lava's synapse counts any non-zero
    value as 1, so 5 or -1 would silently count as 1), unless the run takes
    graded input (``input_message_bits``, as netx's Network takes it), whose
    payloads must fit that many signed bits."""
    if desc.has_input_neuron:
        return (-MAX_INPUT_CURRENT, MAX_INPUT_CURRENT,
                "input currents into the input neuron (Lava shifts them left by 6 in int32)")
    if input_message_bits > 0:
        if input_message_bits > MAX_INPUT_MESSAGE_BITS:
            raise ValueError(f"input_message_bits = {input_message_bits}: at most {MAX_INPUT_MESSAGE_BITS} "
                             f"(Lava sends input payloads as int32)")
        half = 1 << (input_message_bits - 1)
        return -half, half - 1, f"graded spikes of {input_message_bits} message bits"
    return 0, 1, "spikes into the first synapse (graded input needs input_message_bits)"


@dataclass(frozen=True)
class InputBatch:
    """What enters a network's first layer, checked against it once:
    ``values`` (N, *input_shape, T) int32, each within ``input_range`` for
    ``message_bits``. ``check_input`` makes it; the engines and runners take
    it as it is, without checking or copying it again."""
    values: np.ndarray
    message_bits: int

    def __len__(self) -> int:
        return len(self.values)

    def head(self, k: int) -> "InputBatch":
        """The first ``k`` samples (a view)."""
        return InputBatch(self.values[:k], self.message_bits)


def check_input(inputs: np.ndarray | InputBatch, desc: NetDescription, input_message_bits: int = 0,
                origin: str | Path | None = None) -> InputBatch:
    """Input as (N, *input_shape, T) int32; accept (*input_shape, T) for one
    sample. A batch already checked for the same input shape and message bits
    comes back as it is.

    Raises ValueError, naming ``origin`` (the input's file) when given,
    stating the expected shape or the values allowed (``input_range``) and
    the first value found outside them.
    """
    shape = tuple(desc.input_shape)
    if isinstance(inputs, InputBatch):
        if inputs.values.shape[1:-1] == shape and inputs.message_bits == input_message_bits:
            return inputs
        inputs = inputs.values
    name = f"{origin}: " if origin is not None else "input: "
    inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "biuf":
        raise ValueError(f"{name}{inputs.dtype} values; expected numbers (spikes or input currents)")
    if inputs.shape[:-1] == shape:
        inputs = inputs[None]
    if inputs.ndim != len(shape) + 2 or inputs.shape[1:-1] != shape:
        dims = ", ".join(map(str, shape))
        raise ValueError(f"{name}shape {inputs.shape} does not fit {desc.path}: expected "
                         f"({dims}, T) or (N, {dims}, T) in (C, H, W) order"
                         + (" (an input in Lava's (W, H, C) order takes --layout whc)" if len(shape) == 3 else ""))
    if inputs.shape[0] < 1 or inputs.shape[-1] < 1:
        raise ValueError(f"{name}shape {inputs.shape} holds no samples or no time steps (N and T must be >= 1)")
    if np.issubdtype(inputs.dtype, np.floating):
        bad = ~np.isfinite(inputs) | (inputs != np.trunc(inputs))
        if bad.any():
            raise ValueError(f"{name}{_number(inputs[bad].flat[0])} at {_first_index(bad)} is not a whole number "
                             f"(inputs are spikes or integer input currents)")
    lo, hi, what = input_range(desc, input_message_bits)
    bad = (inputs < lo) | (inputs > hi)
    if bad.any():
        raise ValueError(f"{name}{int(bad.sum()):,} values outside {lo:,}..{hi:,}, the first "
                         f"{_number(inputs[bad].flat[0])} at {_first_index(bad)}: the values allowed for {what}")
    return InputBatch(inputs.astype(np.int32, copy=False), input_message_bits)


def input_transform_note(desc: NetDescription, inputs: np.ndarray) -> str | None:
    """A warning when 0/1 spikes go into an input neuron whose file asks for
    an input transform Lava does not apply (netx's Input.transform, e.g.
    lava-dl's PilotNet LIF: weight 40, bias 36; its 0/1 example input never
    reaches that neuron's threshold on its own). None when nothing to say."""
    first = desc.layers[0]
    if not desc.has_input_neuron or first.input_transform == (1, 0):
        return None
    if not np.isin(inputs, (0, 1)).all():
        return None
    weight, bias = first.input_transform
    return (f"{desc.path}: the input goes into an input neuron whose layer asks for netx's input transform "
            f"(weight {weight}, bias {bias}), which Lava does not apply; the input here is 0/1, taken as currents "
            f"of 0 or 1. lava-dl feeds weight * image + bias to that neuron itself: scale the input if that is "
            f"what you mean.")


def _number(v) -> str:
    """A value for a message: whole numbers without a trailing .0."""
    v = v.item() if hasattr(v, "item") else v
    return str(int(v)) if isinstance(v, float) and v.is_integer() else repr(v)


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def load_labels(path: str | Path, samples: int) -> np.ndarray:
    """``samples`` integer class labels from a .npy file, as (N,) int64."""
    y = load_array(path, "labels")
    if y.shape != (samples,):
        raise ValueError(f"{path}: labels of shape {y.shape}; expected ({samples},), one per input sample")
    whole = not np.issubdtype(y.dtype, np.floating) or (np.isfinite(y).all() and np.array_equal(y, np.trunc(y)))
    if not whole or y.min(initial=0) < 0:
        raise ValueError(f"{path}: labels must be class indices (whole numbers >= 0)")
    return y.astype(np.int64)


def _to_lava_order(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W, T) -> (N, W, H, C, T): netx's (x, y, z) order. Flat shapes pass."""
    if x.ndim == 5:
        return x.transpose(0, 3, 2, 1, 4)
    return x


def _from_lava_order(x: np.ndarray) -> np.ndarray:
    if x.ndim == 4:  # (W, H, C, steps)
        return x.transpose(2, 1, 0, 3)
    return x


def import_lava() -> None:
    """Import lava.magma, whatever touched multiprocessing before.

    lava-nc 0.10.0 (archived, never patched here) calls
    ``multiprocessing.set_start_method('fork')`` without ``force`` when
    ``lava.magma.runtime.message_infrastructure.multiprocessing`` is imported,
    which raises "context has already been set" once anything (tqdm's lock,
    torch) has used the default context. We clear the recorded context for that
    one import; Lava then sets 'fork', the only start method its runtime uses.
    """
    import multiprocessing   # with Lava's import below: only where Lava runs
    import multiprocessing.context

    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
        return
    except RuntimeError as e:
        if "context has already been set" not in str(e):
            raise
    default = multiprocessing.context._default_context
    saved = default._actual_context
    default._actual_context = None
    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401,F811
    finally:
        if default._actual_context is None:
            default._actual_context = saved


@functools.lru_cache(maxsize=None)
def _recurrent_dense_model():
    """A process model for netx's RecurrentDense block. netx 0.6.0 (archived,
    never patched here) defines the block but no model for it, so Lava cannot
    compile a ``dense_rec`` layer. Like netx's own PyDenseModel, the model just
    builds the block's sub-processes (synapse, recurrent synapse, neuron); we
    hand it to Lava through the run config's ``exception_proc_model_map``."""
    # Lava (here and below): imported where a run needs it; it imports only on Python 3.10
    from lava.lib.dl.netx.blocks.models import AbstractPyBlockModel
    from lava.lib.dl.netx.blocks.process import RecurrentDense
    from lava.magma.core.decorator import implements
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    @implements(proc=RecurrentDense, protocol=LoihiProtocol)
    class PyRecurrentDenseModel(AbstractPyBlockModel):
        pass

    return {RecurrentDense: PyRecurrentDenseModel}


def _attach_probes(net, data: np.ndarray, total: int, has_input_neuron: bool, record_states: bool,
                   readout: bool):
    """Feed ``data`` (Lava order, ``total`` steps) into ``net`` and probe every
    layer: a spike sink per layer, and with ``record_states`` a Monitor pair
    (current u, voltage v) per layer. Returns (sinks, monitor pairs, the
    voltage Monitor of the last layer where ``readout`` asks for it and
    ``record_states`` has none)."""
    from lava.proc.io.sink import RingBuffer as Sink   # Lava: only where a run needs it
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    source = Source(data=data)
    if has_input_neuron:
        source.s_out.connect(net.in_layer.neuron.a_in)
    else:
        source.s_out.connect(net.inp)
    sinks = []
    for layer in net.layers:
        sink = Sink(shape=layer.out.shape, buffer=total)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    monitors = []
    if record_states:
        for layer in net.layers:
            pair = (Monitor(), Monitor())
            pair[0].probe(target=layer.neuron.u, num_steps=total)
            pair[1].probe(target=layer.neuron.v, num_steps=total)
            monitors.append(pair)
    readout_monitor = None
    if readout and not record_states:
        readout_monitor = Monitor()
        readout_monitor.probe(target=net.layers[-1].neuron.v, num_steps=total)
    return sinks, monitors, readout_monitor


def _monitor_record(monitor) -> np.ndarray:
    """A Monitor's one probe, (*shape, steps): its data is {process name: {var name: (steps, *shape)}}."""
    return np.moveaxis(next(iter(next(iter(monitor.get_data().values())).values())), 0, -1)


def run_on_lava(desc: NetDescription, inputs: np.ndarray | InputBatch, chunk_steps: int = 2000,
                progress: bool = True, record_states: bool = False,
                input_message_bits: int = 0, stop_timeout_s: float = STOP_TIMEOUT_S) -> LavaRun:
    """Run ``inputs`` (N, *input_shape, T) through the network ``desc`` (as
``read_network`` returns it; netx builds Lava's processes from its file).

    The array is what enters the first layer: for an ``input`` layer with a
    neuron it is added to that neuron's input current (``in_layer.neuron.a_in``,
    as lava-dl's tutorials do); otherwise it is the spike input of the first
    synaptic layer. The runtime is always stopped, on error, Ctrl-C and SIGTERM
    too, within ``stop_timeout_s`` seconds (then its workers are killed), and
    leaves no process or shared memory behind (``lava_guard.LavaRunGuard``).
    ``record_states`` also probes every layer's current u and voltage v (a
    Monitor per variable: slower; meant for checks on small runs). A
    potential readout's voltage is always probed, for its value at the end of
    each window (``LavaRun.readout_potential``).
    ``input_message_bits > 0`` makes the first synapse take graded spikes (the
    input's integers as payloads) instead of counting any non-zero input as 1.
    """
    import_lava()
    from lava.lib.dl import netx   # Lava: only where a run needs it (it imports only on Python 3.10)

    net_path = desc.path
    x = check_input(inputs, desc, input_message_bits).values
    n, steps = x.shape[0], x.shape[-1]
    offset = 0 if desc.has_input_neuron else 1
    num_layers = len(desc.spiking_layers)
    total = n * steps + num_layers + offset - 1
    data = _input_stream(desc, x, total)

    network, models = netx.hdf5.Network, _recurrent_dense_model()
    if any(l.lava_block for l in desc.layers):   # ISI gates: our blocks (netx 0.6.0 has none)
        from lavasparse.deploy.lava_blocks import isi as isi_lava
        network, models = isi_lava.IsiNetwork, {**models, **isi_lava.PROCESS_MODELS}
    with LavaRunGuard(stop_timeout_s) as guard:
        net = network(net_config=str(net_path), reset_interval=steps, reset_offset=offset,
                      input_message_bits=input_message_bits)
        guard.net = net
        if len(net.layers) != num_layers:
            raise RuntimeError(f"{net_path}: netx built {len(net.layers)} layers, we expected {num_layers}")
        readout = desc.readout == "potential"
        sinks, monitors, readout_monitor = _attach_probes(net, data, total, desc.has_input_neuron, record_states,
                                                          readout)
        t0 = time.time()
        _run_in_chunks(net, total, chunk_steps, f"Lava {Path(net_path).name}", progress, models)
        records = [np.asarray(s.data.get()) for s in sinks]
        states = [[_monitor_record(m) for m in pair] for pair in monitors]
        readout_v = [_monitor_record(readout_monitor)] if readout_monitor is not None else None
    seconds = time.time() - t0

    spikes = _sample_windows(records, n, steps, offset, np.int32)
    currents = _sample_windows([st[0] for st in states], n, steps, offset, np.int64) if record_states else None
    voltages = _sample_windows([st[1] for st in states], n, steps, offset, np.int64) if record_states else None
    potential = None
    if readout:   # the last layer's v in its windows, at each window's last step
        last = voltages[-1] if record_states else _sample_windows(readout_v, n, steps, offset + num_layers - 1,
                                                                   np.int64)[0]
        potential = last[..., -1]
    return LavaRun(desc, [l.name for l in desc.spiking_layers], spikes, steps, total, seconds,
                   currents, voltages, potential)


def _input_stream(desc: NetDescription, x: np.ndarray, total: int) -> np.ndarray:
    """The batch x (N, *input_shape, T) as one stream in Lava's order,
    (*lava_shape, total): the samples one after another, then zeros for the
    steps the last sample's spikes take to cross the network."""
    n, steps = x.shape[0], x.shape[-1]
    if desc.spiking_layers[0].takes_flat_input and x.ndim > 3:
        # netx applies a flatten only between two layers it built: right after
        # a shape-only input the first dense layer takes the input flat, in
        # (C, H, W) order.
        x = x.reshape(n, -1, steps)
    data = _to_lava_order(x)
    data = np.moveaxis(data, 0, -2).reshape(*data.shape[1:-1], n * steps)
    return np.concatenate([data, np.zeros((*data.shape[:-1], total - n * steps), np.int32)], -1)


def _run_in_chunks(net, total: int, chunk_steps: int, title: str, progress: bool, models: dict) -> None:
    """``total`` steps of the netx network on Loihi2SimCfg (fixed_pt), in runs
    of at most ``chunk_steps`` so that the progress bar moves; ``models``:
    process models Lava is handed (``exception_proc_model_map``)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    with tqdm(total=total, desc=title, unit="step", disable=None if progress else True, leave=False) as bar:
        run_cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
        done = 0
        while done < total:
            k = min(chunk_steps, total - done)
            net.run(condition=RunSteps(num_steps=k), run_cfg=run_cfg)
            done += k
            bar.update(k)


def _sample_windows(records: list[np.ndarray], n: int, steps: int, offset: int, dtype) -> list[np.ndarray]:
    """Each layer's record of the stream (Lava's order, (*shape, total)) cut
    into the n samples' windows, (n, *shape, steps) in our order: layer l's
    window of sample k starts at step k*T + l + offset - 1 (one step of
    latency per synaptic layer)."""
    out = []
    for l, rec in enumerate(records, start=1):
        rec = _from_lava_order(rec)
        start = l + offset - 1
        out.append(np.stack([rec[..., start + k * steps: start + (k + 1) * steps] for k in range(n)]).astype(dtype))
    return out
