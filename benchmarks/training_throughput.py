"""Training throughput with and without each cost term, same network, same
batches, one machine: samples per second of forward + backward + optimiser
step, on the CPU and, when there is one, the GPU.

"None" trains on SLAYER's spike-rate loss alone; the others add sigma * cost:
the hidden spike count (Allred et al.), the synaptic ops (fan-out gate over
every synapse, input layer included) or the dynamic energy (train/cost.py),
so the differences are what each term costs. Encoding is done once
beforehand and not timed. Runs rotate (none, spikes, synops, energy, none,
...) so that drift in the machine's speed hits all; the table shows the
median of the repeats.

  .venv/bin/python benchmarks/training_throughput.py [--arch 784-500-10] [--device cpu cuda]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lavasparse.train.device import prepare_cuda_jit, resolve_device
from lavasparse.train.encode import encode_images
from lavasparse.simulate.energy import default_profile
from lavasparse.train.cost import COSTS
from lavasparse.train.loss import SparsityLoss
from lavasparse.train.model import NetConfig, SpikingNet


def images(n: int, data_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    if (data_dir / "train-images-idx3-ubyte.gz").exists():
        from lavasparse.train.data import load_mnist

        train, _ = load_mnist(data_dir)
        return train.images[:n], train.labels[:n], f"MNIST ({data_dir})"
    rng = np.random.default_rng(0)
    return (rng.random((n, 1, 28, 28)) * 0.27).astype(np.float32), rng.integers(0, 10, n), "random images"


def measure(arch: str, device: torch.device, batch: int, steps: int, iters: int, repeats: int, data_dir: Path):
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

    def run(cost: str | None) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for x, y in zip(xs, ys):
            out = net.windowed(net(x), steps)
            if cost is None:   # the class loss alone: no cost in the graph
                loss = losses["spikes"].class_loss(out[-1], y) / y.shape[0]
            elif cost == "spikes":   # as the trainer calls it: no fan-out needed
                loss = losses[cost](out, y, 1e-5)[0]
            else:
                loss = losses[cost](out, y, 1e-7, net, x)[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return batch * iters / (time.perf_counter() - t0)

    run(None)   # warm-up (and the CUDA JIT build)
    times = {c: [] for c in (None, *COSTS)}
    for _ in range(repeats):
        for c in times:
            times[c].append(run(c))
    return {c: statistics.median(v) for c, v in times.items()}, source


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="784-500-10")
    p.add_argument("--device", nargs="+", default=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--iters", type=int, default=20, help="batches per timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/mnist"))
    a = p.parse_args()
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
