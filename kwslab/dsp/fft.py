"""Teaching transforms: the discrete Fourier transform written out, and the recursive radix-2 FFT.

Neither is used by the feature pipeline (that calls ``numpy.fft.rfft``); they are here to be read, tested against
``numpy.fft.fft`` and timed by ``scripts/bench_fft.py``, which shows the O(N^2) vs O(N log N) difference.

The DFT of ``x`` (length N) is ``X[k] = sum_n x[n] * exp(-2j*pi*k*n/N)`` for ``k = 0..N-1``.
"""
from __future__ import annotations

import numpy as np


def next_power_of_two(n: int) -> int:
    """The smallest power of two >= ``n`` (1 for n <= 1)."""
    if n <= 1:
        return 1
    return 1 << (int(n) - 1).bit_length()


def _as_signal(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a 1-D complex128 array, or a ValueError naming the function."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D signal, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: the signal is empty")
    if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    return arr.astype(np.complex128)


def dft(x: np.ndarray) -> np.ndarray:
    """Discrete Fourier transform by the definition: O(N^2) work, O(N) memory.

    One output bin at a time: ``X[k]`` is the dot product of ``x`` with the complex sinusoid of frequency
    ``k/N`` cycles per sample. The angle uses ``(k*n) mod N`` so it stays accurate for large N.

    Args:
        x: 1-D real or complex signal, any length N (no padding).

    Returns:
        complex128 array (N,), equal to ``numpy.fft.fft(x)`` up to rounding.
    """
    x = _as_signal(x, "dft")
    n_points = x.shape[0]
    n = np.arange(n_points)
    out = np.empty(n_points, dtype=np.complex128)
    for k in range(n_points):
        angle = (-2.0 * np.pi / n_points) * ((k * n) % n_points)  # (N,)
        out[k] = np.dot(x, np.exp(1j * angle))
    return out


def _fft_pow2(x: np.ndarray) -> np.ndarray:
    """Radix-2 decimation in time on a power-of-two length complex array."""
    n_points = x.shape[0]
    if n_points == 1:
        return x.copy()
    even = _fft_pow2(x[0::2])  # DFT of the even-indexed samples, (N/2,)
    odd = _fft_pow2(x[1::2])  # DFT of the odd-indexed samples, (N/2,)
    twiddled = np.exp(-2j * np.pi * np.arange(n_points // 2) / n_points) * odd
    # The butterfly: X[k] = E[k] + W^k O[k] and X[k + N/2] = E[k] - W^k O[k].
    return np.concatenate([even + twiddled, even - twiddled])


def fft_recursive(x: np.ndarray) -> np.ndarray:
    """Recursive radix-2 Cooley-Tukey FFT: O(N log N).

    A signal whose length is not a power of two is zero-padded at the end to the next power of two, so the
    result equals ``numpy.fft.fft(x, n=next_power_of_two(len(x)))``.

    Args:
        x: 1-D real or complex signal of length N >= 1.

    Returns:
        complex128 array (next_power_of_two(N),).
    """
    x = _as_signal(x, "fft_recursive")
    size = next_power_of_two(x.shape[0])
    if size != x.shape[0]:
        x = np.concatenate([x, np.zeros(size - x.shape[0], dtype=np.complex128)])
    return _fft_pow2(x)
