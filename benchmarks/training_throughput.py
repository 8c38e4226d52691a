"""Training throughput with and without each cost term, same network, same
batches, one machine: samples per second of forward + backward + optimiser
step, on the CPU and, when there is one, the GPU; and (``--epoch-images``)
the seconds of one whole training epoch as the trainer runs it (encoding,
steps, validation), which is what the cost term's budget (under 10% added) is
about.

"None" trains on SLAYER's spike-rate loss alone; the others add sigma * cost:
the hidden spike count (Allred et al.), the synaptic ops (fan-out gate over
every synapse, input layer included) or the dynamic energy (train/cost.py),
so the differences are what each term costs. Encoding is done once
beforehand and not timed. Runs rotate (none, spikes, synops, energy, none,
...) so that drift in the machine's speed hits all; the table shows the
median of the repeats.

  .venv/bin/python benchmarks/training_throughput.py [--arch 784-500-10] [--device cpu cuda] [--epoch-images 6000]

``--dynamics`` prints instead, per network and step count, the forward,
backward and whole training step (Adam included) in ms per batch with
SLAYER's own CPU loop over time, with its integrators compiled
(train/cuba_cpu.py and train/event_synapse.py: the same spikes; gradients to float32 rounding), and with the hidden layers' sparse
backward on top (train/sparse_backward.py, ``--band``); on a GPU, SLAYER's
CUDA kernels and the sparse backward, with the peak memory. Each path also
shows the memory autograd keeps for the backward pass and, sparse, the
hidden layers' active fraction. The event-data row is N-MNIST-shaped
(2x34x34 input, 300 steps, 2% of the inputs spiking per step).

  .venv/bin/python benchmarks/training_throughput.py --dynamics [--device cpu] [--band 0.5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lavasparse.train.device import prepare_cuda_jit, resolve_device
from lavasparse.train.encode import encode_batch, encode_images
from lavasparse.simulate.energy import default_profile
from lavasparse.defaults import ACTIVE_BAND, COSTS
from lavasparse.train.loss import SparsityLoss
from lavasparse.train.model import NetConfig, SpikingNet, parse_arch
from lavasparse.train.data import load_dataset
from lavasparse.train.trainer import TrainConfig, load_run_config, run_checkpoint, train


def images(n: int, data_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    if (data_dir / "train-images-idx3-ubyte.gz").exists():
        from lavasparse.train.data import load_mnist

        train, _ = load_mnist(data_dir)
        return train.images[:n], train.labels[:n], f"MNIST ({data_dir})"
    rng = np.random.default_rng(0)
    return (rng.random((n, 1, 28, 28)) * 0.27).astype(np.float32), rng.integers(0, 10, n), "random images"


def step_ms(opt, xs, ys, loss_of, device: torch.device, split: bool = True) -> tuple[float, float, float]:
    """ms per batch, averaged over the batches: the forward with the loss
    (``loss_of(input spikes, labels)``), the backward, and the whole step
    with the optimiser's. ``split`` False: only the whole step is meant, with the GPU synchronised once at each end rather than between
    the parts."""
    def sync(always: bool = False):
        if device.type == "cuda" and (split or always):
            torch.cuda.synchronize()

    fwd = bwd = 0.0
    sync(always=True)
    start = time.perf_counter()
    for x, y in zip(xs, ys):
        sync()   # the last optimiser step, when the parts are timed
        t0 = time.perf_counter()
        loss = loss_of(x, y)
        sync()
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        fwd, bwd = fwd + t1 - t0, bwd + t2 - t1
    sync(always=True)
    total = time.perf_counter() - start
    return tuple(1e3 * v / len(xs) for v in (fwd, bwd, total))


def rotated_medians(variants: list, run, repeats: int, warm_up: bool = True) -> dict:
    """``run(variant)`` once each to warm up (numba's or CUDA's compilation;
    ``warm_up`` False where the caller has), then ``repeats`` rounds through
    the variants in turn, so that drift in the machine's speed hits all; per
    variant, the median of each of the tuple ``run`` returns."""
    if warm_up:
        for v in variants:
            run(v)
    times = {v: [] for v in variants}
    for _ in range(repeats):
        for v in variants:
            times[v].append(run(v))
    return {v: tuple(statistics.median(t[i] for t in ts) for i in range(len(ts[0]))) for v, ts in times.items()}


def measure(arch: str, device: torch.device, batch: int, steps: int, iters: int, repeats: int, data_dir: Path):
    """Samples per second of whole training steps, per cost (None: the class loss alone)."""
    if device.type == "cuda":
        prepare_cuda_jit(device)
    torch.manual_seed(0)
    net = SpikingNet(NetConfig(arch=arch, weight_scale=2.0)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = {c: SparsityLoss(cost=c, energy=default_profile().cost_weights()).to(device) for c in COSTS}
    imgs, labels, source = images(batch * iters, data_dir)
    in_shape = net.specs[0].in_shape
    xs = [encode_images(imgs[i * batch:(i + 1) * batch], in_shape, steps, seed=i).to(device) for i in range(iters)]
    ys = [torch.as_tensor(labels[i * batch:(i + 1) * batch], device=device) for i in range(iters)]

    def run(cost: str | None) -> tuple[float]:
        def loss_of(x, y):
            out = net.windowed(net(x), steps)
            if cost is None:   # the class loss alone: no cost in the graph
                return losses["spikes"].classification_loss(out[-1], y)
            if cost == "spikes":   # as the trainer calls it: no fan-out needed
                return losses[cost](out, y, 1e-5)[0]
            return losses[cost](out, y, 1e-7, net, x)[0]

        return (1e3 * batch / step_ms(opt, xs, ys, loss_of, device, split=False)[2],)

    return {c: v[0] for c, v in rotated_medians([None, *COSTS], run, repeats).items()}, source


def measure_epochs(arch: str, device: str, images: int, repeats: int, data_dir: Path) -> dict:
    """Seconds of one training epoch (the trainer's own ``seconds``: encoding,
    training steps, validation) on the first ``images`` MNIST training images,
    per cost (None: the class loss alone), median of ``repeats`` rotated runs,
    each in a fresh folder from the same initial weights."""
    energy = default_profile().cost_weights()
    sigma0 = {None: 0.0, "spikes": 1e-5, "synops": 1e-7, "energy": 1e-6}
    seconds = {c: [] for c in sigma0}
    for _ in range(repeats):
        for cost, s0 in sigma0.items():
            config = TrainConfig(name=f"epoch-{cost}", dataset="mnist", data_dir=str(data_dir),
                                 net=NetConfig(arch=arch, weight_scale=2.0), max_rate=1.0, epochs=1,
                                 batch_size=64, lr=1e-3, schedule="baseline" if cost is None else "constant",
                                 sigma0=s0, cost=cost or "spikes", energy=energy, train_limit=images,
                                 device=device)
            with tempfile.TemporaryDirectory() as run_dir:
                train(config, run_dir, progress=False)
                seconds[cost].append(json.loads((Path(run_dir) / "metrics.jsonl").read_text().splitlines()[0])["seconds"])
    return {c: statistics.median(v) for c, v in seconds.items()}


# (architecture, steps, share of inputs spiking per step): MNIST-shaped at the papers' 16 and 100 steps,
# and an N-MNIST-shaped event network at 300.
DYNAMICS_ROWS = [("784-500-10", 16, 0.1), ("784-500-10", 100, 0.1), ("784-500-500-10", 16, 0.1),
                 ("784-500-500-10", 100, 0.1), ("2x34x34-500-500-10", 300, 0.02)]


@dataclass(frozen=True)
class StepPath:
    """One way to run a training step: the neuron dynamics (SLAYER's CPU
    loop, or compiled) and the hidden blocks' backward (SLAYER's, or sparse)."""

    label: str
    compiled: bool
    backward: str


def dynamics_paths(device: torch.device, band: float) -> list[StepPath]:
    if device.type == "cpu":
        return [StepPath("slayer", False, "dense"), StepPath("compiled", True, "dense"),
                StepPath(f"compiled + sparse backward (band {band:g})", True, "sparse")]
    return [StepPath("slayer (CUDA)", False, "dense"), StepPath(f"sparse backward (band {band:g}, CUDA)", False, "sparse")]


class SavedForBackward:
    """Bytes of the tensors autograd keeps for the backward pass during a
    forward (each storage once): the backward's memory, on any device."""

    def __init__(self):
        self.storages: dict[int, int] = {}

    def pack(self, t: torch.Tensor):
        st = t.untyped_storage()
        self.storages[st.data_ptr()] = st.nbytes()
        return t

    @property
    def mib(self) -> float:
        return sum(self.storages.values()) / 2**20


