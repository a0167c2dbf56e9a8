"""Band-limited sample-rate conversion in NumPy: rational polyphase filtering with a Kaiser-windowed sinc.

The rate change ``target_sr / orig_sr`` is reduced to ``up / down`` (divide both by their gcd). Output sample
``n`` sits at input time ``t = n * down / up``; its value is a weighted sum of the ``2 * half`` input samples
around ``t``, with weights from one low-pass prototype filter evaluated at ``t - k``. Only ``up`` distinct
fractional offsets ``t mod 1`` occur, so the weights form a small ``(up, 2 * half)`` table ("polyphase"), and
all outputs that share a phase are one strided dot product (``einsum`` over a sliding-window view, no copies).

The prototype is ``2 fc sinc(2 fc t)`` times a Kaiser window, with the cutoff ``fc`` at ``ROLLOFF`` of the lower
of the two Nyquist frequencies, so downsampling removes what would alias and upsampling removes the images.
Each phase's taps are normalised to sum to 1 (exact unit gain at DC). Samples outside the signal count as
zero, so the first and last ``half`` output samples carry the filter's edge transient (as in scipy's
``resample_poly`` and soxr).

Work per call is bounded before any memory is taken: more than ``MAX_OUTPUT_SAMPLES`` output samples per channel,
or a filter wider than ``MAX_FILTER_TAPS`` taps, is a ``ValueError`` saying what was asked (a corrupt 1 Hz header
once made one call ask for 23.8 GiB). Resample a longer recording in pieces (``kwslab.audio.WavReader``).
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from functools import lru_cache
from math import gcd

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ZERO_CROSSINGS = 32  # sinc zero crossings kept on each side of the centre tap
ROLLOFF = 0.94  # cutoff as a fraction of the lower Nyquist frequency
KAISER_BETA = 10.0  # window shape: about 100 dB stop-band attenuation with 32 zero crossings

MAX_OUTPUT_SAMPLES = 1 << 28  # per channel and call (4.7 h at 16 kHz, 2 GiB of float64 work space)
MAX_FILTER_TAPS = 1 << 16  # 2 * half: only a down/up ratio over ~1000 needs more
_TABLE_MAX_PHASES = 4096  # larger `up` (awkward rate pairs): taps are computed per chunk, not cached
_CHUNK_ELEMENTS = 1 << 21  # gathered samples per chunk in the per-output path (about 16 MB of float64)


def _check_rate(value: object, name: str) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value <= 0 or value != int(value)):
        raise ValueError(f"resample: {name} must be a positive whole number of Hz, got {value!r}")
    return int(value)


def _half_width(up: int, down: int) -> tuple[float, int]:
    """Cutoff in cycles per input sample and the number of taps on each side of the centre."""
    cutoff = 0.5 * ROLLOFF * min(1.0, up / down)
    return cutoff, int(np.ceil(ZERO_CROSSINGS / (2.0 * cutoff)))


def _taps(phases: np.ndarray, up: int, down: int) -> np.ndarray:
    """Filter taps for the given output phases: float64 ``(len(phases), 2 * half)``.

    Row ``r`` weights input samples ``b - half + 1 .. b + half`` for an output at input time ``b + phases[r] / up``.
    """
    cutoff, half = _half_width(up, down)
    offsets = np.arange(-half + 1, half + 1, dtype=np.float64)  # k - b
    t = phases[:, None].astype(np.float64) / up - offsets[None, :]  # output time minus input time
    u = np.clip(t / half, -1.0, 1.0)
    window = np.i0(KAISER_BETA * np.sqrt(1.0 - u * u)) / np.i0(KAISER_BETA)
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * t) * window
    return h / h.sum(axis=1, keepdims=True)


@lru_cache(maxsize=16)
def _table(up: int, down: int) -> np.ndarray:
    """The full polyphase table ``(up, 2 * half)``, cached per rate pair (read-only)."""
    table = _taps(np.arange(up), up, down)
    table.setflags(write=False)
    return table


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Change the sample rate of a signal with an anti-aliasing (band-limited) filter.

    Args:
        x: Samples, shape ``(n,)`` or ``(n, channels)`` (time on axis 0); any real dtype.
        orig_sr: Sample rate of ``x`` in Hz (positive integer).
        target_sr: Wanted sample rate in Hz (positive integer).

    Returns:
        float32 array of shape ``(round(n * target_sr / orig_sr),)`` or ``(..., channels)``. Equal rates give a
        float32 copy. Content above ``ROLLOFF`` times the lower Nyquist frequency is removed (stop band about
        100 dB down); the pass band is flat to within 0.01 dB up to about 85% of the lower Nyquist frequency.

    Raises:
        ValueError: A rate that is not a positive whole number, ``x`` with 0 or more than 2 dimensions, a
            non-real dtype, NaN/Inf samples, or work over the bounds (``MAX_OUTPUT_SAMPLES`` output samples,
            ``MAX_FILTER_TAPS`` filter taps).
    """
    orig_sr, target_sr = _check_rate(orig_sr, "orig_sr"), _check_rate(target_sr, "target_sr")
    x = np.asarray(x)
    if x.ndim not in (1, 2) or not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
        raise ValueError(f"resample: x must be a real array of shape (n,) or (n, channels), got {x.dtype} {x.shape}")
    g = gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    n = x.shape[0]
    n_out = round(Fraction(n * up, down))
    if up != down:  # bounded before any work space is taken
        if n_out > MAX_OUTPUT_SAMPLES:
            raise ValueError(f"resample: {n} samples from {orig_sr} Hz to {target_sr} Hz would give {n_out} samples, "
                             f"over the limit of {MAX_OUTPUT_SAMPLES} per call; check the sample rate (a corrupt "
                             "header?) or resample the audio in pieces")
        taps = 2 * _half_width(up, down)[1]
        if taps > MAX_FILTER_TAPS:
            raise ValueError(f"resample: {orig_sr} Hz to {target_sr} Hz needs a {taps}-tap filter, over the limit of "
                             f"{MAX_FILTER_TAPS}; resample in steps (e.g. to {max(target_sr, orig_sr // 64)} Hz "
                             "first)")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise ValueError("resample: x contains NaN or Inf samples")
    if up == down:
        return x.astype(np.float32)
    if n_out == 0 or x.size == 0:
        return np.zeros((n_out,) + x.shape[1:], dtype=np.float32)

    if x.ndim == 2:  # channels one at a time: each is a contiguous 1-D problem (fastest strided dot products)
        return np.stack([_resample_1d(x[:, c], up, down, n_out) for c in range(x.shape[1])], axis=1)
    return _resample_1d(x, up, down, n_out)


