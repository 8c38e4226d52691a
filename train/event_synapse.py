"""SLAYER's dense synapse on the CPU, event-driven: the same values, less work.

SLAYER computes a dense layer's synaptic input z[n, :, t] = W x[n, :, t] as
a 1x1x1 ``conv3d`` over every input and step, spikes or not. With binary
input spikes only the weights of the inputs that spiked are added, which is
what a neuromorphic chip does: a tenth of the work or less at the input
spike rates of our networks.

The values are SLAYER's exactly, not nearly: SLAYER's 8-bit weights lie on a
2^-k grid, so with binary inputs every partial sum is a multiple of 2^-k
well inside float32's 24-bit mantissa and no sum rounds, in any order
(``exact_sums`` checks the weights; an input that is not binary falls back
to ``conv3d``, and its backward is SLAYER's op).

The backward with binary inputs is the same sums as SLAYER's, added in
another order, so the gradients equal SLAYER's to float32 rounding (a
relative 1e-6), not bit for bit: training keeps SLAYER's spikes step for
step but drifts from it as runs on two CPUs do (``tests/test_cuba_cpu.py``).
The weight gradient, dW[o, i] = sum over n, t of dz[n, o, t] x[n, i, t], is
event-driven: the sum of dz's rows at the steps where input i spiked (a
third of the time of oneDNN's dense product at a tenth of the inputs
spiking, a sixth at 2%). The input gradient is one matrix product on the
time-major dz the compiled neuron hands over (half the time of
``conv3d``'s backward, which would first copy it back).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lavasparse.layers.quantised import forward_weight
from lavasparse.train.cuba_cpu import match_numba_threads, numba


_GRID_BITS = 12   # the finest weight grid (2^-12) the event path accepts


def exact_sums(weight: torch.Tensor) -> bool:
    """Whether every partial sum of binary inputs times ``weight`` (out,
    in, ...) is exact in its float type: weights on a 2^-k grid (k <= 12)
    and each output's sum of |w| inside the mantissa. SLAYER's 8-bit weights
    are. Checked on every forward, so on the CPU in one compiled pass (0.11
    ms for 784x500 weights, against 0.79 for torch's loop over k)."""
    w = weight.detach()
    mantissa = 24 if w.dtype == torch.float32 else 53
    if numba is not None and w.device.type == "cpu" and w.dtype in (torch.float32, torch.float64) and w.numel():
        flat = w.reshape(w.shape[0], -1).contiguous()
        scale, limit = flat.new_tensor([2.0 ** _GRID_BITS, 2.0 ** 30]).numpy()   # in w's dtype
        largest_row, whole_bits = _grid_row_sums(flat.numpy(), scale, limit)
        if largest_row == -1:   # off the 2^-12 grid
            return False
        if largest_row >= 0:    # (-2: a weight past 2^18, taken the slow way below)
            # the coarsest grid all weights lie on: 2^-(12 - trailing zero bits of every |w| * 2^12)
            shift = _GRID_BITS if whole_bits == 0 else min(_GRID_BITS, (whole_bits & -whole_bits).bit_length() - 1)
            return (largest_row >> shift) < 2 ** mantissa
    for bits in range(_GRID_BITS + 1):
        scaled = w * 2.0 ** bits
        if torch.equal(scaled, scaled.round()):
            return float(scaled.abs().reshape(w.shape[0], -1).sum(dim=1).max()) < 2.0 ** mantissa
    return False


def _conv_args(synapse) -> tuple:
    return synapse.stride, synapse.padding, synapse.dilation, synapse.groups


def event_path_applies(synapse, x: torch.Tensor, weight: torch.Tensor) -> bool:
    """SLAYER's own dense synapse (not a subclass with its own forward, such
    as the ISI synapse; no bias) on a CPU float32 (N, C, T) input, with exact sums."""
    from lava.lib.dl.slayer.synapse import Dense
    return (type(synapse) is Dense and numba is not None and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 3
            and weight.dtype == torch.float32 and tuple(weight.shape[2:]) == (1, 1, 1) and synapse.bias is None
            and synapse.groups == 1 and exact_sums(weight))


def event_dense_values(x: torch.Tensor, weight: torch.Tensor, delay: int = 0,
                       steps: int | None = None) -> torch.Tensor | None:
    """z (N, out, ``steps``) with z[..., t] = W x[..., t - delay] (0 where
    t - delay falls outside x's steps) for binary ``x`` (N, in, T), or None
    where ``x`` is not binary. ``steps`` defaults to T."""
    match_numba_threads()
    n = x.shape[0]
    steps = x.shape[2] if steps is None else steps
    w_t = weight.detach().reshape(weight.shape[0], -1).t().contiguous()   # (in, out): one row per input
    z_t = torch.zeros((n, steps, w_t.shape[1]), dtype=x.dtype)
    if not _add_spiking_rows(x.detach().contiguous().numpy(), w_t.numpy(), z_t.numpy(), delay):
        return None
    return z_t.transpose(1, 2)   # time-major, as the compiled neuron reads it best


def delayed(x: torch.Tensor, delay: int, steps: int) -> torch.Tensor:
    """``x`` (..., T) delayed by ``delay`` steps and cut or zero-padded to
    ``steps``: what a synapse sees, materialised (the event path reads ``x``
    at its offset instead)."""
    lead, keep = _delay_split(x.shape[-1], delay, steps)
    return F.pad(x[..., :keep], (lead, steps - lead - keep))


def _delay_split(in_steps: int, delay: int, steps: int) -> tuple[int, int]:
    """(leading zero steps, input steps kept) when ``in_steps`` are delayed by
    ``delay`` into ``steps``."""
    if delay < 0 or steps < 0:
        raise ValueError(f"a synapse's delay and steps cannot be negative (delay {delay}, steps {steps})")
    lead = min(delay, steps)
    return lead, max(0, min(in_steps, steps - delay))


class _EventDense(torch.autograd.Function):
    """z = W x[..., t - delay] over ``steps`` steps; binary x event-driven,
    else SLAYER's op on the delayed input."""

    @staticmethod
    def forward(ctx, x, weight, synapse, delay: int, steps: int):
        z = event_dense_values(x, weight, delay, steps)
        ctx.binary = z is not None
        ctx.conv_args, ctx.delay, ctx.in_steps = _conv_args(synapse), delay, x.shape[2]
        if z is None:   # not binary: SLAYER's op on the delayed input
            x = delayed(x, delay, steps)
            x5 = x.reshape(x.shape[0], x.shape[1], 1, 1, x.shape[2])
            z = F.conv3d(x5, weight, None, *ctx.conv_args).reshape(x.shape[0], -1, x.shape[2])
        # binary spikes are kept as bytes, a quarter of the memory
        ctx.save_for_backward(x.to(torch.uint8) if ctx.binary else x, weight)
        return z

    @staticmethod
    def backward(ctx, grad_z):
        x, weight = ctx.saved_tensors
        if not ctx.binary:   # SLAYER's op, bit for bit, then undo the delay
            stride, padding, dilation, groups = ctx.conv_args
            x5 = x.reshape(x.shape[0], x.shape[1], 1, 1, x.shape[2])
            grad5 = grad_z.reshape(grad_z.shape[0], grad_z.shape[1], 1, 1, grad_z.shape[2])
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad5, x5, weight, None, list(stride), list(padding), list(dilation), False, [0, 0, 0], groups,
                [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
            if grad_x is not None:   # the delayed input's gradient, read back at the input's steps
                lead, keep = _delay_split(ctx.in_steps, ctx.delay, x.shape[2])
                grad_x = F.pad(grad_x.reshape(x.shape)[..., lead:lead + keep], (0, ctx.in_steps - keep))
            return grad_x, grad_w, None, None, None
        # Time-major (N, T, out): the compiled neuron's backward hands dz over laid out so; then free.
        dz_t = grad_z.detach().transpose(1, 2).contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _delayed_input_gradient(dz_t, weight.reshape(weight.shape[0], -1), ctx.delay, x.shape[2])
        if ctx.needs_input_grad[1]:
            match_numba_threads()
            grad_w_t = torch.empty((weight.shape[1], weight.shape[0]), dtype=grad_z.dtype)
            _add_rows_at_spikes(x.contiguous().numpy(), dz_t.numpy(), grad_w_t.numpy(), ctx.delay)
            grad_w = grad_w_t.t().reshape(weight.shape)
        return grad_x, grad_w, None, None, None


def _delayed_input_gradient(dz_t: torch.Tensor, w: torch.Tensor, delay: int, in_steps: int) -> torch.Tensor:
    """dx[n, :, t] = W^T dz[n, :, t + delay] (0 past dz's last step), for
    dz_t (N, T_out, out) time-major and T_in = ``in_steps`` <= T_out: one
    product over every (n, t) row, read back at an offset of ``delay`` rows,
    so that the delay costs no copy. The rows that fall past a sample's
    last step read the next sample's first ``delay`` rows, or the ``delay``
    rows appended after the last sample: those are zeroed (z's first
    ``delay`` steps do not depend on x, so no entry of dx needs them)."""
    n, t_out, _ = dz_t.shape
    if in_steps > t_out:   # input steps past the output's last reach nothing: zero, padded on (rare)
        return F.pad(_delayed_input_gradient(dz_t, w, delay, t_out), (0, in_steps - t_out))
    inputs = w.shape[1]
    rows = torch.empty((n * t_out + delay, inputs), dtype=dz_t.dtype)
    torch.mm(dz_t.reshape(-1, dz_t.shape[2]), w, out=rows[:n * t_out])
    if delay:
        rows[:n * t_out].view(n, t_out, inputs)[1:, :delay] = 0
        rows[n * t_out:] = 0
    grad_t = rows.as_strided((n, in_steps, inputs), (t_out * inputs, inputs, 1), delay * inputs)
    return grad_t.transpose(1, 2)   # (N, in, T_in), time-major in memory


def count_events(x: torch.Tensor) -> torch.Tensor:
    """The non-zero entries of ``x`` (N, ..., T) along time, per neuron, in
    ``x``'s dtype: ``torch.count_nonzero(x, dim=-1)``, compiled on the CPU
    (torch's turns the mask into int64 first: a third of the cost terms'
    time per training step, measured on 784-500-10 at one thread). Reads
    ``x`` in place, whatever its strides (a layer's window of the compiled
    neuron's time-major spikes is not contiguous)."""
    if (numba is None or x.device.type != "cpu" or x.requires_grad or x.dtype != torch.float32 or x.dim() < 2
            or x.numel() == 0):
        return torch.count_nonzero(x, dim=-1).to(x.dtype)
    match_numba_threads()
    rows = x.detach().reshape(x.shape[0], -1, x.shape[-1])   # a view for a window of either layout
    counts = torch.empty(rows.shape[:2], dtype=x.dtype)
    _count_nonzero_rows(rows.numpy(), counts.numpy())
    return counts.reshape(x.shape[:-1])


def dense_synapse(synapse, x: torch.Tensor, delay: int, steps: int) -> torch.Tensor:
    """``synapse(delayed(x, delay, steps))`` for a SLAYER dense synapse,
    event-driven where ``event_path_applies``
    (the same values; gradients to float32 rounding), reading x at its
    offset instead of shifting a copy; else SLAYER's. The values come as a
    time-major view made inside an autograd function: not to be changed in
    place. It does not call the module: ``SpikingNet`` runs a hooked block
    as SLAYER's modules."""
    _delay_split(x.shape[-1], delay, steps)   # refuses a negative delay or length
    if getattr(synapse, "weight_norm_enabled", False):
        return synapse(delayed(x, delay, steps))
    weight = forward_weight(synapse)
    if not event_path_applies(synapse, x, weight):
        return synapse(delayed(x, delay, steps))
    return _EventDense.apply(x, weight, synapse, delay, steps)


if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _add_spiking_rows(x, w_t, z_t, delay):   # pragma: no cover (compiled)
        """z_t[n, t + delay, :] += w_t[i, :] for every x[n, i, t] == 1 with
        t + delay inside z_t, inputs in ascending order; False if some x is
        neither 0 nor 1."""
        batch, inputs, steps = x.shape
        steps_out = z_t.shape[1]
        bad = np.zeros(batch, np.bool_)
        for n in numba.prange(batch):
            for i in range(inputs):
                for t in range(steps):
                    v = x[n, i, t]
                    if v != 0:
                        if v != 1:
                            bad[n] = True
                        elif t + delay < steps_out:
                            for o in range(w_t.shape[1]):
                                z_t[n, t + delay, o] += w_t[i, o]
        return not bad.any()

    @numba.njit(parallel=True, cache=True)
    def _add_rows_at_spikes(x, dz_t, out, delay):   # pragma: no cover (compiled)
        """out[i, :] = sum of dz_t[n, t + delay, :] over every x[n, i, t] != 0
        with t + delay inside dz_t (x binary bytes (N, I, T), dz_t (N, T_out,
        O)); inputs in parallel, each summed in (n, t) order, so the result
        does not depend on the thread count."""
        batch, inputs, steps = x.shape
        steps_out, outputs = dz_t.shape[1], dz_t.shape[2]
        last = min(steps, steps_out - delay)
        for i in numba.prange(inputs):
            row = np.zeros(outputs, dz_t.dtype)
            for n in range(batch):
                for t in range(last):
                    if x[n, i, t] != 0:
                        for o in range(outputs):
                            row[o] += dz_t[n, t + delay, o]
            out[i, :] = row

    @numba.njit(cache=True)
    def _grid_row_sums(w, scale, limit):   # pragma: no cover (compiled)
        """(the largest row sum of |w| * scale, the OR of every |w| * scale),
        as integers; (-1, 0) if some |w| * scale is not whole, (-2, 0) if
        one is ``limit`` (2^30) or more. Branch-free in the loop, so that it
        vectorises."""
        largest = np.int64(0)
        ored = np.int32(0)
        off_grid = False
        too_large = False
        for o in range(w.shape[0]):
            row = np.int64(0)
            for i in range(w.shape[1]):
                m = abs(w[o, i]) * scale
                off_grid |= m != np.floor(m)
                too_large |= m >= limit
                k = np.int32(min(m, limit))
                row += k
                ored |= k
            largest = max(largest, row)
        if off_grid:
            return np.int64(-1), np.int64(0)
        if too_large:
            return np.int64(-2), np.int64(0)
        return largest, np.int64(ored)

    @numba.njit(parallel=True, cache=True)
    def _count_nonzero_rows(rows, counts):   # pragma: no cover (compiled)
        """counts[n, m] = the non-zero entries of rows[n, m, :]; (n, m) pairs
        in parallel, so that one sample uses every thread too."""
        per_sample = rows.shape[1]
        for r in numba.prange(rows.shape[0] * per_sample):
            n, m = r // per_sample, r % per_sample
            c = 0
            for t in range(rows.shape[2]):
                c += rows[n, m, t] != 0
            counts[n, m] = c