@dataclass(frozen=True)
class Trained:
    """A trained run to time instead of a random network: its weights, and
    its own input code on the dataset's training images."""

    run_dir: Path

    def load(self, band: float) -> tuple[SpikingNet, TrainConfig]:
        config, checkpoint = run_checkpoint(self.run_dir)
        net = SpikingNet(replace(config.net, backward="sparse", active_band=band))
        net.load_state_dict(torch.load(checkpoint, map_location="cpu")["model"])
        return net.train(), config

    def inputs(self, config: TrainConfig, steps: int, batch: int, iters: int) -> list[torch.Tensor]:
        train_set, _ = load_dataset(config.dataset, config.data_dir)
        in_shape = parse_arch(config.net.arch)[0].in_shape
        return [encode_batch(train_set, np.arange(i * batch, (i + 1) * batch), in_shape, steps, i,
                             config.input_code) for i in range(iters)]


def measure_parts(arch: str, steps: int, rate: float, device: torch.device, batch: int, iters: int,
                  repeats: int, band: float, trained: Trained | None = None) -> dict:
    """Per path (``dynamics_paths``): ms per batch of forward (with the
    loss), backward and the whole step, median over ``repeats`` runs of
    ``iters`` batches (paths alternate, so that drift hits all); the memory
    kept for the backward (MiB, one batch); the hidden layers' mean active
    fraction (sparse backward); and on a GPU the peak memory (MiB)."""
    torch.manual_seed(0)
    if trained is None:
        net = SpikingNet(NetConfig(arch=arch, weight_scale=2.0, backward="sparse", active_band=band)).to(device)
        in_shape = net.specs[0].in_shape
        xs = [(torch.rand(batch, *in_shape, steps) < rate).float().to(device) for _ in range(iters)]
    else:
        net, config = trained.load(band)
        net = net.to(device)
        xs = [x.float().to(device) for x in trained.inputs(config, steps, batch, iters)]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = SparsityLoss(readout=net.readout).to(device)
    ys = [torch.randint(0, 10, (batch,), device=device) for _ in range(iters)]
    paths = dynamics_paths(device, band)

    def loss_of(x, y):
        return loss_fn.classification_loss(net.windowed(net(x), steps)[-1], y)

    def use(path: StepPath):
        net.compiled_cpu_dynamics, net.backward_mode = path.compiled, path.backward

    def run(path: StepPath) -> tuple[float, float, float]:
        use(path)
        return step_ms(opt, xs, ys, loss_of, device)

    def saved_mib(path: StepPath) -> float:
        use(path)
        saved = SavedForBackward()
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
            loss = loss_of(xs[0], ys[0])
        del loss
        return saved.mib

    for path in paths:   # warm-up (numba's or CUDA's compilation), before the counts and the peak start
        run(path)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    net.active_fractions()
    times = rotated_medians(paths, run, repeats, warm_up=False)
    fractions = [f for f in net.active_fractions() if f is not None]
    out = {path.label: {"ms": ms, "saved_mib": saved_mib(path),
                        "active": statistics.mean(fractions) if path.backward == "sparse" and fractions else None}
           for path, ms in times.items()}
    out["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return out


def print_dynamics(devices: list[str], batch: int, iters: int, repeats: int, band: float,
                   trained: Trained | None = None) -> None:
    rows = DYNAMICS_ROWS
    if trained is None:
        what = "random inputs and an untrained network (weight scale 2)"
    else:
        arch = load_run_config(trained.run_dir).net.arch
        rows = [(arch, 16, None), (arch, 100, None)]
        what = f"the trained network of {trained.run_dir} on its own input code (training images)"
    print(f"\nbatch {batch}, {iters} batches per run, median of {repeats} runs; ms per batch; "
          f"CPU: {torch.get_num_threads()} threads; {what}\n")
    print("| device | network | steps | path | forward | backward | whole step | step vs first path | "
          "backward vs the one before | kept for backward (MiB) | active fraction (hidden) | peak GPU MiB |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in devices:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print(f"({name}: no GPU here, skipped)")
            continue
        device = resolve_device(name)
        if device.type == "cuda":
            prepare_cuda_jit(device)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        for arch, steps, rate in rows:
            r = measure_parts(arch, steps, rate, device, batch, iters, repeats, band, trained)
            peak = r.pop("peak_mib")
            first = prev = None
            for path, m in r.items():
                f, b, t = m["ms"]
                step_up = f"{first[2] / t:.2f}x" if first else ""
                back_up = f"{prev[1] / b:.2f}x" if prev else ""
                active = f"{100 * m['active']:.1f}%" if m["active"] is not None else ""
                mem = f"{peak:.0f}" if peak is not None else "—"
                print(f"| {label} | {arch} | {steps} | {path} | {f:.1f} | {b:.1f} | {t:.1f} | {step_up} | {back_up} | "
                      f"{m['saved_mib']:.1f} | {active} | {mem} |", flush=True)
                first, prev = first or m["ms"], m["ms"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="784-500-10")
    p.add_argument("--device", nargs="+", default=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--iters", type=int, default=20, help="batches per timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/mnist"))
    p.add_argument("--epoch-images", type=int, default=6000,
                   help="also time one trainer epoch on this many MNIST training images (0: skip)")
    p.add_argument("--dynamics", action="store_true",
                   help="time forward, backward and step with SLAYER's CPU loop, the compiled integrators and "
                        "the sparse backward")
    p.add_argument("--weights", default=None, metavar="RUN",
                   help="with --dynamics: time this trained run folder's network (its best checkpoint) on its own "
                        "input code at 16 and 100 steps, instead of random networks and inputs")
    p.add_argument("--band", type=float, default=ACTIVE_BAND,
                   help=f"the sparse backward's active band, in thresholds (default {ACTIVE_BAND:g})")
    a = p.parse_args()
    if a.dynamics:
        print_dynamics(a.device, a.batch, a.iters, a.repeats, a.band, Trained(Path(a.weights)) if a.weights else None)
        return 0
    rows = []
    for name in a.device:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print(f"({name}: no GPU here, skipped)")
            continue
        device = resolve_device(name)
        rates, source = measure(a.arch, device, a.batch, a.steps, a.iters, a.repeats, Path(a.data_dir))
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        rows.append((label, rates))
    print(f"\nnetwork {a.arch}, batch {a.batch}, T = {a.steps} steps, {a.iters} batches per run, median of "
          f"{a.repeats} runs; inputs: {source}\n")
    print("| device | samples/s, no cost | " + " | ".join(f"samples/s, {c} (time added)" for c in COSTS) + " |")
    print("|---|---:|" + "---:|" * len(COSTS))
    for label, rates in rows:
        base = rates[None]
        print(f"| {label} | {base:.0f} | " + " | ".join(f"{rates[c]:.0f} ({100 * (base / rates[c] - 1):+.1f}%)"
                                                    for c in COSTS) + " |")
    if not a.epoch_images or not (Path(a.data_dir) / "train-images-idx3-ubyte.gz").exists():
        return 0
    print(f"\none training epoch as the trainer runs it (encoding, steps, validation of 20%), "
          f"{a.arch}, {a.epoch_images} MNIST images, batch 64, T = 16, median of {a.repeats} runs\n")
    print("| device | s/epoch, no cost | " + " | ".join(f"s/epoch, {c} (time added)" for c in COSTS) + " |")
    print("|---|---:|" + "---:|" * len(COSTS))
    for name in a.device:
        if name.startswith("cuda") and not torch.cuda.is_available():
            continue
        secs = measure_epochs(a.arch, name, a.epoch_images, a.repeats, Path(a.data_dir))
        label = name if name.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
        base = secs[None]
        print(f"| {label} | {base:.2f} | " + " | ".join(f"{secs[c]:.2f} ({100 * (secs[c] / base - 1):+.1f}%)"
                                                       for c in COSTS) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
