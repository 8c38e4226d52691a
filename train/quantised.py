"""A synaptic layer's weight as SLAYER's forward multiplies with it and as
netx exports it: the synapse's ``pre_hook_fx`` (the 8-bit quantisation) of
its parameter, or the parameter where there is none.

The forward's values are remembered, detached, with the parameter's version
counter (every in-place change, an optimiser step or a pruning mask,
advances it), so that the cost term's fan-out and the density figures read
them instead of quantising the same weights again: 0.7 ms per training step
for 784x500 weights on one CPU thread, about a quarter of what the synops
cost term added to a step (``results/mnist-784-500-10-energy/training-time.md``).
"""
from __future__ import annotations

import torch

_REMEMBERED = "_lavasparse_quantised"   # on the synapse: (parameter's storage, its version, values)


def _key(synapse) -> tuple[int, int]:
    return synapse.weight.data_ptr(), synapse.weight._version


def forward_weight(synapse) -> torch.Tensor:
    """The weight the synapse's forward uses, differentiable through the
    hook (SLAYER's straight-through quantisation); its values are
    remembered for ``exported_weight``."""
    weight = synapse.weight if synapse._pre_hook_fx is None else synapse._pre_hook_fx(synapse.weight)
    setattr(synapse, _REMEMBERED, (*_key(synapse), weight.detach()))
    return weight


def exported_weight(synapse) -> torch.Tensor:
    """The weight's exported values, detached: the last forward's where the
    parameter has not changed since, else quantised now."""
    remembered = getattr(synapse, _REMEMBERED, None)
    if remembered is not None and remembered[:2] == _key(synapse):
        return remembered[2]
    with torch.no_grad():
        return synapse.weight.detach() if synapse._pre_hook_fx is None else synapse._pre_hook_fx(synapse.weight)
