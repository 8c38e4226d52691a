"""A NIR graph as a lavasparse network: a SpikingNet with the graph's
weights, in a run folder that every other command reads (``check``,
``profile``, ``deploy``, the comparison report; fine-tuning starts from its
``best.pt``), and its netx file, written by our own exporter.

What is read: a chain ``Input`` -> (synapse -> neuron | ``Flatten``)... ->
``Output``, a synapse being ``Linear``/``Affine`` (a dense layer), ``Conv2d``
(a conv layer; one whose kernel is a per-channel sum, stride = kernel, is a
sum pool), ``SumPool2d`` or ``AvgPool2d`` (a pool), and a neuron ``CubaLIF``,
``LIF`` or ``IF``, discretised with forward Euler at ``dt`` (the graph's
metadata ``dt`` when it has one, else ``NIR_DT``, which snnTorch's writer
uses) into Lava's CUBA neuron:

    CubaLIF: current decay a = dt / tau_syn, voltage decay c = dt / tau_mem,
             each input weighted by a * w_in * c * r (Euler's factors on I and v);
    LIF:     a = 1 (the current is the input of the step), c = dt / tau, weight c * r;
    IF:      a = 1, c = 0, weight dt * r.

Per-neuron input gains and thresholds are folded into each neuron's weights
(its dynamics are linear up to the threshold, and it resets to zero), so a
layer has one threshold, as SLAYER's blocks have. Each layer's weights and
threshold are then scaled together so that the largest weight uses SLAYER's
8-bit weights (``NIR_MAX_WEIGHT``) and the threshold fits Lava's 17 bits;
a graph lavasparse wrote is already on that grid and is not rescaled.

Refused with the node and the field named (``NirImportError``): a node type
outside these, a branch or a cycle (recurrence), a non-zero reset or leak
voltage, a bias, per-neuron time constants (one decay per layer on Loihi),
a non-positive threshold, and conv geometry SLAYER's blocks do not train
(dilation, groups, non-square kernels, unequal strides or padding).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lavasparse.defaults import (DEFAULT_DATASET, DEFAULT_ENCODING, NIR_DT, NIR_MAX_THRESHOLD_MANT, NIR_MAX_WEIGHT,
                                 STEPS)
from lavasparse.fileio import write_json
from lavasparse.layers.geometry import conv_out_size
from lavasparse.train.model import NetConfig, NeuronConfig, SpikingNet
from lavasparse.train.trainer import TrainConfig, claim_run_folder, save_best

from .netx_export import export_netx
from .netx_format import NetDescription

SYNAPSES = ("Linear", "Affine", "Conv2d", "SumPool2d", "AvgPool2d")
NEURONS = ("CubaLIF", "LIF", "IF")


class NirImportError(ValueError):
    """A NIR graph lavasparse cannot bring onto Loihi: the message names the node and the field."""


@dataclass
class ImportedLayer:
    """One synaptic layer read from the graph: its architecture token, its
    weights in SLAYER's units (dense (out, in); conv (out, in, k, k); a pool's
    single weight) and its neuron."""
    token: str
    weight: np.ndarray | float
    neuron: NeuronConfig
    synapse_node: str
    neuron_node: str


def _chain(graph) -> list[str]:
    """The node names from the input to the output, refusing anything but a chain."""
    import nir

    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise NirImportError(f"the graph has {len(inputs)} Input nodes; lavasparse imports a chain from one input")
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    order, node = [], inputs[0]
    while True:
        order.append(node)
        if isinstance(graph.nodes[node], nir.Output):
            break
        nxt = succ.get(node, [])
        if len(nxt) != 1:
            raise NirImportError(f"node {node!r}: {len(nxt)} outgoing edges; lavasparse imports a chain "
                                 f"(no branches, no recurrence)")
        node = nxt[0]
        if node in order:
            raise NirImportError(f"node {node!r}: a cycle (recurrent connections are not imported yet)")
        if node not in graph.nodes:
            raise NirImportError(f"edge to {node!r}: no such node")
        if isinstance(graph.nodes[node], nir.NIRGraph):
            raise NirImportError(f"node {node!r}: a subgraph (snnTorch writes recurrent layers so); recurrent "
                                 f"layers are not imported yet")
    if len(order) != len(graph.nodes):
        extra = sorted(set(graph.nodes) - set(order))
        raise NirImportError(f"nodes {extra} are not on the path from the input to the output")
    return order


def _one_value(a, name: str, field: str, why: str) -> float:
    values = np.unique(np.asarray(a, dtype=np.float64))
    if values.size != 1:
        raise NirImportError(f"node {name!r}/{field}: {values.size} different values; {why}")
    return float(values[0])


def _neuron(node, name: str, dt: float, shape: tuple[int, ...]) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(current decay, voltage decay, input gain per neuron, threshold per neuron) of a neuron node."""
    kind = type(node).__name__
    for field in ("v_reset", "v_leak"):
        value = getattr(node, field, None)
        if value is not None and np.any(np.asarray(value) != 0):
            raise NirImportError(f"node {name!r}/{field}: {np.asarray(value).ravel()[:3]}...; Loihi's CUBA neuron "
                                 f"resets to zero and has no leak voltage (only a zero {field} is imported)")
    one_tau = "Loihi has one decay per layer (per-neuron time constants are refused)"
    if kind == "CubaLIF":
        a = dt / _one_value(node.tau_syn, name, "tau_syn", one_tau)
        c = dt / _one_value(node.tau_mem, name, "tau_mem", one_tau)
        gain = a * np.asarray(node.w_in, dtype=np.float64) * c * np.asarray(node.r, dtype=np.float64)
    elif kind == "LIF":
        a, c = 1.0, dt / _one_value(node.tau, name, "tau", one_tau)
        gain = c * np.asarray(node.r, dtype=np.float64)
    else:   # IF
        a, c = 1.0, 0.0
        gain = dt * np.asarray(node.r, dtype=np.float64)
    for value, field in ((a, "tau_syn" if kind == "CubaLIF" else "dt"), (c, "tau_mem" if kind == "CubaLIF" else "tau")):
        if not 0.0 <= value <= 1.0:
            raise NirImportError(f"node {name!r}/{field}: a decay of {value:g} per step at dt = {dt:g} s; "
                                 f"Loihi's decays lie in [0, 1] (a time constant below dt)")
    threshold = np.asarray(node.v_threshold, dtype=np.float64)
    if np.any(threshold <= 0):
        raise NirImportError(f"node {name!r}/v_threshold: {threshold.min():g}; Loihi's threshold is positive")
    size = int(np.prod(shape))
    for field, arr in (("gain", gain), ("v_threshold", threshold)):
        if arr.size not in (1, size):
            raise NirImportError(f"node {name!r}/{field}: {arr.size} values for {size} neurons")
    gain = np.broadcast_to(gain.reshape(-1) if gain.size == size else gain.reshape(()), (size,)).reshape(shape)
    threshold = np.broadcast_to(threshold.reshape(-1) if threshold.size == size else threshold.reshape(()),
                                (size,)).reshape(shape)
    return a, c, gain, threshold


