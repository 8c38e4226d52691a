"""The ISI gate in torch: what a presynaptic neuron of an ISI-modulated layer
sends (``isi.py``). It counts the steps phi since its previous spike and,
with each spike, sends the graded payload P[phi] = round(G(phi) * 2^b), G the
Gaussian of its mean interval mu and width w. Training (``isi_synapse.py``),
the export (``isi.py``) and the emulator's gate share these functions, so that
the three compute the same integers; ``deploy/lava_blocks/isi.py`` is the
same gate as a Lava process. Imported only where torch runs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    import numba
except ImportError:   # a machine with no registry (the lent GPUs): torch's cummax and cummin
    numba = None


def isi_table(mu: torch.Tensor, width: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """G_i(phi) and dG_i/dphi for phi = 0 .. steps (index = phi), each
    (neurons, steps + 1), in ``mu``'s dtype. phi = 0 never occurs; it is
    kept so that the index is the interval."""
    phi = torch.arange(steps + 1, dtype=mu.dtype, device=mu.device)
    d = phi - mu[:, None]
    g = torch.exp(-d ** 2 / (2 * width[:, None] ** 2))
    return g, -g * d / width[:, None] ** 2


if numba is not None:
    @numba.njit(cache=True)
    def _intervals_rows(spiking, phi, nxt):   # pragma: no cover (compiled)
        """spiking (R, T) bool; phi, nxt (R, T) int64, filled row by row (one
        thread: it is a pass over memory, and takes no thread pool to size)."""
        steps = spiking.shape[1]
        for r in range(spiking.shape[0]):
            last = -1
            for t in range(steps):
                phi[r, t] = t - last
                if spiking[r, t]:
                    last = t
            following = steps
            for t in range(steps - 1, -1, -1):
                nxt[r, t] = following
                if spiking[r, t]:
                    following = t


def intervals(spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(phi, next): for spikes (batch, neurons, T), each (batch, neurons, T)
    int64: phi[t] the steps since the neuron's previous spike (t + 1 before
    its first), next[t] the step of its next spike after t (T if none)."""
    spiking = spikes != 0
    if numba is not None and spikes.device.type == "cpu":
        # compiled, one row at a time: torch's cummax/cummin over the last
        # axis, or a loop over time, cost as much as the layer's matrix product
        phi = torch.empty(spikes.shape, dtype=torch.int64)
        nxt = torch.empty_like(phi)
        _intervals_rows(spiking.reshape(-1, spikes.shape[-1]).contiguous().numpy(),
                        phi.view(-1, spikes.shape[-1]).numpy(), nxt.view(-1, spikes.shape[-1]).numpy())
        return phi, nxt
    steps = spikes.shape[-1]
    t = torch.arange(steps, device=spikes.device)
    last = torch.cummax(torch.where(spiking, t, -1), dim=-1).values     # last spike at or before t
    phi = t - F.pad(last[..., :-1], (1, 0), value=-1)
    first = torch.where(spiking, t, steps).flip(-1).cummin(dim=-1).values.flip(-1)   # first spike at or after t
    return phi, F.pad(first[..., 1:], (0, 1), value=steps)


def _per_step(table: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """table (neurons, K) read at phi (batch, neurons, T)."""
    return torch.gather(table.expand(phi.shape[0], *table.shape), 2, phi)


def payload_table(table: torch.Tensor, fraction_bits: int) -> torch.Tensor:
    """The integer payloads round(G * 2^fraction_bits) of a table of G
    (``isi_table``'s first), as int64: what the gate sends."""
    return torch.round(table * 2 ** fraction_bits).to(torch.int64)


def gate_payloads(spikes: torch.Tensor, payload: torch.Tensor, counter_start: int = 0) -> torch.Tensor:
    """The gate's output for spikes (batch, neurons, T), each row one sample
    from its first step: payload[i, phi_i[t]] where neuron i spikes, 0
    elsewhere; ``payload`` (neurons, K + 1) integers for phi = 0 .. K, and 0
    for any phi > K. Before a neuron's first spike phi counts on from
    ``counter_start`` (t + 1 + counter_start: the steps the sample spent in
    the network before this window), after it the steps since the last."""
    phi, _ = intervals(spikes)
    if counter_start:
        spiking = (spikes != 0).to(torch.int64)
        none_before = (spiking.cumsum(-1) - spiking) == 0
        phi = phi + counter_start * none_before
    padded = F.pad(payload.to(torch.int64), (0, 1))                 # phi > K reads the 0 at K + 1
    sent = _per_step(padded, phi.clamp(max=payload.shape[1]))
    return torch.where(spikes != 0, sent, torch.zeros_like(sent))
