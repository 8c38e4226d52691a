"""Sparse spiking gradient descent (Perez-Nieves & Goodman, SSGD, NeurIPS
2021) for our SLAYER CUBA dense and conv blocks: the backward pass computed
only where a neuron's voltage is near its threshold.

SLAYER's CUBA gradient, as its autograd computes it (the reset is not
differentiated, ``train/cuba_cpu.py``): a spike's surrogate gradient

    rho(v) = scale_rho / (2 tau_rho) exp(-|v - theta| / tau_rho),
    tau_rho = tau_grad * theta * 100,  scale_rho = scale_grad * 0.1

(lava-dl's ``_spike_backward`` and ``cuba.TAU_RHO_MULT``, ``SCALE_RHO_MULT``),
then back through the voltage and current integrators, two first-order
filters backwards in time, into the synaptic input z, and from there to the
weights and the input spikes x (z = W x per step). Written out, with
delta = rho(v) * dL/ds (per neuron and step) and the filters' kernel

    kappa[k] = sum_{j=0..k} a^j b^(k-j),  a = 1 - iDecay/4096, b = 1 - vDecay/4096,
    dL/dz[t] = sum_{t' >= t} kappa[t' - t] delta[t'],

the gradients are (for a conv, W x is the conv and the products below its
im2col rows)

    dL/dW = sum_t' delta[t'] x~[t']^T,        x~[t] = sum_{k <= t} kappa[t - k] x[k]
    dL/dx[t] = sum_{t' >= t} kappa[t' - t] (W^T delta)[t'].

Both products need delta only where it is non-zero. The sparse backward
keeps delta on the *active set* |v - theta| < band * theta, where SSGD
computes it, and 0 elsewhere: it is the exact gradient of the surrogate
truncated to the band (with a band holding every neuron, SLAYER's gradient;
``tests/test_sparse_backward.py`` checks both in float64). The cost is the
active entries times the fan-in, against every neuron and step times the
fan-in for SLAYER's backward, plus two filters over the inputs.

What is saved for the backward: the input (one byte per entry when it is
binary spikes), the active entries' positions and surrogate values; not the
current and voltage that SLAYER's autograd keeps.

The forward is SLAYER's: the block's synapse op (``F.conv3d`` with the
synapse's arguments on the hooked weight), its integrators (compiled on the
CPU, ``cuba_cpu``), and its spike test, so the spikes are identical.

On the CPU the products and filters are numba kernels (torch's sparse
matrix products are slower than its dense ones there at these sizes); on a
GPU, or without numba, torch's sparse products and a Toeplitz matrix of
kappa.

A block qualifies where its neuron is a plain CUBA neuron (binary spikes,
one decay per layer, decays not learnt, no norm, no persistent state, no
hooks) and its synapse has no dilation or groups; any other block, and any
block with gradients off, runs SLAYER's own forward and backward.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lavasparse.train.cuba_cpu import match_numba_threads, neuron_voltage, numba

_DECAY_ONE = 1 << 12   # SLAYER's decays are integers out of 4096
_CHUNK_ENTRIES = 1 << 24   # im2col entries per chunk of the products (64 MiB in float32)


@dataclass
class ActiveFraction:
    """Active entries (|v - theta| < band * theta) over all neuron-steps of
    one layer, summed over the forward passes since the last ``take``."""

    active: int = 0
    total: int = 0

    def take(self) -> float | None:
        """The fraction since the last call (None: no pass), and start again."""
        frac = self.active / self.total if self.total else None
        self.active = self.total = 0
        return frac


@dataclass
class SparseCuba:
    """One block's sparse backward: its synapse's geometry, neuron and band
    (in thresholds), and the active fraction it records."""

    block: torch.nn.Module
    band: float
    record: ActiveFraction = field(default_factory=ActiveFraction)

    @staticmethod
    def applies(block) -> bool:
        """Whether the sparse backward can stand in for SLAYER's on ``block``
        (see the module doc); else SLAYER's own path runs."""
        n, syn = block.neuron, block.synapse
        conv_args = tuple(syn.dilation) == (1, 1, 1) and syn.groups == 1 and getattr(syn, "bias", None) is None
        return (conv_args and not n.graded_spike and n.norm is None and not n.persistent_state and n.drop is None
                and not n.requires_grad and n.shared_param is not False and n.current_decay.numel() == 1
                and n.voltage_decay.numel() == 1 and not syn.weight_norm_enabled
                and not (n._forward_hooks or n._forward_pre_hooks))

    def spikes(self, x: torch.Tensor) -> torch.Tensor:
        """The block's spikes for input ``x`` (N, C, T) or (N, C, H, W, T),
        with the sparse backward."""
        syn = self.block.synapse
        weight = syn.weight if syn._pre_hook_fx is None else syn._pre_hook_fx(syn.weight)
        return _SparseCubaFunction.apply(x, weight, self)

    # ---- the pieces the autograd function uses ----------------------------------------------

    @property
    def threshold(self) -> float:
        n = self.block.neuron
        return float(n.threshold + n.threshold_eps)

    def surrogate(self, distance: torch.Tensor) -> torch.Tensor:
        """SLAYER's rho at |v - theta| = ``distance`` (binary spikes)."""
        from lava.lib.dl.slayer.neuron.cuba import SCALE_RHO_MULT, TAU_RHO_MULT
        n = self.block.neuron
        tau, scale = n.tau_rho * TAU_RHO_MULT, n.scale_rho * SCALE_RHO_MULT
        return scale / 2 / tau * torch.exp(-distance / tau)

    def synapse_forward(self, x5: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """z = the synapse's op, exactly as SLAYER's forward calls it."""
        syn = self.block.synapse
        w5 = weight if weight.dim() == 5 else weight.reshape(weight.shape[0], -1, 1, 1, 1)
        return F.conv3d(x5, w5, None, syn.stride, syn.padding, syn.dilation, syn.groups)

    def decays(self) -> tuple[float, float]:
        """a, b: the current's and the voltage's backward filter factors,
        float32 as SLAYER's backward computes them."""
        from lava.lib.dl.slayer.utils import quantize
        n = self.block.neuron
        out = []
        for d in (n.current_decay, n.voltage_decay):
            q = float(quantize(d).reshape(-1)[0])
            out.append(float(np.float32(1) - np.float32(q) / np.float32(_DECAY_ONE)))
        return out[0], out[1]

    def im2col(self) -> tuple[int, int, int]:
        """(kernel, stride, padding) in H and W; a dense layer is a 1x1 conv on a 1x1 image."""
        syn = self.block.synapse
        k, s, p = syn.kernel_size[0], syn.stride[0], syn.padding[0]
        if not (syn.kernel_size[0] == syn.kernel_size[1] and syn.stride[0] == syn.stride[1]
                and syn.padding[0] == syn.padding[1]):
            raise ValueError("the sparse backward takes square kernels, strides and paddings")
        return k, s, p


class _SparseCubaFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, layer: SparseCuba):
        dense = x.dim() == 3
        x5 = x.reshape(x.shape[0], x.shape[1], 1, 1, x.shape[2]) if dense else x
        with torch.no_grad():
            z = layer.synapse_forward(x5, weight)
            voltage = neuron_voltage(layer.block.neuron, z.reshape(z.shape[0], -1, z.shape[-1]) if dense else z)
        voltage = voltage.reshape(z.shape)
        theta = layer.threshold
        spikes = (voltage >= theta).to(x.dtype)
        distance = (voltage - theta).abs().reshape(-1)
        active = torch.nonzero(distance < layer.band * theta).squeeze(1)
        rho = layer.surrogate(distance[active])
        layer.record.active += int(active.numel())
        layer.record.total += int(distance.numel())
        binary = bool(((x == 0) | (x == 1)).all())
        ctx.layer, ctx.dense, ctx.binary, ctx.x_dtype = layer, dense, binary, x.dtype
        ctx.z_shape, ctx.x5_shape = tuple(z.shape), tuple(x5.shape)
        ctx.save_for_backward(x5.to(torch.int8) if binary else x5, weight, active, rho)
        return spikes.reshape(*z.shape[:2], -1) if dense else spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        x5, weight, active, rho = ctx.saved_tensors
        layer: SparseCuba = ctx.layer
        x5 = x5.to(ctx.x_dtype) if ctx.binary else x5
        dtype = grad_spikes.dtype
        delta = grad_spikes.reshape(-1)[active] * rho.to(dtype)
        n, c_out, h_out, w_out, steps = ctx.z_shape
        # active entry -> (im2col row, output channel); rows run over (n, t, h, w)
        flat = active
        t = flat % steps
        flat = flat // steps
        pix = flat % (h_out * w_out)
        flat = flat // (h_out * w_out)
        o = flat % c_out
        b = flat // c_out
        rows = (b * steps + t) * (h_out * w_out) + pix
        order = torch.argsort(rows)
        rows, cols, delta = rows[order], o[order], delta[order]
        a, bdec = layer.decays()
        kernel, stride, padding = layer.im2col()
        need_x = ctx.needs_input_grad[0]
        c_in, h_in, w_in = x5.shape[1:4]
        w_mat = weight.reshape(c_out, -1).to(dtype)
        # x~: the inputs filtered forward by kappa, as (N * T) images
        x_tilde = _kappa_filter(x5.to(dtype), a, bdec, reverse=False).permute(0, 4, 1, 2, 3).reshape(
            -1, c_in, h_in, w_in)
        grad_w = torch.zeros_like(w_mat)
        grad_x = torch.zeros_like(x_tilde) if need_x else None
        per_image = h_out * w_out * w_mat.shape[1]
        step = max(1, _CHUNK_ENTRIES // max(per_image, 1))
        bounds = torch.searchsorted(rows, torch.arange(0, x_tilde.shape[0] + step, step, device=rows.device)
                                    * (h_out * w_out))
        for k, i0 in enumerate(range(0, x_tilde.shape[0], step)):
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            if lo == hi:
                continue
            i1 = min(i0 + step, x_tilde.shape[0])
            cols_mat = _unfold(x_tilde[i0:i1], kernel, stride, padding)   # (images * L, C k k)
            u = _products(rows[lo:hi] - i0 * h_out * w_out, cols[lo:hi], delta[lo:hi], cols_mat, w_mat, grad_w,
                          need_x)
            if need_x:
                grad_x[i0:i1] = _fold(u, i1 - i0, (c_in, h_in, w_in), (h_out, w_out), kernel, stride, padding)
        if need_x:
            grad_x = grad_x.reshape(n, steps, c_in, h_in, w_in).permute(0, 2, 3, 4, 1)
            grad_x = _kappa_filter(grad_x, a, bdec, reverse=True)
            grad_x = grad_x.reshape(n, c_in, steps) if ctx.dense else grad_x
        return grad_x, grad_w.reshape(weight.shape).to(weight.dtype), None


def _unfold(images: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """im2col rows (images * L, C * k * k), rows in (image, h, w) order."""
    if kernel == 1 and stride == 1 and padding == 0:
        return images.permute(0, 2, 3, 1).reshape(-1, images.shape[1])
    cols = F.unfold(images, kernel, padding=padding, stride=stride)   # (B, C k k, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _fold(u: torch.Tensor, images: int, in_shape, out_hw, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """The inverse scatter of ``_unfold``: im2col-shaped gradients summed back onto the images."""
    c, h, w = in_shape
    if kernel == 1 and stride == 1 and padding == 0:
        return u.reshape(images, h, w, c).permute(0, 3, 1, 2)
    cols = u.reshape(images, out_hw[0] * out_hw[1], -1).transpose(1, 2)
    return F.fold(cols, (h, w), kernel, padding=padding, stride=stride)


def _products(rows, cols, delta, x_rows, w_mat, grad_w, need_x):
    """grad_w += D x_rows and (when ``need_x``) returns D^T w_mat, for the
    sparse D (output channels x rows) with ``delta`` at (cols, rows)."""
    if numba is not None and x_rows.device.type == "cpu":
        match_numba_threads()
        u = torch.zeros_like(x_rows) if need_x else torch.zeros((0, x_rows.shape[1]), dtype=x_rows.dtype)
        _sparse_products(rows.numpy(), cols.numpy(), delta.contiguous().numpy(), x_rows.contiguous().numpy(),
                         w_mat.detach().contiguous().numpy(), grad_w.numpy(), u.numpy(), need_x)
        return u if need_x else None
    d = torch.sparse_coo_tensor(torch.stack([cols, rows]), delta, (w_mat.shape[0], x_rows.shape[0]))
    grad_w += torch.sparse.mm(d, x_rows)
    return torch.sparse.mm(d.t(), w_mat.detach()) if need_x else None


def _kappa(a: float, b: float, steps: int, dtype, device) -> torch.Tensor:
    """kappa[k] for k = 0 .. steps - 1 (see the module doc)."""
    k = np.zeros(steps)
    cur = 0.0
    volt = 0.0
    for i in range(steps):   # the two filters' impulse response, in float64
        cur = a * cur + (1.0 if i == 0 else 0.0)
        volt = b * volt + cur
        k[i] = volt
    return torch.as_tensor(k, dtype=dtype, device=device)


def _kappa_filter(x: torch.Tensor, a: float, b: float, reverse: bool) -> torch.Tensor:
    """x filtered along its last axis by kappa: forwards (sum over k <= t) or
    backwards (sum over t' >= t), i.e. the current's and the voltage's filters
    one after the other."""
    steps = x.shape[-1]
    rows = x.contiguous().reshape(-1, steps)
    if numba is not None and x.device.type == "cpu":
        match_numba_threads()
        out = torch.empty_like(rows)
        _two_filters(rows.numpy(), a, b, reverse, out.numpy())
        return out.reshape(x.shape)
    kappa = _kappa(a, b, steps, x.dtype, x.device)
    idx = torch.arange(steps, device=x.device)
    lag = idx[:, None] - idx[None, :]   # t - k
    toeplitz = torch.where(lag >= 0, kappa[lag.clamp(min=0)], torch.zeros((), dtype=x.dtype, device=x.device))
    out = rows @ toeplitz if reverse else rows @ toeplitz.T
    return out.reshape(x.shape)


if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _two_filters(x, a, b, reverse, out):   # pragma: no cover (compiled)
        """out = x through y[t] = a y[t -/+ 1] + x[t], then the same with b."""
        rows, steps = x.shape
        fa = x.dtype.type(a)
        fb = x.dtype.type(b)
        for m in numba.prange(rows):
            cur = x.dtype.type(0)
            volt = x.dtype.type(0)
            for i in range(steps):
                t = steps - 1 - i if reverse else i
                cur = fa * cur + x[m, t]
                volt = fb * volt + cur
                out[m, t] = volt

    @numba.njit(parallel=True, cache=True)
    def _sparse_products(rows, cols, delta, x_rows, w_mat, grad_w, u, need_x):   # pragma: no cover (compiled)
        """grad_w[o, :] += delta x_rows[r, :] and u[r, :] += delta w_mat[o, :]
        for every entry (r, o, delta); threads split the columns, so no two
        write the same place."""
        width = x_rows.shape[1]
        blocks = (width + 63) // 64
        for blk in numba.prange(blocks):
            lo = blk * 64
            hi = min(lo + 64, width)
            for e in range(delta.shape[0]):
                r = rows[e]
                o = cols[e]
                d = delta[e]
                for i in range(lo, hi):
                    grad_w[o, i] += d * x_rows[r, i]
                if need_x:
                    for i in range(lo, hi):
                        u[r, i] += d * w_mat[o, i]
