"""Coloured noise and simple mixing helpers for synthetic silence clips and noisy sequences."""

from __future__ import annotations

import numpy as np

__all__ = ["NOISE_COLORS", "colored_noise", "rms", "mix_at_snr"]

# Power spectral density slope: PSD ~ 1 / f**exponent.
NOISE_COLORS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a ``1/f**a`` power spectrum (white a=0, pink a=1, brown a=2), unit RMS.

    Shaped in the frequency domain: white noise's rFFT is scaled by ``f**(-a/2)`` (DC set to 0).

    Args:
        n: Number of samples (>= 1).
        color: ``"white"``, ``"pink"`` or ``"brown"``.
        rng: Source of randomness.

    Returns:
        float32 array of shape (n,) with RMS 1 (zero mean).
    """
    if color not in NOISE_COLORS:
        raise ValueError(f"noise color must be one of {sorted(NOISE_COLORS)}, got {color!r}")
    if n < 1:
        raise ValueError(f"noise length must be >= 1, got {n}")
    white = rng.standard_normal(n)
    a = NOISE_COLORS[color]
    if a == 0.0 or n < 4:
        x = white - white.mean()
    else:
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        scale = np.zeros_like(f)
        scale[1:] = f[1:] ** (-a / 2.0)
        x = np.fft.irfft(spec * scale, n)
    r = float(np.sqrt(np.mean(x**2)))
    return (x / r if r > 0 else x).astype(np.float32)


def rms(x: np.ndarray) -> float:
    """Root-mean-square of an array (0.0 for an empty one)."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float, signal_power: float | None = None) -> np.ndarray:
    """Return ``signal + g * noise`` with ``g`` chosen so that the SNR is ``snr_db``.

    Args:
        signal: (n,) float array.
        noise: (n,) float array (same length).
        snr_db: Signal-to-noise ratio in dB.
        signal_power: Mean power to use for the signal (e.g. measured over speech only); default: all of it.
    """
    if noise.shape != signal.shape:
        raise ValueError(f"noise shape {noise.shape} != signal shape {signal.shape}")
    p_sig = float(np.mean(np.square(signal, dtype=np.float64))) if signal_power is None else signal_power
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_noise <= 0 or p_sig <= 0:
        return signal.astype(np.float32)
    g = np.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (signal + g * noise).astype(np.float32)
