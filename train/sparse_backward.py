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
binary spikes) and, per active entry, its position and surrogate value (8
bytes); SLAYER's autograd keeps the current and voltage of every neuron and
step (8 bytes each), so the saving holds while under about 100% are active
(``benchmarks/training_throughput.py`` measures it).

The forward is SLAYER's: the block's synapse op (``F.conv3d`` with the
synapse's arguments on the hooked weight; event-driven for a dense layer on
the CPU, ``event_synapse``, the same values), its integrators (compiled on
the CPU, ``cuba_cpu``), and its spike test, so the spikes are identical.

On the CPU the products and filters are numba kernels (torch's sparse
matrix products are slower than its dense ones there at these sizes); on a
GPU, or without numba, torch's sparse products and a Toeplitz matrix of
kappa.

A block qualifies where its neuron is a plain CUBA neuron (binary spikes,
one decay per layer, decays not learnt, no norm, no persistent state) and
its synapse a square kernel without dilation or groups; any other block, a
block with forward hooks (``SpikingNet`` checks at each pass) and any block
with gradients off runs SLAYER's own forward and backward.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lavasparse.layers.quantised import forward_weight
from lavasparse.train.cuba_cpu import match_numba_threads, neuron_block, neuron_blocks, neuron_voltage, numba
from lavasparse.train.event_synapse import event_dense_values, event_path_applies

_DECAY_ONE = 1 << 12   # SLAYER's decays are integers out of 4096
_CHUNK_ENTRIES = 1 << 24   # im2col entries per chunk of the products (64 MiB in float32)
_BLOCK = 64   # columns per thread's block in the compiled products


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
        square = syn.kernel_size[0] == syn.kernel_size[1] and syn.stride[0] == syn.stride[1] \
            and syn.padding[0] == syn.padding[1]
        conv_args = square and tuple(syn.dilation) == (1, 1, 1) and syn.groups == 1 \
            and getattr(syn, "bias", None) is None
        return (conv_args and not n.graded_spike and n.norm is None and not n.persistent_state and n.drop is None
                and not n.requires_grad and n.shared_param is not False and n.current_decay.numel() == 1
                and n.voltage_decay.numel() == 1 and not syn.weight_norm_enabled)

    def spikes(self, x: torch.Tensor) -> torch.Tensor:
        """The block's spikes for input ``x`` (N, C, T) or (N, C, H, W, T),
        with the sparse backward."""
        syn = self.block.synapse
        return _SparseCubaFunction.apply(x, forward_weight(syn), self)

    # ---- the pieces the autograd function uses ----------------------------------------------

    @property
    def threshold(self) -> float:
        n = self.block.neuron
        return float(n.threshold + n.threshold_eps)

    def surrogate(self, distance: torch.Tensor) -> torch.Tensor:
        """SLAYER's rho at |v - theta| = ``distance`` (binary spikes), with
        its constants in Python floats, so that they take ``distance``'s dtype
        (the float64 tests match SLAYER's float64 network; the compiled
        kernels' ``cuba_cpu._Constants`` are float32 only)."""
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
        syn = self.block.synapse   # square (``applies``)
        return syn.kernel_size[0], syn.stride[0], syn.padding[0]


def gradient_cosine(net, loss_of) -> list[float | None]:
    """Per spiking layer of ``net`` (a train.model.SpikingNet), the cosine
    between its weight gradient under the sparse backward and under SLAYER's
    on the same batch (``loss_of()`` builds the batch's loss); None for a
    layer without the sparse backward. Gradients are left cleared, and the
    active fractions these passes recorded are dropped."""
    grads = {}
    mode = net.backward_mode
    try:
        for net.backward_mode in ("dense", "sparse"):
            net.zero_grad()
            loss_of().backward()
            grads[net.backward_mode] = [None if sb is None or sb.block.synapse.weight.grad is None
                                        else sb.block.synapse.weight.grad.detach().flatten().double()
                                        for sb in net.sparse]
    finally:
        net.backward_mode = mode
        net.zero_grad()
        net.active_fractions()
    out = []
    for spec, dense, sparse in zip(net.specs, grads["dense"], grads["sparse"], strict=True):
        if not spec.spiking:
            continue
        if dense is None or sparse is None:
            out.append(None)
            continue
        norm = float(dense.norm() * sparse.norm())
        # no dense gradient: undefined; a dense one the band lost entirely: 0
        out.append(None if float(dense.norm()) == 0 else float(dense @ sparse) / norm if norm > 0 else 0.0)
    return out