def _resample_1d(x: np.ndarray, up: int, down: int, n_out: int) -> np.ndarray:
    """Polyphase resampling of one float64 channel ``(n,)`` to ``(n_out,)`` float32."""
    n = x.shape[0]
    _, half = _half_width(up, down)
    width = 2 * half
    last_start = ((n_out - 1) * down) // up  # window start (padded coordinates) of the last output
    xp = np.pad(x, (half - 1, max(0, last_start + width - (n + half - 1))))  # xp[i] is x[i - (half - 1)]
    y = np.empty(n_out, dtype=np.float64)

    if up <= _TABLE_MAX_PHASES and n_out >= 64 * up:
        # Few phases, many outputs each: one strided dot product per phase.
        table = _table(up, down)
        windows = sliding_window_view(xp, width)  # (len(xp) - width + 1, width), a view
        for r in range(up):
            start, phase = divmod(r * down, up)
            count = len(range(r, n_out, up))
            y[r::up] = np.einsum("ij,j->i", windows[start : start + down * count : down], table[phase])
    else:
        # Many phases (awkward rate pair or short input): gather each output's window, in chunks.
        table = _table(up, down) if up <= _TABLE_MAX_PHASES else None
        chunk = max(1, _CHUNK_ELEMENTS // width)
        offsets = np.arange(width)
        for c0 in range(0, n_out, chunk):
            idx = np.arange(c0, min(n_out, c0 + chunk), dtype=np.int64) * down
            starts, phases = np.divmod(idx, up)
            taps = table[phases] if table is not None else _taps(phases, up, down)
            gathered = xp[starts[:, None] + offsets[None, :]]  # (chunk, width)
            y[c0 : c0 + len(idx)] = np.einsum("cj,cj->c", gathered, taps)
    return y.astype(np.float32)
