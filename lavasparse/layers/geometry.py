"""Where a convolution's kernel taps land: which input row (column) each tap
of each output row (column) reads. Training's differentiable cost and the
profiler's fan-out both count synapses from this one rule."""
from __future__ import annotations

import functools

import numpy as np


def conv_out_size(size_in: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (positions)."""
    return (size_in + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def tap_reach(size_in: int, size_out: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> np.ndarray:
    """(kernel, size_in) int64 along one axis: 1 where kernel tap k of some
    output position o reads input position i = o*stride + k*dilation - padding.
    At most one o does so for a given (k, i), so a synapse (weight at tap k)
    leaves input i once per output it reaches; padding is never an input."""
    reach = np.zeros((kernel, size_in), np.int64)
    outs = np.arange(size_out)
    for k in range(kernel):
        i = outs * stride + k * dilation - padding
        reach[k, i[(i >= 0) & (i < size_in)]] = 1
    return reach


def group_tap_counts(mask, groups: int):
    """Per input channel and kernel tap, the synapses that leave it: from a
    (out, in / groups, kh, kw) kernel of synapse counts (0/1, or a soft gate
    in torch), the sum over the output channels of the input's group, shaped
    (in, kh, kw). Works on numpy arrays and torch tensors alike."""
    out, per_group, kh, kw = mask.shape
    return mask.reshape(groups, out // groups, per_group, kh, kw).sum(1).reshape(groups * per_group, kh, kw)


def conv_fanout(mask: np.ndarray, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """Synapses leaving each input neuron of a conv, shaped ``in_shape`` (C, H,
    W), from a (out, in / groups, kh, kw) array that is non-zero where a
    synapse exists; int64."""
    counts = group_tap_counts((np.asarray(mask) != 0).astype(np.int64), groups)
    rows, cols = conv_reach(in_shape, out_shape, counts.shape[1:], stride, padding, dilation)
    return np.einsum("cab,ay,bx->cyx", counts, rows, cols)


def soft_conv_fanout(kernel, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                     stride, padding, dilation=(1, 1), groups: int = 1):
    """``conv_fanout`` on a torch tensor of any real values (a differentiable
    count, for training's cost term): synapses leaving each input pixel,
    shaped ``in_shape`` (C, H, W), from a (out, in / groups, kh, kw) kernel."""
    # torch only for this training-time count: reading and checking a file need none.
    import torch
    counts = group_tap_counts(kernel, groups)
    rows, cols = _reach_tensors(tuple(in_shape), tuple(out_shape), tuple(counts.shape[1:]), tuple(stride),
                                tuple(padding), tuple(dilation), kernel.dtype, kernel.device)
    return torch.einsum("cab,ay,bx->cyx", counts, rows, cols)


@functools.lru_cache(maxsize=256)
def _reach_tensors(in_shape, out_shape, kernel_hw, stride, padding, dilation, dtype, device):
    """``conv_reach`` as tensors on the training device, made once per layer
    (the cost term asks for them every batch)."""
    import torch   # as in soft_conv_fanout
    return tuple(torch.as_tensor(r, dtype=dtype, device=device)
                 for r in conv_reach(in_shape, out_shape, kernel_hw, stride, padding, dilation))


def conv_reach(in_shape, out_shape, kernel_hw, stride, padding, dilation):
    """(rows (kh, H), cols (kw, W)): ``tap_reach`` along each spatial axis."""
    return tuple(tap_reach(in_shape[1 + a], out_shape[1 + a], kernel_hw[a], stride[a], padding[a], dilation[a])
                 for a in (0, 1))
