"""Whole-waveform helpers for making training audio: power and RMS, mixing at an SNR, coloured noise, silence
trimming. NumPy only; shared by the augmentations, the corpus preparers and the TTS corpus builder.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

from kwslab.dsp.features import block_power

__all__ = ["NOISE_COLORS", "power", "rms", "mix_at_snr", "colored_noise", "trim_silence"]

# Power spectral density slope: PSD ~ 1 / f**exponent.
NOISE_COLORS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def power(x: np.ndarray) -> float:
    """Mean square of an array, accumulated in float64 (0.0 for an empty one)."""
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def rms(x: np.ndarray) -> float:
    """Root-mean-square of an array (0.0 for an empty one)."""
    return math.sqrt(power(x))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float, signal_power: float | None = None) -> np.ndarray:
    """Return ``signal + g * noise`` with ``g`` chosen so that the SNR is exactly ``snr_db``.

    Args:
        signal: (n,) float array.
        noise: (n,) float array (same shape).
        snr_db: Signal-to-noise ratio in dB: ``power(signal) / power(g * noise)``.
        signal_power: Mean power to use for the signal (e.g. measured over speech only); default: all of it.

    Returns:
        (n,) float32. When either power is zero the SNR is undefined: a float32 copy of ``signal``.
    """
    if noise.shape != signal.shape:
        raise ValueError(f"noise shape {noise.shape} != signal shape {signal.shape}")
    p_sig = power(signal) if signal_power is None else signal_power
    p_noise = power(noise)
    if p_noise <= 0 or p_sig <= 0:
        return signal.astype(np.float32)
    gain = math.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))  # a Python float: float32 noise stays float32
    return (signal + gain * noise).astype(np.float32)


def colored_noise(n: int, color: str, rng: np.random.Generator, *, keep_dc: bool = False,
                  dtype: DTypeLike = np.float32) -> np.ndarray:
    """Gaussian noise with a ``1/f**a`` power spectrum (white a=0, pink a=1, brown a=2), unit RMS.

    Shaped in the frequency domain: white noise's rFFT is scaled by ``f**(-a/2)``.

    Args:
        n: Number of samples (>= 1).
        color: ``"white"``, ``"pink"`` or ``"brown"``.
        rng: Source of randomness.
        keep_dc: False (default): the DC bin is zeroed, so the noise has zero mean (white noise simply has its
            mean removed). True: the DC bin is kept, weighted like the lowest frequency, so the noise carries a
            random offset (on average about 20% of brown noise's power, 5% of pink's). Only the espeak keyword
            corpus's ``_silence_`` clips use True (:func:`kwslab.tts.corpus.write_silence_clips`), which keeps
            that corpus, and the results measured on it, as they were.
        dtype: Output dtype (the arithmetic is float64).

    Returns:
        Array of shape (n,) with RMS 1.
    """
    if color not in NOISE_COLORS:
        raise ValueError(f"noise color must be one of {sorted(NOISE_COLORS)}, got {color!r}")
    if n < 1:
        raise ValueError(f"noise length must be >= 1, got {n}")
    white = rng.standard_normal(n)
    a = NOISE_COLORS[color]
    if not keep_dc and (a == 0.0 or n < 4):
        x = white - white.mean()
    else:
        spec = np.fft.rfft(white)
        if keep_dc:  # bin k scaled by max(k, 1)**(-a/2): DC weighted like bin 1
            spec /= np.maximum(np.arange(len(spec)), 1.0) ** (a / 2.0)
        else:
            f = np.fft.rfftfreq(n)
            scale = np.zeros_like(f)
            scale[1:] = f[1:] ** (-a / 2.0)
            spec = spec * scale
        x = np.fft.irfft(spec, n)
    r = float(np.sqrt(np.mean(x**2)))
    return (x / r if r > 0 else x).astype(dtype)


def trim_silence(x: np.ndarray, sample_rate: int, top_db: float = 40.0, *, pad: float,
                 frame_ms: float = 10.0, floor_db: float | None = None) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``top_db`` below the loudest frame.

    Real recordings often carry room noise within ``top_db`` of the word's peak, so nothing would be cut:
    ``floor_db`` also counts as silence every frame less than that many dB above the recording's noise floor
    (the 10th percentile of its frame powers).

    Args:
        x: (n,) float samples.
        sample_rate: Rate of ``x`` in Hz.
        top_db: Frames whose power is more than this many dB below the loudest frame's count as silence.
        pad: Seconds of the original signal kept on each side of the loud part (no default: the TTS builder keeps
            0.02, the sequence and stream composers 0.005).
        frame_ms: Frame length for the loudness decision (default 10 ms, non-overlapping).
        floor_db: See above; None (default): only ``top_db`` decides. The loudest frame is always kept.

    Returns:
        A view of ``x`` (``x`` itself when it is all silence or shorter than one frame).
    """
    frame = max(1, int(round(frame_ms * sample_rate / 1000.0)))
    energy = block_power(x, frame)
    if energy.size == 0:
        return x
    peak = float(energy.max())
    if peak <= 0.0:
        return x
    threshold = peak * 10.0 ** (-top_db / 10.0)
    if floor_db is not None:
        threshold = min(peak, max(threshold, float(np.percentile(energy, 10)) * 10.0 ** (floor_db / 10.0)))
    loud = np.flatnonzero(energy >= threshold)
    keep = int(round(pad * sample_rate))
    start = max(0, int(loud[0]) * frame - keep)
    end = min(len(x), (int(loud[-1]) + 1) * frame + keep)
    return x[start:end]
