"""SLAYER's CUBA neuron on the CPU without its Python loop over time.

lava-dl SLAYER computes a CUBA neuron's current and voltage with
``neuron.dynamics.leaky_integrator``: on a GPU a CUDA kernel, on a CPU a
Python loop over the time steps (``_li_dynamics_fwd`` and
``_li_dynamics_bwd``), a handful of small torch operations per step and
call, twice per layer, forward and backward; its spike function's surrogate
gradient is six more passes over every neuron and step. At 16 steps that is
about half a training step of 784-500-10 on a 2-core CPU, at 100 steps most
of it.

Here a neuron's forward (current, voltage with its reset, spike) is one
compiled pass over each neuron's time series, and its backward (SLAYER's
surrogate, then both integrators backwards) another, neurons in parallel,
with the same integer and float32 arithmetic in the same order, so states,
spikes and gradients are bit-identical to SLAYER's (``tests/test_cuba_cpu.py``
checks that; a network's training keeps SLAYER's spikes, its dense synapses'
gradients being SLAYER's to float32 rounding, ``train/event_synapse.py``):

    forward, per neuron, with c and v the states in int64 on the s_scale (1 << 12) scale:
        c, v = (current_state * s_scale), (voltage_state * s_scale)   truncated
        every step t:  c = trunc_toward_zero(c * (4096 - current_decay) / 4096) + trunc(s_scale * x[t])   (float32 product)
                       current[t] = float32(c) / s_scale
                       v = trunc_toward_zero(v * (4096 - voltage_decay) / 4096) + trunc(s_scale * current[t])
                       voltage[t] = float32(v) / s_scale
                       v = 0 where v >= theta * s_scale      (SLAYER compares in double)
                       spike[t] = voltage[t] >= theta          (theta = threshold + threshold_eps, float32)
    backward (the reset is not differentiated, as in SLAYER), float32:
        dv[t] = (scale_rho / 2 / tau_rho * exp(-|voltage[t] - theta| / tau_rho)) * dspike[t]
        gv[t] = (1 - voltage_decay / 4096) * gv[t + 1] + dv[t]
        gc[t] = (1 - current_decay / 4096) * gc[t + 1] + gv[t]          dx = gc

The exponential is torch's own ``exp`` on a tensor of SLAYER's shape, so
that it rounds as SLAYER's does; everything around it is compiled.

``cuba_neuron_forward(neuron, x)`` is a SLAYER ``cuba.Neuron``'s forward
this way where it applies (``_fast_path_applies``): on the CPU, a neuron
with one fixed decay for all its neurons, binary spikes, no normalisation,
dropout or persistent state (every block lavasparse builds; ``SpikingNet``
runs a block with forward hooks as SLAYER's modules, so that they fire).
Anything else, the GPU included, goes through SLAYER's own forward: its
CUDA kernels stay. SLAYER is not patched.
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
    @numba.njit(inline="always")
    def _decayed(y, keep):   # pragma: no cover (compiled)
        # SLAYER's right_shift_to_zero, sign(p) * (|p| >> 12), without a branch on the sign
        p = y * keep
        sign = p >> 63   # -1 or 0
        return ((((p ^ sign) - sign) >> _DECAY_SHIFT) ^ sign) - sign

    @numba.njit(inline="always")
    def neuron_blocks(batch, neurons):   # pragma: no cover (compiled)
        """How many jobs the kernels split (N, M, ...) neurons into: blocks of
        ``_ROWS_AT_ONCE`` neurons of one sample, whose chains over time the
        CPU overlaps (one neuron alone waits on each multiply-add)."""
        return batch * ((neurons + _ROWS_AT_ONCE - 1) // _ROWS_AT_ONCE)

    @numba.njit(inline="always")
    def neuron_block(job, neurons):   # pragma: no cover (compiled)
        """Job ``job``'s (sample, first neuron, end) (see ``neuron_blocks``)."""
        per_sample = (neurons + _ROWS_AT_ONCE - 1) // _ROWS_AT_ONCE
        lo = (job % per_sample) * _ROWS_AT_ONCE
        return job // per_sample, lo, min(lo + _ROWS_AT_ONCE, neurons)

    @numba.njit(parallel=True, cache=True)
    def _neuron_forward(x, current0, voltage0, keep_c, keep_v, w_scale, reset_at, theta, tau, out, spikes):   # pragma: no cover
        """x, out, spikes: (N, M, T) float32, any strides (a dense synapse's
        output, this neuron's input, comes time-major); current0, voltage0:
        (N, M) float32 start states; keep_*: 4096 - decay; ``reset_at``
        (float64, on the s_scale scale; inf: no reset); ``theta``, ``tau`` float32. ``out``: the
        voltage where ``tau`` <= 0, else the surrogate's exponent
        -|voltage - theta| / tau. Neurons go in blocks of ``_ROWS_AT_ONCE``
        (see the backward)."""
        ws = np.float32(w_scale)
        batch, neurons, steps = x.shape
        exponent = tau > 0
        for job in numba.prange(neuron_blocks(batch, neurons)):
            n, lo, hi = neuron_block(job, neurons)
            c = np.empty(_ROWS_AT_ONCE, np.int64)
            v = np.empty(_ROWS_AT_ONCE, np.int64)
            for m in range(lo, hi):
                c[m - lo] = np.int64(current0[n, m] * ws)
                v[m - lo] = np.int64(voltage0[n, m] * ws)
            for t in range(steps):
                for m in range(lo, hi):
                    cm = _decayed(c[m - lo], keep_c) + np.int64(x[n, m, t] * ws)
                    c[m - lo] = cm
                    current = np.float32(cm) / ws
                    vm = _decayed(v[m - lo], keep_v) + np.int64(current * ws)
                    voltage = np.float32(vm) / ws
                    out[n, m, t] = -abs(voltage - theta) / tau if exponent else voltage
                    spikes[n, m, t] = np.float32(voltage >= theta)
                    v[m - lo] = vm if np.float64(vm) < reset_at else 0   # SLAYER compares in double

    @numba.njit(parallel=True, cache=True)
    def _neuron_backward(grad_spikes, exp_term, rho_scale, keep_v, keep_c, grad_in):   # pragma: no cover
        """grad_spikes, exp_term, grad_in: (N, M, T) float32, any strides.
        Each neuron is a chain of dependent multiply-adds; neurons go in
        blocks so that the CPU overlaps the chains."""
        batch, neurons, steps = grad_spikes.shape
        for job in numba.prange(neuron_blocks(batch, neurons)):
            n, lo, hi = neuron_block(job, neurons)
            gv = np.zeros(_ROWS_AT_ONCE, np.float32)
            gc = np.zeros(_ROWS_AT_ONCE, np.float32)
            for m in range(lo, hi):   # SLAYER's first step back is the gradient itself (no 0 * keep term)
                g = (rho_scale * exp_term[n, m, steps - 1]) * grad_spikes[n, m, steps - 1]
                gv[m - lo] = g
                gc[m - lo] = g
                grad_in[n, m, steps - 1] = g
            for t in range(steps - 2, -1, -1):
                for m in range(lo, hi):
                    g = keep_v * gv[m - lo] + (rho_scale * exp_term[n, m, t]) * grad_spikes[n, m, t]
                    gv[m - lo] = g
                    h = keep_c * gc[m - lo] + g
                    gc[m - lo] = h
                    grad_in[n, m, t] = h


