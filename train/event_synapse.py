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

from lavasparse.train.cuba_cpu import match_numba_threads, numba
from lavasparse.train.quantised import forward_weight


def exact_sums(weight: torch.Tensor) -> bool:
    """Whether every partial sum of binary inputs times ``weight`` (out,
    in, ...) is exact in its float type: weights on a 2^-k grid (k <= 12)
    and each output's sum of |w| inside the mantissa. SLAYER's 8-bit weights
    are."""
    w = weight.detach()
    mantissa = 24 if w.dtype == torch.float32 else 53
    for bits in range(13):
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


def event_dense_values(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor | None:
    """z (N, out, T) for binary ``x`` (N, in, T), or None where ``x`` is not binary."""
    match_numba_threads()
    n, _, steps = x.shape
    w_t = weight.detach().reshape(weight.shape[0], -1).t().contiguous()   # (in, out): one row per input
    z_t = torch.zeros((n, steps, w_t.shape[1]), dtype=x.dtype)
    if not _add_spiking_rows(x.detach().contiguous().numpy(), w_t.numpy(), z_t.numpy()):
        return None
    return z_t.transpose(1, 2)   # time-major, as the compiled neuron reads it best


class _EventDense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, synapse):
        z = event_dense_values(x, weight)
        ctx.binary = z is not None
        if z is None:   # not binary: SLAYER's op
            x5 = x.reshape(x.shape[0], x.shape[1], 1, 1, x.shape[2])
            z = F.conv3d(x5, weight, None, *_conv_args(synapse)).reshape(x.shape[0], -1, x.shape[2])
        ctx.conv_args = _conv_args(synapse)
        # binary spikes are kept as bytes, a quarter of the memory
        ctx.save_for_backward(x.to(torch.uint8) if ctx.binary else x, weight)
        return z

    @staticmethod
    def backward(ctx, grad_z):
        x, weight = ctx.saved_tensors
        if not ctx.binary:   # SLAYER's op, bit for bit
            stride, padding, dilation, groups = ctx.conv_args
            x5 = x.reshape(x.shape[0], x.shape[1], 1, 1, x.shape[2])
            grad5 = grad_z.reshape(grad_z.shape[0], grad_z.shape[1], 1, 1, grad_z.shape[2])
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad5, x5, weight, None, list(stride), list(padding), list(dilation), False, [0, 0, 0], groups,
                [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
            return (grad_x.reshape(x.shape) if grad_x is not None else None), grad_w, None
        # Time-major (N, T, out): the compiled neuron's backward hands dz over laid out so; then free.
        dz_t = grad_z.detach().transpose(1, 2).contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:   # dx[n, :, t] = W^T dz[n, :, t]: one product, time-major too
            grad_x = torch.mm(dz_t.reshape(-1, dz_t.shape[2]), weight.reshape(weight.shape[0], -1))
            grad_x = grad_x.reshape(x.shape[0], x.shape[2], x.shape[1]).transpose(1, 2)
        if ctx.needs_input_grad[1]:
            match_numba_threads()
            grad_w_t = torch.empty((weight.shape[1], weight.shape[0]), dtype=grad_z.dtype)
            _add_rows_at_spikes(x.contiguous().numpy(), dz_t.numpy(), grad_w_t.numpy())
            grad_w = grad_w_t.t().reshape(weight.shape)
        return grad_x, grad_w, None


def count_events(x: torch.Tensor) -> torch.Tensor:
    """The non-zero entries of ``x`` (N, ..., T) along time, per neuron, in
    ``x``'s dtype: ``torch.count_nonzero(x, dim=-1)``, compiled on the CPU
    (torch's turns the mask into int64 first: a third of the cost terms'
    time per training step, measured on 784-500-10 at one thread). Reads
    ``x`` in place, whatever its strides (a layer's window of the compiled
    neuron's time-major spikes is not contiguous)."""
    if numba is None or x.device.type != "cpu" or x.requires_grad or x.dtype != torch.float32 or x.dim() < 2:
        return torch.count_nonzero(x, dim=-1).to(x.dtype)
    match_numba_threads()
    rows = x.detach().reshape(x.shape[0], -1, x.shape[-1])   # a view for a window of either layout
    counts = torch.empty(rows.shape[:2], dtype=x.dtype)
    _count_nonzero_rows(rows.numpy(), counts.numpy())
    return counts.reshape(x.shape[:-1])


def dense_synapse(synapse, x: torch.Tensor) -> torch.Tensor:
    """``synapse(x)`` for a SLAYER dense synapse, event-driven where
    ``event_path_applies`` (the same values; gradients to float32
    rounding), else SLAYER's. The values come as a time-major view made
    inside an autograd function: not to be changed in place.
    It does not call the module: ``SpikingNet`` runs a hooked block as
    SLAYER's modules."""
    if getattr(synapse, "weight_norm_enabled", False):
        return synapse(x)
    weight = forward_weight(synapse)
    if not event_path_applies(synapse, x, weight):
        return synapse(x)
    return _EventDense.apply(x, weight, synapse)


if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _add_spiking_rows(x, w_t, z_t):   # pragma: no cover (compiled)
        """z_t[n, t, :] += w_t[i, :] for every x[n, i, t] == 1, inputs in
        ascending order; False if some x is neither 0 nor 1."""
        batch, inputs, steps = x.shape
        bad = np.zeros(batch, np.bool_)
        for n in numba.prange(batch):
            for i in range(inputs):
                for t in range(steps):
                    v = x[n, i, t]
                    if v != 0:
                        if v != 1:
                            bad[n] = True
                        else:
                            for o in range(w_t.shape[1]):
                                z_t[n, t, o] += w_t[i, o]
        return not bad.any()

    @numba.njit(parallel=True, cache=True)
    def _add_rows_at_spikes(x, dz_t, out):   # pragma: no cover (compiled)
        """out[i, :] = sum of dz_t[n, t, :] over every x[n, i, t] != 0 (x
        binary bytes (N, I, T), dz_t (N, T, O)); inputs in parallel, each
        summed in (n, t) order, so the result does not depend on the thread
        count."""
        batch, inputs, steps = x.shape
        outputs = dz_t.shape[2]
        for i in numba.prange(inputs):
            row = np.zeros(outputs, dz_t.dtype)
            for n in range(batch):
                for t in range(steps):
                    if x[n, i, t] != 0:
                        for o in range(outputs):
                            row[o] += dz_t[n, t, o]
            out[i, :] = row

    @numba.njit(parallel=True, cache=True)
    def _count_nonzero_rows(rows, counts):   # pragma: no cover (compiled)
        """counts[n, m] = the non-zero entries of rows[n, m, :]."""
        for n in numba.prange(rows.shape[0]):
            for m in range(rows.shape[1]):
                c = 0
                for t in range(rows.shape[2]):
                    c += rows[n, m, t] != 0
                counts[n, m] = c
