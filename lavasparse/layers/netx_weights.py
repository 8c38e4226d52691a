"""How netx and Lava turn a file's integer weights into the chip's weights:
netx's ``optimize_weight_bits`` at load (an 8-bit mantissa and a shared
exponent per dense layer), then Lava's Dense clipping and truncation on its
first step. Mirrored in numpy so that checks and the emulator need no Lava
import; ``tests/test_emulator.py`` compares both with netx's and Lava's own
functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def netx_needs_clipping(weight: np.ndarray) -> int:
    """How many weights netx's ``optimize_weight_bits`` clips: mixed-sign
    weights must fit -256..254 (one sign takes any range through the exponent)."""
    w = np.asarray(weight).astype(np.int64)
    max_w, min_w = int(w.max()), int(w.min())
    if (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0):
        return int(((w > 254) | (w < -256)).sum())
    return 0


def netx_optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """netx 0.6.0's ``optimize_weight_bits``, mirrored in numpy (tested against
    it): (scaled weights, num_weight_bits, exponent, sign mode). Raises
    ValueError for an all-zero matrix (netx divides by zero there)."""
    weight = np.asarray(weight).astype(np.int64)
    max_w, min_w = int(weight.max()), int(weight.min())
    if max_w == 0 and min_w == 0:
        raise ValueError("an all-zero dense weight matrix (netx's optimize_weight_bits divides by zero)")
    if (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0):
        weight = np.clip(weight, -256, 254)
        max_w, min_w = int(weight.max()), int(weight.min())
    if max_w < 0:
        is_signed, scale = 0, -256 / min_w
    elif min_w >= 0:
        is_signed, scale = 0, 255 / max_w
    else:
        # netx divides in numpy: 127 / 0 is inf there, so a zero maximum leaves the negative scale.
        pos = 127 / max_w if max_w > 0 else float("inf")
        is_signed, scale = 1, min(pos, -128 / min_w)
    scale_bits = int(np.floor(np.log2(scale))) + is_signed
    n = 8
    while n > 0 and np.sum(np.abs(weight / 2 ** n - np.round(weight / 2 ** n))) != 0:
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    w = (weight.astype(np.int32) << scale_bits) if scale_bits >= 0 else (weight.astype(np.int32) >> -scale_bits)
    sign = "inhibitory" if max_w < 0 else ("excitatory" if min_w >= 0 else "mixed")
    return w.astype(np.int64), num_weight_bits, -scale_bits, sign


def netx_scaled(weight: np.ndarray, weight_rec: np.ndarray | None = None) -> tuple[np.ndarray, int, int, str]:
    """netx's ``optimize_weight_bits`` at load for a dense layer: (scaled
    weights (out, in [+ out]), bits, exponent, sign mode). A recurrent
    layer's two matrices are optimised side by side, as netx does; an
    all-zero layer keeps its zeros (netx would divide by zero)."""
    both = np.hstack([np.asarray(m).astype(np.int64, copy=False) for m in (weight, weight_rec) if m is not None])
    if not both.any():
        return both, 0, 0, "excitatory"
    scaled, bits, exponent, sign = netx_optimize_weight_bits(both)
    return scaled, int(bits), int(exponent), sign


def lava_dense_weights(weight: np.ndarray, weight_rec: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The weights Lava's fixed-point Dense applies for a netx dense layer
    (input, recurrent or None) and their exponent: netx's scaling at load
    (``netx_scaled``), then Lava's ``clip_weights``/``truncate_weights``."""
    scaled, bits, exponent, _ = netx_scaled(weight, weight_rec)
    return (*lava_weights(scaled, bits, np.asarray(weight).shape[1]), exponent)


def lava_weights(scaled: np.ndarray, bits: int, n_in: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Lava's Dense weights from netx's scaled ones (``netx_optimize_weight_bits``
    of the input weights, with a recurrent layer's weights beside them from
    column ``n_in`` on): (input weights, recurrent weights or None), each
    clipped and truncated on its own, as each is its own Lava process."""
    w = lava_clip_truncate(scaled[:, :n_in], bits)
    return w, (lava_clip_truncate(scaled[:, n_in:], bits) if scaled.shape[1] > n_in else None)


def lava_clip_truncate(w: np.ndarray, num_weight_bits: int) -> np.ndarray:
    """Lava's Dense on its first step: ``determine_sign_mode``, ``clip_weights``
    to 8 bits, ``truncate_weights`` to ``num_weight_bits``."""
    if w.min() >= 0:
        lava_sign = "exc"
    elif w.max() <= 0:
        lava_sign = "inh"
    else:
        lava_sign = "mixed"
    mixed = int(lava_sign == "mixed")
    if lava_sign == "inh":
        w = -w
    w = np.clip(w, -(2 ** 8) * mixed, 2 ** 8 - 1)
    trunc = 8 - num_weight_bits + mixed
    w = (w >> trunc) << trunc
    if lava_sign == "inh":
        w = -w
    return w.astype(np.int64)


@dataclass
class WeightFormat:
    """How a layer's weights land in Loihi's synapse memory (netx 0.6.0's mapping)."""

    weight_bits: int
    weight_exponent: int
    sign_mode: str

    @classmethod
    def of_raw_integers(cls, w: np.ndarray) -> "WeightFormat":
        """Weights netx passes to Lava unscaled (a conv's): exponent 0, the bits of the raw integers."""
        w = np.asarray(w).astype(np.int64)
        signed = bool((w < 0).any())
        bits = max(1, int(np.abs(w).max(initial=0)).bit_length()) + int(signed)
        return cls(bits, 0, "mixed" if signed and (w > 0).any() else ("inhibitory" if signed else "excitatory"))
