"""lavasparse train: one SNN into a (resumable) run folder, from scratch or
fine-tuned from another run (``--init-from``, an imported one included)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lavasparse.layers import IsiConfig
from lavasparse.pipeline import RunSettings
from lavasparse.train.model import parse_arch
from lavasparse.train.trainer import TrainConfig, run_checkpoint, train

from ._training import download_if_asked, run_settings

# What a fine-tuning run takes from its source run folder unless the command line sets it: the input the
# source's weights were trained (or imported) for.
_INHERITED_INPUT = ("steps", "encoding", "max_rate", "latency_window")


def _source_run(init_from: str) -> tuple[str, TrainConfig | None]:
    """(the checkpoint to start from, as an absolute path; the source run's
    config when ``init_from`` is a run folder, else None)."""
    path = Path(init_from).expanduser().resolve()
    if path.is_dir():
        config, best = run_checkpoint(path, "best")
        return str(best), config
    if not path.exists():
        raise FileNotFoundError(f"--init-from {init_from}: no such run folder or checkpoint")
    return str(path), None


def _with_net_flags(net, a):
    """The source run's network, with ``--isi-rule`` applied to its ISI
    layers, the backward flags (``--backward``, ``--active-band``,
    ``--tau-grad``) to every layer and ``--readout`` to its output layer
    (the same weights, read out another way); ``--synapse`` must agree with
    the network the weights belong to."""
    if a.backward is not None or a.active_band is not None:
        net = replace(net, backward=a.backward or net.backward,
                      active_band=a.active_band if a.active_band is not None else net.active_band)
    if a.readout is not None:
        net = replace(net, readout=a.readout)
    if a.tau_grad is not None:   # an imported network has a neuron per layer: each takes the width
        net = replace(net, neuron=replace(net.neuron, tau_grad=a.tau_grad),
                      layer_neurons=None if net.layer_neurons is None else
                      tuple(replace(n, tau_grad=a.tau_grad) for n in net.layer_neurons))
    has_isi = any(spec.synapse == "isi" for spec in parse_arch(net.arch))   # dense or conv
    if a.synapse is not None and (a.synapse == "isi") != has_isi:
        raise ValueError(f"--synapse {a.synapse} but --init-from {a.init_from} is a {net.arch} network")
    if a.isi_rule is not None:
        if not has_isi:
            raise ValueError(f"--isi-rule {a.isi_rule}: --init-from {a.init_from} ({net.arch}) has no ISI layers")
        net = replace(net, isi=replace(net.isi or IsiConfig(), rule=a.isi_rule))
    return net


def run(a) -> int:
    if a.sigma0 and len(a.sigma0) > 1:
        raise ValueError("train takes one --sigma0")
    settings = run_settings(a)
    checkpoint, source = _source_run(a.init_from) if a.init_from else (None, None)
    if source is not None:
        if a.arch is not None and a.arch != source.net.arch:
            raise ValueError(f"--arch {a.arch} but --init-from {a.init_from} is a {source.net.arch} network")
        settings = {**{k: getattr(source, k) for k in _INHERITED_INPUT}, **settings}
    if checkpoint:   # on the command line, --epochs and --lr are taken as given, also when fine-tuning
        settings.update({k: v for k, v in (("sparse_epochs", a.epochs), ("sparse_lr", a.lr)) if v is not None})
    cfg = RunSettings(**settings).train_config(a.name or Path(a.out).name, a.schedule or "baseline",
                                               a.sigma0[0] if a.sigma0 else 0.0, init_from=checkpoint,
                                               cost=a.cost, prune_density=a.prune_density)
    if source is not None:   # a run folder's network is what its weights belong to (an imported one: a neuron per layer)
        cfg = replace(cfg, net=_with_net_flags(source.net, a))
    download_if_asked(a)
    best = train(cfg, a.out)
    print(json.dumps(best, indent=2))
    return 0