def _per_channel(a: np.ndarray, name: str, field: str) -> np.ndarray:
    """A conv layer's per-neuron factor as one per channel (a kernel is shared over positions)."""
    flat = a.reshape(a.shape[0], -1)
    if np.any(flat != flat[:, :1]):
        raise NirImportError(f"node {name!r}/{field}: differs between positions of one channel; a conv layer "
                             f"shares its kernel, so only per-channel values are imported")
    return flat[:, 0]


def _pool_of_conv(node) -> tuple[int, float] | None:
    """(kernel, weight) when a Conv2d is a sum pool: each output channel sums
    its own input channel over a k x k window with one weight, stride k."""
    w = np.asarray(node.weight, dtype=np.float64)
    c_out, c_in, kh, kw = w.shape
    stride, padding = np.broadcast_to(node.stride, 2), np.broadcast_to(node.padding, 2)
    if c_out != c_in or kh != kw or tuple(stride) != (kh, kw) or np.any(padding != 0) or node.groups != 1:
        return None
    diag = w[np.arange(c_out), np.arange(c_out)]
    off = w.copy()
    off[np.arange(c_out), np.arange(c_out)] = 0
    if off.any() or np.unique(diag).size != 1 or diag.flat[0] == 0:
        return None
    return kh, float(diag.flat[0])


