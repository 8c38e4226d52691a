"""A SLAYER synapse's weight as its forward multiplies with it and as netx
exports it: the synapse's ``pre_hook_fx`` (the 8-bit quantisation) of its
parameter, or the parameter where there is none.

The forward's values are remembered, detached, so that the cost term's
fan-out reads them in the same training step instead of quantising the same
weights again (0.7 ms per step for 784x500 weights on one CPU thread, about
a quarter of what the synops cost term added to a step,
``results/mnist-784-500-10-energy/training-time.md``). They are taken as
valid while the parameter is the same tensor (its storage, kept alive here
so that no other tensor can take its address), at the same version (every
in-place change through the parameter, an optimiser step or a pruning mask,
advances it; ``load_state_dict`` and ``.to`` too), under the same hook.
Writes through ``.data`` or numpy do not advance it: code that writes so
must run a forward, or call ``quantise``, before reading.
"""
from __future__ import annotations

import torch

_REMEMBERED = "_lavasparse_quantised"   # on the synapse: (parameter, its version, the hook, values)


def quantise(synapse) -> torch.Tensor:
    """The hook applied now: differentiable through it (SLAYER's
    straight-through quantisation)."""
    return synapse.weight if synapse._pre_hook_fx is None else synapse._pre_hook_fx(synapse.weight)


def forward_weight(synapse) -> torch.Tensor:
    """The weight the synapse's forward uses (``quantise``); its values are
    remembered for ``exported_weight``."""
    weight = quantise(synapse)
    param = synapse.weight.detach()
    setattr(synapse, _REMEMBERED, (param, param._version, synapse._pre_hook_fx, weight.detach()))
    return weight


def exported_weight(synapse) -> torch.Tensor:
    """The weight's exported values, detached: the last forward's where the
    parameter has not changed since (see the module's doc), else quantised now."""
    remembered = getattr(synapse, _REMEMBERED, None)
    if remembered is not None:
        param, version, hook, values = remembered
        now = synapse.weight
        if (param.data_ptr() == now.data_ptr() and param.shape == now.shape and version == now._version
                and hook is synapse._pre_hook_fx):
            return values
    with torch.no_grad():
        return quantise(synapse).detach()