else:   # no compiled kernels, nor their blocks
    neuron_block = neuron_blocks = None

_threads_set_for: list[int] = []   # torch's thread count numba's pool was last sized to


def match_numba_threads() -> None:
    # numba's pool and torch's intra-op pool are separate: size numba's to torch's
    # (OMP_NUM_THREADS, or a Ray trial's one CPU) so that trials do not oversubscribe.
    wanted = torch.get_num_threads()
    if _threads_set_for != [wanted]:
        numba.set_num_threads(max(1, min(wanted, numba.config.NUMBA_NUM_THREADS)))
        # The first call starts numba's OpenMP pool, sized to every core, and that start also sets
        # torch's thread count to it (torch 2.3's bundled libgomp; measured: 1 -> 2 on this machine):
        # a trial given one thread would then run torch on two. Give torch its count back.
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)
        _threads_set_for[:] = [wanted]


def _start_state(state: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """(N, M) float32. The state as SLAYER's Neuron.dynamics and
    leaky_integrator.dynamics make it: zeros when the batch size changed,
    else spread over the neurons."""
    if state.shape[0] != x.shape[0] and state.numel() != 1:
        state = torch.zeros(x.shape[:-1], dtype=torch.float32)
    start = (state.detach().to(torch.float32) * torch.ones(x.shape[:-1], dtype=torch.float32)).contiguous()
    return start.reshape(x.shape[0], -1).numpy()


class _Constants:
    """A neuron's integer decays and float32 spike and surrogate constants,
    as SLAYER's forward computes them."""

    def __init__(self, neuron):
        from lava.lib.dl.slayer.neuron.cuba import SCALE_RHO_MULT, TAU_RHO_MULT
        from lava.lib.dl.slayer.utils import quantize

        self.current_decay = int(quantize(neuron.current_decay).detach().reshape(-1)[0].to(torch.int64))
        self.voltage_decay = int(quantize(neuron.voltage_decay).detach().reshape(-1)[0].to(torch.int64))
        self.w_scale = int(neuron.s_scale)
        reset = neuron.threshold + neuron.threshold_eps
        self.reset_at = float(reset) * self.w_scale if reset > 0 else float("inf")   # compared in double, as SLAYER's integrator does
        self.theta = np.float32(reset)   # Spike.forward compares with a float32 tensor
        self.tau = np.float32(neuron.tau_rho * TAU_RHO_MULT)
        # Spike.backward: scale_rho / 2 / tau_rho, each a float32 tensor
        self.rho_scale = np.float32(np.float32(neuron.scale_rho * SCALE_RHO_MULT) / np.float32(2)) / self.tau

    def keep(self, decay: int) -> np.float32:
        """SLAYER's backward factor, 1 - decay / 4096 in float32."""
        return np.float32(1) - np.float32(decay) / np.float32(1 << _DECAY_SHIFT)


def _neurons(t: torch.Tensor) -> torch.Tensor:
    """(N, ..., T) as (N, M, T), a view where the strides allow (a dense
    synapse's time-major output does), else a copy."""
    return t.reshape(t.shape[0], -1, t.shape[-1])


def _forward(neuron, x: torch.Tensor, k: _Constants, exponent: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(the voltage before each reset, contiguous, or with ``exponent`` the
    surrogate's exponent, laid out as ``x``; the spikes, contiguous), both
    (N, M, T)."""
    match_numba_threads()
    x3 = _neurons(x.detach())
    # The exponent in x's layout (the input gradient is made in it, which a dense synapse's backward wants
    # time-major); the voltage, which the sparse backward reads flat, and the spikes contiguous.
    out = torch.empty_like(x3) if exponent else torch.empty(x3.shape, dtype=x3.dtype)
    spikes = torch.empty(x3.shape, dtype=x3.dtype)
    _neuron_forward(x3.numpy(), _start_state(neuron.current_state, x), _start_state(neuron.voltage_state, x),
                    (1 << _DECAY_SHIFT) - k.current_decay, (1 << _DECAY_SHIFT) - k.voltage_decay, k.w_scale,
                    k.reset_at, k.theta, k.tau if exponent else np.float32(0), out.numpy(), spikes.numpy())
    return out, spikes.reshape(x.shape)


class CubaNeuron(torch.autograd.Function):
    """A SLAYER ``cuba.Neuron``'s forward and backward, compiled; see the module doc."""

    @staticmethod
    def forward(ctx, x, neuron):
        k = _Constants(neuron)
        exponent, spikes = _forward(neuron, x, k, exponent=True)
        ctx.k, ctx.x_shape = k, x.shape
        ctx.save_for_backward(exponent)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        (exponent,) = ctx.saved_tensors
        k = ctx.k
        exp_term = torch.exp(exponent)   # torch's exp, SLAYER's rounding (same shape; the layout does not matter)
        grad_in = torch.empty_like(exponent)   # the input's layout: a dense synapse's backward wants it time-major
        _neuron_backward(_neurons(grad_spikes).numpy(), exp_term.numpy(), k.rho_scale,
                         k.keep(k.voltage_decay), k.keep(k.current_decay), grad_in.numpy())
        return grad_in.reshape(ctx.x_shape), None


class CubaVoltage(torch.autograd.Function):
    """A SLAYER ``cuba.Neuron``'s voltage, ``neuron.dynamics(x)[1]``, and its
    gradient through both integrators, compiled: the neuron's backward with
    the surrogate left out (its factor 1), as a non-spiking readout trains."""

    @staticmethod
    def forward(ctx, x, neuron):
        k = _Constants(neuron)
        voltage, _ = _forward(neuron, x, k, exponent=False)
        ctx.k, ctx.x_shape = k, x.shape
        return voltage.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_voltage):
        k = ctx.k
        grad = _neurons(grad_voltage.contiguous())
        grad_in = torch.empty(grad.shape, dtype=grad.dtype)
        _neuron_backward(grad.numpy(), np.ones(grad.shape, np.float32), np.float32(1),
                         k.keep(k.voltage_decay), k.keep(k.current_decay), grad_in.numpy())
        return grad_in.reshape(ctx.x_shape), None


def _fast_path_applies(neuron, x: torch.Tensor) -> bool:
    return (numba is not None and x.device.type == "cpu" and x.dtype == torch.float32 and neuron.shape is not None
            and tuple(x.shape[1:-1]) == tuple(neuron.shape) and neuron.shared_param is not False
            and neuron.current_decay.numel() == 1 and neuron.voltage_decay.numel() == 1 and not neuron.requires_grad
            and not neuron.graded_spike and neuron.drop is None
            and neuron.norm is None and not neuron.persistent_state and not neuron.debug)


def cuba_neuron_forward(neuron, x: torch.Tensor) -> torch.Tensor:
    """``neuron(x)`` for a SLAYER ``cuba.Neuron``, compiled where
    ``_fast_path_applies`` (the same spikes and gradients)."""
    if not _fast_path_applies(neuron, x):
        return neuron(x)
    return CubaNeuron.apply(x, neuron)


def cuba_voltage_forward(neuron, x: torch.Tensor) -> torch.Tensor:
    """``neuron.dynamics(x)[1]``, the voltage of a SLAYER ``cuba.Neuron``
    (before each reset, which a readout's threshold never brings), with its
    gradient; compiled where ``_fast_path_applies``."""
    if not _fast_path_applies(neuron, x):
        return neuron.dynamics(x)[1]
    return CubaVoltage.apply(x, neuron)


def neuron_voltage(neuron, x: torch.Tensor) -> torch.Tensor:
    """A SLAYER ``cuba.Neuron``'s voltage (before each reset) for input ``x``,
    without autograd: compiled where ``_fast_path_applies``, else SLAYER's
    ``dynamics`` (its CUDA kernels on a GPU)."""
    with torch.no_grad():
        if not _fast_path_applies(neuron, x):
            return neuron.dynamics(x)[1]
        return _forward(neuron, x, _Constants(neuron), exponent=False)[0].reshape(x.shape)
