"""SLAYER's CUBA neuron on the CPU without its Python loop over time.

lava-dl SLAYER computes a CUBA neuron's current and voltage with
``neuron.dynamics.leaky_integrator``: on a GPU a CUDA kernel, on a CPU a
Python loop over the time steps (``_li_dynamics_fwd`` and
``_li_dynamics_bwd``), a handful of small torch operations per step and
call, twice per layer, forward and backward. At 16 steps that loop is about
half a training step of 784-500-10 on a 2-core CPU, at 100 steps most of it.

Here the same loops are compiled with numba, one pass over each neuron's
time series (neurons in parallel), with the same integer arithmetic, so the
states and spikes are bit-identical to SLAYER's (``tests/test_cuba_cpu.py``
checks that, and equal training trajectories):

    forward, per neuron, with y the state in int64 on the 1 << 12 x 1 << 6 scale:
        y = (state * w_scale) truncated
        every step t:  y = trunc_toward_zero(y * (4096 - decay) / 4096)
                           + trunc(w_scale * x[t])            (float32 product)
                       out[t] = float32(y) / w_scale
                       y = 0 where a threshold is given and y >= threshold * w_scale
    backward (the reset is not differentiated, as in SLAYER):
        g[T-1] = dout[T-1];  g[t] = (1 - decay / 4096) * g[t+1] + dout[t]   (float32)
        d decay = sum over t of g[t+1] * out[t]   (torch, as SLAYER writes it)

``cuba_neuron_forward(neuron, x)`` is a SLAYER ``cuba.Neuron``'s forward
with these two integrators where they apply: on the CPU, a neuron with one
decay for all its neurons, no normalisation, no persistent state (every
block lavasparse builds; ``SpikingNet`` runs a block with forward hooks as
SLAYER's modules, so that they fire). Anything else, the GPU included, goes through
SLAYER's own forward: its CUDA kernels stay. SLAYER is not patched: the
neuron's ``spike`` and its surrogate gradient are SLAYER's, called as its
forward calls them.
"""
from __future__ import annotations

import numpy as np
import torch

try:
    import numba
except ImportError:   # a machine with no registry (the lent GPUs): SLAYER's loop on its CPU, its CUDA kernels on the GPU
    numba = None

_DECAY_SHIFT = 12   # SLAYER's decays are integers out of 1 << 12
_ROWS_AT_ONCE = 16   # independent chains per inner loop: one row alone waits on each multiply-add