def _synapse(node, name: str, in_shape: tuple[int, ...]) -> tuple[str, np.ndarray | float, tuple[int, ...]]:
    """(architecture token, weights, output shape) of a synapse node after a layer of ``in_shape``."""
    kind = type(node).__name__
    bias = getattr(node, "bias", None)
    if bias is not None and np.any(np.asarray(bias) != 0):
        raise NirImportError(f"node {name!r}/bias: non-zero; lavasparse's SLAYER blocks train no bias, and netx "
                             f"would add it to the voltage where NIR adds it to the current (export it without bias)")
    if kind in ("Linear", "Affine"):
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != int(np.prod(in_shape)):
            raise NirImportError(f"node {name!r}/weight: shape {w.shape} after {int(np.prod(in_shape))} inputs")
        return str(w.shape[0]), w, (w.shape[0],)
    if len(in_shape) != 3:
        raise NirImportError(f"node {name!r}: a {kind} after a flat layer of {in_shape}")
    if kind in ("SumPool2d", "AvgPool2d"):
        k = np.broadcast_to(np.asarray(node.kernel_size), 2)
        stride, padding = np.broadcast_to(np.asarray(node.stride), 2), np.broadcast_to(np.asarray(node.padding), 2)
        if k[0] != k[1] or tuple(stride) != tuple(k) or np.any(padding != 0):
            raise NirImportError(f"node {name!r}/kernel_size, stride, padding: {tuple(k)}, {tuple(stride)}, "
                                 f"{tuple(padding)}; a pool is imported with a square kernel, stride = kernel, "
                                 f"no padding")
        k = int(k[0])
        weight = 1.0 if kind == "SumPool2d" else 1.0 / (k * k)
        return f"p{k}", weight, (in_shape[0], in_shape[1] // k, in_shape[2] // k)
    # Conv2d
    pool = _pool_of_conv(node)
    if pool is not None:
        k, weight = pool
        return f"p{k}", weight, (in_shape[0], in_shape[1] // k, in_shape[2] // k)
    w = np.asarray(node.weight, dtype=np.float64)
    stride, padding = np.broadcast_to(node.stride, 2), node.padding
    dilation = np.broadcast_to(node.dilation, 2)
    if isinstance(padding, str):
        raise NirImportError(f"node {name!r}/padding: {padding!r}; give the padding in pixels")
    padding = np.broadcast_to(padding, 2)
    for field, pair in (("stride", stride), ("padding", padding)):
        if pair[0] != pair[1]:
            raise NirImportError(f"node {name!r}/{field}: {tuple(pair)}; SLAYER's conv blocks take one value")
    if np.any(dilation != 1):
        raise NirImportError(f"node {name!r}/dilation: {tuple(dilation)}; only 1 is imported")
    if node.groups != 1:
        raise NirImportError(f"node {name!r}/groups: {node.groups}; only 1 is imported (or a sum pool)")
    if w.shape[2] != w.shape[3] or w.shape[1] != in_shape[0]:
        raise NirImportError(f"node {name!r}/weight: shape {w.shape} after a {in_shape} layer (square kernels only)")
    k, s, p = w.shape[2], int(stride[0]), int(padding[0])
    return f"c{w.shape[0]}k{k}s{s}p{p}", w, (w.shape[0], conv_out_size(in_shape[1], k, s, p),
                                             conv_out_size(in_shape[2], k, s, p))


def read_layers(graph, dt: float, rescale: bool) -> tuple[tuple[int, ...], list[ImportedLayer], float]:
    """(input shape, layers, pool weight) of a NIR graph (see the module doc)."""
    import nir

    order = _chain(graph)
    nodes = graph.nodes
    shape = tuple(int(v) for v in np.asarray(nodes[order[0]].input_type["input"]).ravel())
    in_shape, layers, pool_weight = shape, [], None
    i = 1
    while not isinstance(nodes[order[i]], nir.Output):
        name, node = order[i], nodes[order[i]]
        kind = type(node).__name__
        if kind == "Flatten":
            shape = (int(np.prod(shape)),)
            i += 1
            continue
        if kind not in SYNAPSES:
            raise NirImportError(f"node {name!r}: a {kind} node where a synapse ({', '.join(SYNAPSES)}) or Flatten "
                                 f"was expected; lavasparse imports these and {', '.join(NEURONS)} neurons")
        neuron_name = order[i + 1]
        neuron_node = nodes[neuron_name]
        if type(neuron_node).__name__ not in NEURONS:
            raise NirImportError(f"node {neuron_name!r}: a {type(neuron_node).__name__} after synapse {name!r}; "
                                 f"each synapse must feed a neuron ({', '.join(NEURONS)})")
        token, w, out_shape = _synapse(node, name, shape)
        a, c, gain, threshold = _neuron(neuron_node, neuron_name, dt, out_shape)
        # Fold each neuron's input gain and threshold into its weights: one threshold per layer.
        factor = gain / threshold
        if isinstance(w, float):        # a pool: one weight for the layer
            per_neuron = factor.reshape(-1)
            thr_unit = _one_value(per_neuron, neuron_name, "gain / v_threshold",
                                  "a pool has one weight, so its neurons need one gain and threshold")
            if pool_weight is None:
                pool_weight = w
            # weight w * thr_unit per unit threshold: keep the pool's weight and set the threshold to match
            theta = pool_weight / (w * thr_unit)
            weight: np.ndarray | float = pool_weight
        else:
            row = _per_channel(factor, neuron_name, "gain / v_threshold") if w.ndim == 4 else factor.reshape(-1)
            theta = float(threshold.max())
            weight = w * row.reshape(-1, *([1] * (w.ndim - 1))) * theta
            if rescale:
                k = min(NIR_MAX_WEIGHT / (64 * float(np.abs(weight).max() or 1.0)), NIR_MAX_THRESHOLD_MANT / 64 / theta)
                weight, theta = weight * k, theta * k
        if 64 * theta > NIR_MAX_THRESHOLD_MANT:
            raise NirImportError(f"node {neuron_name!r}/v_threshold: {theta:g} x 64 beyond Lava's 17-bit vth")
        layers.append(ImportedLayer(token, weight, NeuronConfig(threshold=float(theta), current_decay=a,
                                                                voltage_decay=c), name, neuron_name))
        shape = out_shape
        i += 2
    if not layers or not layers[-1].token.isdigit():
        raise NirImportError("the graph must end in a dense layer (Linear or Affine, then a neuron): "
                             "lavasparse's networks classify with their last layer")
    return in_shape, layers, pool_weight if pool_weight is not None else 1.0


def _set_weights(model: SpikingNet, layers: list[ImportedLayer]) -> None:
    blocks = [b for spec, b in zip(model.specs, model.blocks) if spec.spiking]
    if len(blocks) != len(layers):
        raise RuntimeError(f"{len(layers)} imported layers built {len(blocks)} blocks")
    with torch.no_grad():
        for block, layer in zip(blocks, layers):
            if isinstance(layer.weight, float):
                continue   # a pool: its weight is the net's pool_weight
            w = torch.as_tensor(layer.weight, dtype=torch.float32)
            target = block.synapse.weight
            target.copy_(w.reshape(*w.shape, *([1] * (target.ndim - w.ndim))))


@dataclass
class ImportedNetwork:
    """What ``import_nir`` wrote: the run's config, its netx description and how each layer was read."""
    config: TrainConfig
    description: NetDescription
    layers: list[ImportedLayer]
    dt: float
    rescaled: bool


def import_nir(path: str | Path, out: str | Path, dataset: str = DEFAULT_DATASET, steps: int = STEPS,
               dt: float | None = None, rescale: bool | None = None,
               encoding: str = DEFAULT_ENCODING) -> ImportedNetwork:
    """Read the NIR file ``path`` into run folder ``out`` (config.json,
    best.pt, network.net, imported.json). ``dt``: seconds
    per step (default: the graph's metadata, else NIR_DT). ``rescale``:
    scale each layer to the 8-bit weights (default: unless lavasparse wrote
    the graph). ``dataset``, ``steps`` and ``encoding`` go into the run's
    config, for evaluating and fine-tuning it."""
    import nir

    path, out = Path(path), Path(out)
    try:
        graph = nir.read(path)
    except Exception as e:   # nir raises whatever h5py or its own checks raise
        raise NirImportError(f"{path}: not a NIR file nir can read ({type(e).__name__}: {e})") from None
    meta = getattr(graph, "metadata", None) or {}
    ours = str(meta.get("source", "")) == "lavasparse"
    dt = float(dt if dt is not None else meta.get("dt", NIR_DT))
    rescale = (not ours) if rescale is None else rescale
    try:
        in_shape, layers, pool_weight = read_layers(graph, dt, rescale)
    except NirImportError as e:
        raise NirImportError(f"{path}: {e}") from None
    arch = "-".join(["x".join(map(str, in_shape))] + [l.token for l in layers])
    net = NetConfig(arch=arch, neuron=layers[0].neuron, pool_weight=pool_weight,
                    layer_neurons=tuple(l.neuron for l in layers))
    config = TrainConfig(name=path.stem, net=net, dataset=dataset, epochs=0, steps=steps, encoding=encoding)
    model = SpikingNet(net)
    _set_weights(model, layers)
    out.mkdir(parents=True, exist_ok=True)
    claim_run_folder(config, out)   # refuses a folder that holds another run
    save_best(out, model.state_dict(), 0, config)
    write_json(out / "imported.json", {"nir_file": str(path), "dt": dt, "rescaled": rescale,
                                       "layers": [{"synapse": l.synapse_node, "neuron": l.neuron_node,
                                                   "token": l.token, "threshold": l.neuron.threshold}
                                                  for l in layers]})
    return ImportedNetwork(config, export_netx(model, out / "network.net"), layers, dt, rescale)
