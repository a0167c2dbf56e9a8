"""Teaching transforms against numpy.fft."""
from __future__ import annotations

import numpy as np
import pytest

from kwslab.dsp.fft import dft, fft_recursive, next_power_of_two


@pytest.mark.parametrize("n", [1, 2, 4, 8, 64, 256, 1024])
def test_power_of_two_lengths_equal_numpy(n: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal(n)
    z = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    scale = np.sqrt(n)  # rounding grows like sqrt(N); values have magnitude about sqrt(N)
    for signal in (x, z):
        ref = np.fft.fft(signal)
        assert fft_recursive(signal).dtype == np.complex128
        np.testing.assert_allclose(fft_recursive(signal), ref, rtol=0, atol=1e-12 * scale * max(1, np.log2(n)))
        np.testing.assert_allclose(dft(signal), ref, rtol=0, atol=1e-11 * scale)


@pytest.mark.parametrize("n", [3, 5, 100, 257])
def test_other_lengths(n: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal(n)
    # The DFT takes any length as it is ...
    np.testing.assert_allclose(dft(x), np.fft.fft(x), rtol=0, atol=1e-10)
    # ... the radix-2 FFT zero-pads to the next power of two.
    out = fft_recursive(x)
    assert out.shape == (next_power_of_two(n),)
    np.testing.assert_allclose(out, np.fft.fft(x, n=next_power_of_two(n)), rtol=0, atol=1e-10)


def test_known_transform() -> None:
    # A cosine at bin 1 of 8 puts N/2 in bins 1 and N-1 and nothing elsewhere.
    x = np.cos(2 * np.pi * np.arange(8) / 8)
    expected = np.array([0, 4, 0, 0, 0, 0, 0, 4], dtype=complex)
    np.testing.assert_allclose(fft_recursive(x), expected, atol=1e-12)
    np.testing.assert_allclose(dft(x), expected, atol=1e-12)


def test_next_power_of_two() -> None:
    assert [next_power_of_two(n) for n in (0, 1, 2, 3, 5, 64, 65)] == [1, 1, 2, 4, 8, 64, 128]


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.zeros(0), np.array(["a", "b"])])
def test_bad_input_raises(bad: np.ndarray) -> None:
    for fn in (dft, fft_recursive):
        with pytest.raises(ValueError, match=fn.__name__):
            fn(bad)