class _SparseCubaFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, layer: SparseCuba):
        dense = x.dim() == 3
        x5 = x.reshape(x.shape[0], x.shape[1], 1, 1, x.shape[2]) if dense else x
        x8 = x5.to(torch.uint8)
        binary = bool((x8 == x5).all())
        with torch.no_grad():
            z = (event_dense_values(x, weight) if dense and binary and event_path_applies(layer.block.synapse, x, weight)
                 else None)   # SLAYER's values, event-driven
            z = layer.synapse_forward(x5, weight) if z is None else z.unsqueeze(2).unsqueeze(2)
            voltage = neuron_voltage(layer.block.neuron, z.reshape(z.shape[0], -1, z.shape[-1]) if dense else z)
        n, c_out, h_out, w_out, steps = z.shape
        theta = layer.threshold
        spikes = (voltage >= theta).to(x.dtype)
        distance = voltage.sub_(theta).abs_().reshape(-1)
        active = torch.nonzero(distance < layer.band * theta).squeeze(1)   # in (n, o, h, w, t) order
        rho = layer.surrogate(distance[active])
        # The products run over the entries by im2col row (n, t, h, w): sorted so once, here.
        rows, o = _row_and_channel(active, z.shape)
        order = torch.argsort(rows * c_out + o)
        layer.record.active += int(active.numel())
        layer.record.total += int(distance.numel())
        ctx.layer, ctx.dense, ctx.binary, ctx.x_dtype, ctx.z_shape = layer, dense, binary, x.dtype, tuple(z.shape)
        # Kept: the input (a byte per entry when binary), and per active entry its index (4 bytes where it
        # fits) and rho, where SLAYER's autograd keeps the current and the voltage of every neuron and step.
        index_type = torch.int32 if distance.numel() < 2**31 else torch.int64
        ctx.save_for_backward(x8 if binary else x5, weight, active[order].to(index_type), rho[order])
        return spikes.reshape(n, c_out, steps) if dense else spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        x5, weight, active, rho = ctx.saved_tensors
        layer: SparseCuba = ctx.layer
        dtype = grad_spikes.dtype
        x5 = x5.to(dtype)
        n, c_out, h_out, w_out, steps = ctx.z_shape
        active = active.to(torch.int64)
        rows, cols = _row_and_channel(active, ctx.z_shape)   # sorted by row (the forward's order)
        delta = grad_spikes.reshape(-1)[active] * rho.to(dtype)
        a, b = layer.decays()
        kernel, stride, padding = layer.im2col()
        need_x = ctx.needs_input_grad[0]
        c_in, h_in, w_in = x5.shape[1:4]
        w_mat = weight.reshape(c_out, -1).to(dtype)
        # x~: the inputs filtered forward by kappa, as (N * T) images (N, T, C, H, W)
        x_tilde = _kappa_filter(x5.reshape(n, -1, steps), a, b, reverse=False, time_first=True)
        x_tilde = x_tilde.reshape(n * steps, c_in, h_in, w_in)
        grad_w = torch.zeros_like(w_mat)
        images = x_tilde.shape[0]
        per_image = h_out * w_out * w_mat.shape[1]
        step = max(1, _CHUNK_ENTRIES // max(per_image, 1))
        grad_x = (torch.zeros_like(x_tilde) if step < images else None) if need_x else None
        bounds = torch.searchsorted(rows, torch.arange(0, images + step, step, device=rows.device) * (h_out * w_out))
        for k, i0 in enumerate(range(0, images, step)):
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            i1 = min(i0 + step, images)
            if lo == hi:
                continue
            cols_mat = _unfold(x_tilde[i0:i1], kernel, stride, padding)   # (images * L, C k k)
            u = _products(rows[lo:hi] - i0 * h_out * w_out, cols[lo:hi], delta[lo:hi], cols_mat, w_mat, grad_w,
                          need_x)
            if need_x:
                folded = _fold(u, i1 - i0, (c_in, h_in, w_in), (h_out, w_out), kernel, stride, padding)
                if grad_x is None:
                    grad_x = folded
                else:
                    grad_x[i0:i1] = folded
        if need_x:
            if grad_x is None:   # no active entry at all
                grad_x = torch.zeros_like(x_tilde)
            grad_x = _kappa_filter(grad_x.reshape(n, steps, -1), a, b, reverse=True, time_first=False)
            grad_x = grad_x.reshape(n, c_in, steps) if ctx.dense else grad_x.reshape(n, c_in, h_in, w_in, steps)
        return grad_x, grad_w.reshape(weight.shape).to(weight.dtype), None


def _row_and_channel(active: torch.Tensor, z_shape) -> tuple[torch.Tensor, torch.Tensor]:
    """For flat indices into z (N, C, H, W, T): each entry's im2col row
    ((n T + t) H W + h W + w) and output channel."""
    _, c_out, h_out, w_out, steps = z_shape
    t = active % steps
    rest = active // steps
    pix = rest % (h_out * w_out)
    rest = rest // (h_out * w_out)
    return ((rest // c_out) * steps + t) * (h_out * w_out) + pix, rest % c_out


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


def _kappa_filter(x: torch.Tensor, a: float, b: float, reverse: bool, time_first: bool) -> torch.Tensor:
    """x filtered along time by kappa: forwards (sum over k <= t) or
    backwards (sum over t' >= t), i.e. the current's and the voltage's
    filters one after the other. ``time_first``: x is (N, P, T) and the
    result (N, T, P); else x is (N, T, P) and the result (N, P, T)."""
    if numba is not None and x.device.type == "cpu":
        match_numba_threads()
        src = x.contiguous()
        out = torch.empty((src.shape[0], src.shape[2], src.shape[1]), dtype=x.dtype)
        _two_filters(src.numpy(), a, b, reverse, time_first, out.numpy())
        return out
    steps = x.shape[2] if time_first else x.shape[1]
    kappa = _kappa(a, b, steps, x.dtype, x.device)
    idx = torch.arange(steps, device=x.device)
    lag = idx[:, None] - idx[None, :]   # t - k
    toeplitz = torch.where(lag >= 0, kappa[lag.clamp(min=0)], torch.zeros((), dtype=x.dtype, device=x.device))
    series = x if time_first else x.transpose(1, 2)   # (N, P, T)
    out = series @ toeplitz if reverse else series @ toeplitz.T
    return out.transpose(1, 2).contiguous() if time_first else out


if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _two_filters(x, a, b, reverse, time_first, out):   # pragma: no cover (compiled)
        """out = x through y[t] = a y[t -/+ 1] + x[t], then the same with b,
        along time; x (N, P, T) and out (N, T, P) when ``time_first``, else
        the other way round. Threads take blocks of P (``neuron_blocks``)."""
        n_all = x.shape[0]
        p_all = x.shape[1] if time_first else x.shape[2]
        steps = x.shape[2] if time_first else x.shape[1]
        fa = x.dtype.type(a)
        fb = x.dtype.type(b)
        for job in numba.prange(neuron_blocks(n_all, p_all)):
            m, lo, hi = neuron_block(job, p_all)
            cur = np.zeros(hi - lo, x.dtype)
            volt = np.zeros(hi - lo, x.dtype)
            for i in range(steps):
                t = steps - 1 - i if reverse else i
                for p in range(lo, hi):
                    v = x[m, p, t] if time_first else x[m, t, p]
                    cur[p - lo] = fa * cur[p - lo] + v
                    volt[p - lo] = fb * volt[p - lo] + cur[p - lo]
                    if time_first:
                        out[m, t, p] = volt[p - lo]
                    else:
                        out[m, p, t] = volt[p - lo]

    @numba.njit(parallel=True, cache=True, fastmath=True)
    def _sparse_products(rows, cols, delta, x_rows, w_mat, grad_w, u, need_x):   # pragma: no cover (compiled)
        """grad_w[o, :] += delta x_rows[r, :] and u[r, :] += delta w_mat[o, :]
        for every entry (r, o, delta), entries sorted by r. Threads split the
        columns into blocks, so no two write the same place and a block's
        slices of grad_w and w_mat stay in cache; a row's slice of x_rows and
        of u stays in registers while its entries pass."""
        width = x_rows.shape[1]
        count = delta.shape[0]
        for blk in numba.prange((width + _BLOCK - 1) // _BLOCK):
            lo = blk * _BLOCK
            hi = min(lo + _BLOCK, width)
            n = hi - lo
            ur = np.zeros(_BLOCK, x_rows.dtype)
            e = 0
            while e < count:
                r = rows[e]
                xr = x_rows[r, lo:hi]
                ur[:] = 0
                while e < count and rows[e] == r:
                    o = cols[e]
                    d = delta[e]
                    g = grad_w[o, lo:hi]
                    for i in range(n):
                        g[i] += d * xr[i]
                    if need_x:
                        w = w_mat[o, lo:hi]
                        for i in range(n):
                            ur[i] += d * w[i]
                    e += 1
                if need_x:
                    u[r, lo:hi] = ur[:n]
