"""Exploration 6: does neuron dropout (lava-dl's slayer.neuron.Dropout, as
its NMNIST and PilotNet examples use it: each hidden neuron silenced for the
whole sample with probability p, the others scaled by 1/(1-p), training
only) close the latency-coded network's gap to the rate-coded baseline when
both are trained with it? Pipeline settings (0.6/0.04), no cost term; test
set, 8 draws, SLAYER (identical to the target). Dropout is patched into
SpikingNet.forward here: it applies to what each hidden layer passes on,
not to the spikes the loss counts."""
import sys
from pathlib import Path
import torch
from lavasparse.train import model as M
from _trial import train_and_test
from lavasparse.train.data import load_dataset
_, test = load_dataset("digits", None)
variant, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
enc, p = {"lat-do10": ("latency", 0.1), "rate-do10": ("rate", 0.1),
          "lat-do20": ("latency", 0.2), "rate-do20": ("rate", 0.2),
          "lat-do0": ("latency", 0.0), "rate-do0": ("rate", 0.0)}[variant]
root = Path("/work/scratch/variants6")
root.mkdir(parents=True, exist_ok=True)
plain = M.SpikingNet.forward


def forward(self, x):
    """SpikingNet.forward (train/model.py at 3e054a7) with dropout on what
    each hidden layer passes on while training."""
    if not self.training or not torch.is_grad_enabled():
        return plain(self, x)
    steps, delay = x.shape[-1] + self.num_spiking_layers - 1, 0
    spikes = []
    sparse = self.backward_mode == "sparse"
    last = max(i for i, s in enumerate(self.specs) if s.spiking)
    for i, (spec, block, sparse_block) in enumerate(zip(self.specs, self.blocks, self.sparse)):
        if not spec.spiking:
            x = block(x)
            continue
        M._only_synapse_and_neuron(block)
        if M.hooked(block):
            s = block.neuron(block.synapse(M.delayed(x, delay, steps)))
        elif sparse and sparse_block is not None:
            s = sparse_block.spikes(M.delayed(x, delay, steps))
        elif self.compiled_cpu_dynamics:
            s = M.cuba_neuron_forward(block.neuron, M.dense_synapse(block.synapse, x, delay, steps))
        else:
            s = block.neuron(block.synapse(M.delayed(x, delay, steps)))
        spikes.append(s)
        x, delay = s, 1
        if i != last:
            keep = (torch.rand(*s.shape[:-1], 1, device=s.device) >= p).to(s.dtype) / (1 - p)
            x = s * keep
    return spikes


M.SpikingNet.forward = forward
for seed in seeds:
    torch.manual_seed(1000 + seed)
    train_and_test(variant, seed, enc, root, test, draws=8)