if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _integrate(x, state, decay, w_scale, threshold, out):   # pragma: no cover (compiled)
        """x, out: (M, T) float32; state: (M,) float32; ``threshold`` < 0: no
        reset. Rows go in blocks of ``_ROWS_AT_ONCE`` (see the backward)."""
        keep = (1 << _DECAY_SHIFT) - decay
        ws = np.float32(w_scale)
        rows = x.shape[0]
        for block in numba.prange((rows + _ROWS_AT_ONCE - 1) // _ROWS_AT_ONCE):
            lo = block * _ROWS_AT_ONCE
            hi = min(lo + _ROWS_AT_ONCE, rows)
            y = np.empty(_ROWS_AT_ONCE, np.int64)
            for m in range(lo, hi):
                y[m - lo] = np.int64(state[m] * ws)
            for t in range(x.shape[1]):
                for m in range(lo, hi):
                    p = y[m - lo] * keep
                    # SLAYER's right_shift_to_zero: sign(p) * (|p| >> 12)
                    p = (p >> _DECAY_SHIFT) if p > 0 else -((-p) >> _DECAY_SHIFT)
                    v = p + np.int64(x[m, t] * ws)
                    out[m, t] = np.float32(v) / ws
                    # SLAYER compares the int64 state with a Python float: in double
                    y[m - lo] = 0 if threshold > 0 and np.float64(v) >= threshold else v

    @numba.njit(parallel=True, cache=True)
    def _integrate_backward(grad_out, decay, grad_in):   # pragma: no cover (compiled)
        """grad_out, grad_in: (M, T) float32. Each row is a chain of dependent
        multiply-adds; rows go in blocks so that the CPU overlaps the chains."""
        keep = np.float32(1) - np.float32(decay) / np.float32(1 << _DECAY_SHIFT)
        rows, last = grad_out.shape[0], grad_out.shape[1] - 1
        for block in numba.prange((rows + _ROWS_AT_ONCE - 1) // _ROWS_AT_ONCE):
            lo = block * _ROWS_AT_ONCE
            hi = min(lo + _ROWS_AT_ONCE, rows)
            g = np.empty(_ROWS_AT_ONCE, np.float32)
            for m in range(lo, hi):
                g[m - lo] = grad_out[m, last]
                grad_in[m, last] = g[m - lo]
            for t in range(last - 1, -1, -1):
                for m in range(lo, hi):
                    g[m - lo] = keep * g[m - lo] + grad_out[m, t]
                    grad_in[m, t] = g[m - lo]


_threads_set_for: list[int] = []   # torch's thread count numba's pool was last sized to


def match_numba_threads() -> None:
    # numba's pool and torch's intra-op pool are separate: size numba's to torch's
    # (OMP_NUM_THREADS, or a Ray trial's one CPU) so that trials do not oversubscribe.
    wanted = torch.get_num_threads()
    if _threads_set_for != [wanted]:
        numba.set_num_threads(max(1, min(wanted, numba.config.NUMBA_NUM_THREADS)))
        _threads_set_for[:] = [wanted]


class LeakyIntegrator(torch.autograd.Function):
    """SLAYER's ``_LIDynamics`` (forward and backward) compiled; see the module doc."""

    @staticmethod
    def forward(ctx, x, decay, state, threshold, w_scale):
        match_numba_threads()
        decay_int = int(decay.detach().reshape(-1)[0].to(torch.int64))
        rows = x.detach().contiguous().reshape(-1, x.shape[-1])
        out = torch.empty_like(rows)
        start = state.detach().to(torch.float32).contiguous().reshape(-1)
        if start.numel() != rows.shape[0]:
            raise ValueError(f"state has {start.numel()} neurons, input {rows.shape[0]}")
        thr = float(threshold) * w_scale if threshold is not None and threshold > 0 else -1.0
        _integrate(rows.numpy(), start.numpy(), decay_int, int(w_scale), thr, out.numpy())
        out = out.reshape(x.shape)
        ctx.decay_int = decay_int
        ctx.save_for_backward(out, decay)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        out, decay = ctx.saved_tensors
        rows = grad_output.contiguous().reshape(-1, grad_output.shape[-1])
        grad_in = torch.empty_like(rows)
        _integrate_backward(rows.numpy(), ctx.decay_int, grad_in.numpy())
        grad_in = grad_in.reshape(grad_output.shape)
        grad_decay = None
        if ctx.needs_input_grad[1]:   # as SLAYER's _li_dynamics_bwd, shared decay
            grad_decay = torch.sum((grad_in[..., 1:] * out[..., :-1]).flatten(), dim=0, keepdim=True)
        return grad_in, grad_decay, None, None, None


def leaky_integrator(x: torch.Tensor, decay: torch.Tensor, state: torch.Tensor, w_scale: int,
                     threshold: float | None = None) -> torch.Tensor:
    """SLAYER's ``leaky_integrator.dynamics`` for a CPU tensor ``x`` (batch,
    ..., time) and one decay (an integer out of 4096 in a one-element
    tensor); ``state`` one value or one per neuron. Returns the state per step
    on SLAYER's scale (``x``'s units)."""
    if decay.numel() != 1:
        raise ValueError(f"one decay for all neurons, got {decay.numel()}")
    # The state as SLAYER's Neuron.dynamics and leaky_integrator.dynamics make it: zeros when the batch
    # size changed, else spread over the neurons.
    if state.shape[0] != x.shape[0] and state.numel() != 1:
        state = torch.zeros(x.shape[:-1], dtype=torch.float32)
    elif state.shape != x.shape[:-1]:
        state = state * torch.ones(x.shape[:-1], dtype=torch.float32)
    return LeakyIntegrator.apply(x, decay, state, threshold, w_scale)


def _fast_path_applies(neuron, x: torch.Tensor) -> bool:
    return (numba is not None and x.device.type == "cpu" and x.dtype == torch.float32 and neuron.shape is not None
            and tuple(x.shape[1:-1]) == tuple(neuron.shape) and neuron.shared_param is not False
            and neuron.current_decay.numel() == 1 and neuron.voltage_decay.numel() == 1
            and neuron.norm is None and not neuron.persistent_state and not neuron.debug)


def cuba_neuron_forward(neuron, x: torch.Tensor) -> torch.Tensor:
    """``neuron(x)`` for a SLAYER ``cuba.Neuron``, its two integrators
    compiled where ``_fast_path_applies`` (the same spikes and gradients)."""
    if not _fast_path_applies(neuron, x):
        return neuron(x)
    from lava.lib.dl.slayer.utils import quantize

    if neuron.requires_grad:   # as cuba.Neuron.dynamics: decays clamped while they learn
        neuron.clamp()
    current = leaky_integrator(x, quantize(neuron.current_decay), neuron.current_state, neuron.s_scale)
    voltage = leaky_integrator(current, quantize(neuron.voltage_decay), neuron.voltage_state, neuron.s_scale,
                               neuron.threshold + neuron.threshold_eps)
    return neuron.spike(voltage)


def neuron_voltage(neuron, x: torch.Tensor) -> torch.Tensor:
    """A SLAYER ``cuba.Neuron``'s voltage (before each reset) for input ``x``,
    without autograd: the compiled integrators where ``_fast_path_applies``,
    else SLAYER's ``dynamics`` (its CUDA kernels on a GPU)."""
    with torch.no_grad():
        if not _fast_path_applies(neuron, x):
            return neuron.dynamics(x)[1]
        from lava.lib.dl.slayer.utils import quantize

        current = leaky_integrator(x, quantize(neuron.current_decay), neuron.current_state, neuron.s_scale)
        return leaky_integrator(current, quantize(neuron.voltage_decay), neuron.voltage_state, neuron.s_scale,
                                neuron.threshold + neuron.threshold_eps)
