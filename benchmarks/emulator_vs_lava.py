"""Throughput of the bit-exact emulator against Lava's simulator, same network,
same inputs, one machine. Prints sample-steps per second for each and their
ratio, and checks the spikes are identical on every sample both ran.

Lava's rate is marginal: we time runs of n1 and n2 samples and divide the
extra steps by the extra time, so its one-off compile and start-up do not
count against it. Inputs are MNIST test images, rate-encoded, when the IDX
files are found (--data-dir), else Bernoulli spikes at the same density.

  .venv/bin/python benchmarks/emulator_vs_lava.py [--data-dir ../shared/data/mnist]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lavasparse.deploy.lava_runner import run_on_lava
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import read_network
from lavasparse.simulate.emulator import Emulator
from lavasparse.simulate.engines import first_difference
from lavasparse.train.encode import InputCode, encode_images
from lavasparse.train.model import NetConfig, SpikingNet

NETS = {
    # name: (architecture, weight scale, Lava samples n1, n2, emulator samples)
    "dense 784-512-512-10": ("784-512-512-10", 2.0, 4, 20, 2048),
    "conv 1x28x28-c16k5-p2-c32k3-p2-128-10": ("1x28x28-c16k5-p2-c32k3-p2-128-10", 2.0, 1, 3, 256),
}


def inputs(arch_in, n, steps, data_dir):
    if data_dir and Path(data_dir).exists():
        from lavasparse.train.data import load_mnist

        _, test = load_mnist(data_dir)
        images = test.images[:n]
    else:
        images = np.random.default_rng(0).random((n, 1, 28, 28)).astype(np.float32) * 0.27
    return encode_images(images, arch_in, steps, seed=1, code=InputCode(max_rate=0.5)).numpy().astype(np.int8)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/mnist"))
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--only", choices=["dense", "conv"], default=None)
    a = p.parse_args()
    rows = []
    tmp = Path(tempfile.mkdtemp())
    for name, (arch, ws, n1, n2, n_emu) in NETS.items():
        if a.only and not name.startswith(a.only):
            continue
        torch.manual_seed(0)
        net = SpikingNet(NetConfig(arch=arch, weight_scale=ws))
        path = tmp / f"{arch}.net"
        desc = export_netx(net, path)
        neurons = sum(l.num_neurons for l in desc.spiking_layers)
        x = inputs(net.specs[0].in_shape, n_emu, a.steps, a.data_dir)

        t = []
        runs = []
        for n in (n1, n2):
            t0 = time.perf_counter()
            runs.append(run_on_lava(read_network(path), x[:n], progress=False))
            t.append(time.perf_counter() - t0)
        lava_rate = (n2 - n1) * a.steps / (t[1] - t[0])

        emu = Emulator(read_network(path))
        emu.run(x[:4])  # warm-up
        t0 = time.perf_counter()
        out = emu.run(x, batch_size=256)
        emu_rate = n_emu * a.steps / (time.perf_counter() - t0)
        diff = first_difference(runs[1].layer_names, runs[1].spikes, [s[:n2] for s in out.spikes])
        spikes = sum(int(s.sum()) for s in out.spikes) / n_emu
        rows.append((name, neurons, spikes, lava_rate, emu_rate, emu_rate / lava_rate,
                     "yes" if diff is None else f"NO: {diff}", n2))
        print(f"done: {name}", file=sys.stderr, flush=True)

    print(f"\n{torch.get_num_threads()} torch threads; T = {a.steps} steps per sample; "
          f"'identical' compares every spike of the {', '.join(str(r[7]) for r in rows)} samples Lava ran\n")
    print("| network | neurons | spikes/sample | Lava sample-steps/s | emulator sample-steps/s | ratio | identical |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, neurons, spikes, lr, er, ratio, same, _ in rows:
        print(f"| {name} | {neurons} | {spikes:.0f} | {lr:.1f} | {er:.0f} | {ratio:.0f}x | {same} |")
    return 0 if all(r[6] == "yes" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
