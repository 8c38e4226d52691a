"""Pilot: is the paper's readout (Adams et al.: a non-spiking output layer,
softmax over its final potentials) what separates our IMSNN (96.75% +- 0.13
on MNIST 784-500-10, output spike counts read out) from the paper's 97.45%?

Trains the study's IMSNN row (`full/rows.json`: every dense layer an ISI
synapse, the imsnn rule; 32 steps, rate 0.25, 5 epochs, full training set)
with the output layer's spikes replaced by its potential: no threshold, no
reset, CUBA in float (SLAYER's decays), read at the last step of the layer's
window; the class loss is cross-entropy over those potentials. Patched into
SpikingNet.forward and the loss here: the output tensor is each step's
contribution to the final potential, so that its sum over time, which the
trainer's argmax reads, is that potential. The test set runs in torch
(float), not on the target, which has no non-spiking readout yet.

    OMP_NUM_THREADS=1 python readout.py SEED OUT_DIR [EPOCHS [READOUT [MODEL]]]

READOUT is 'potential' (the default) or 'spikes' (the study's own readout,
nothing patched: the same run as the study's row, for other epoch counts).
MODEL is 'imsnn' (the default) or 'snn' (the study's SNN row: SLAYER's
synapse).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

from lavasparse import cli
from lavasparse.defaults import NEURON
from lavasparse.train import loss as L
from lavasparse.train import model as M
from lavasparse.train.data import load_dataset
from lavasparse.train.trainer import evaluate, eval_seed, load_trained

seed, out = int(sys.argv[1]), sys.argv[2]
epochs = sys.argv[3] if len(sys.argv) > 3 else "5"
readout = sys.argv[4] if len(sys.argv) > 4 else "potential"
model_row = sys.argv[5] if len(sys.argv) > 5 else "imsnn"
assert readout in ("potential", "spikes") and model_row in ("imsnn", "snn"), (readout, model_row)
plain_forward = M.SpikingNet.forward


def potential_kernel(steps: int) -> torch.Tensor:
    """k[t]: the potential at step steps-1 from a unit input at step t (CUBA, no reset)."""
    cd, vd = NEURON["current_decay"], NEURON["voltage_decay"]
    k = torch.zeros(steps)
    for t in range(steps):
        c = v = 0.0
        for s in range(t, steps):
            c = (1 - cd) * c + (1.0 if s == t else 0.0)
            v = (1 - vd) * v + c
        k[t] = v
    return k


def forward(self, x):
    """SpikingNet.forward (train/model.py at 3e054a7) for dense layers, the
    last one a non-spiking readout."""
    steps, delay = x.shape[-1] + self.num_spiking_layers - 1, 0
    spikes = []
    last = max(i for i, s in enumerate(self.specs) if s.spiking)
    for i, (spec, block) in enumerate(zip(self.specs, self.blocks)):
        if not spec.spiking:
            x = block(x)
            continue
        z = block.synapse(M.delayed(x, delay, steps))
        if i == last:
            spikes.append(z * potential_kernel(steps).to(z))
            break
        s = block.neuron(z)
        spikes.append(s)
        x, delay = s, 1
    return spikes


_plain_init = L.SparsityLoss.__init__


class PotentialCrossEntropy(torch.nn.Module):
    """Cross-entropy over the final potentials (summed over the batch, as SpikeRate's 'sum')."""

    def forward(self, out, y):
        return F.cross_entropy(out.sum(-1), y, reduction="sum")


def _init(self, *a, **k):
    _plain_init(self, *a, **k)
    self.class_loss = PotentialCrossEntropy()


if readout == "potential":
    M.SpikingNet.forward = forward
    L.SparsityLoss.__init__ = _init

t0 = time.time()
cli.main(["train", "--out", out, "--dataset", "mnist", "--data-dir", "/work/shared/data/mnist",
          "--arch", "784-500-10", "--steps", "32", "--max-rate", "0.25", "--epochs", epochs,
          "--seed", str(seed)] + (["--synapse", "isi", "--isi-rule", "imsnn"] if model_row == "imsnn" else []))
model, cfg = load_trained(out, "best")
_, test = load_dataset("mnist", "/work/shared/data/mnist")
r = evaluate(model, test, cfg.steps, cfg.input_code, eval_seed(cfg.seed))
rec = {"model": model_row, "seed": seed, "readout": readout, "epochs": int(epochs), "test_accuracy_torch": r["accuracy"],
       "spikes_per_hidden_neuron": float(r["layer_spikes"][0]) / len(test) / 500, "seconds": time.time() - t0}
print(json.dumps(rec), flush=True)
with open("readout_results.jsonl", "a") as f:
    f.write(json.dumps(rec) + "\n")
