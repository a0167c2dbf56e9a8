"""kwslab.audio.resample: exact lengths, anti-aliasing, pass-band level, timing alignment against analytic
band-limited signals, the seed's linear interpolation as a counter-example, and speed."""

from __future__ import annotations

import importlib
import time
from fractions import Fraction

import numpy as np
import pytest

from kwslab.audio import resample

resample_impl = importlib.import_module("kwslab.audio.resample")  # the module (the package attribute is the function)
RATE_PAIRS = [(48000, 16000), (8000, 16000), (16000, 8000), (44100, 16000)]


def tone(freq: float, sr: int, seconds: float = 1.0, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(round(sr * seconds)) / sr + phase)


def level_db(y: np.ndarray, ref_rms: float, skip: int) -> float:
    """RMS of y away from its edges (skip samples each side), in dB relative to ref_rms."""
    core = y[skip:-skip].astype(np.float64)
    return 20 * np.log10(np.sqrt(np.mean(core**2)) / ref_rms)


def linear_interp_resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """The seed's approach: np.interp at the output times, no low-pass filter."""
    n_out = round(len(x) * target_sr / orig_sr)
    return np.interp(np.arange(n_out) * orig_sr / target_sr, np.arange(len(x)), x).astype(np.float32)


@pytest.mark.parametrize("orig,target", RATE_PAIRS + [(44100, 48000), (22050, 16000), (16000, 44100), (3, 7)])
def test_output_length_is_round_of_ratio(orig: int, target: int) -> None:
    for n in [0, 1, 2, 3, 5, 99, 100, 441, 1000, 4801]:
        y = resample(np.ones(n, np.float32), orig, target)
        assert y.shape == (round(n * target / orig),) == (round(Fraction(n * target, orig)),)
        assert y.dtype == np.float32


def test_ten_khz_tone_is_removed_going_48k_to_16k() -> None:
    x = tone(10000, 48000)  # would alias to 6 kHz at 16 kHz
    y = resample(x, 48000, 16000)
    assert level_db(y, np.sqrt(0.5), skip=200) < -60
    naive = linear_interp_resample(x, 48000, 16000)
    assert level_db(naive, np.sqrt(0.5), skip=200) > -3  # the seed's resampler lets the alias through


@pytest.mark.parametrize("orig,target", [(16000, 8000), (44100, 16000), (48000, 22050)])
def test_linear_interpolation_aliases_where_ours_does_not(orig: int, target: int) -> None:
    freq = 0.75 * target  # 1.5 times the target Nyquist: pure alias after downsampling
    x = tone(freq, orig, phase=0.3)
    ours = level_db(resample(x, orig, target), np.sqrt(0.5), skip=200)
    naive = level_db(linear_interp_resample(x, orig, target), np.sqrt(0.5), skip=200)
    assert ours < -60 and naive > -20, (ours, naive)


@pytest.mark.parametrize("orig,target", RATE_PAIRS)
def test_one_khz_tone_keeps_its_level(orig: int, target: int) -> None:
    y = resample(0.5 * tone(1000, orig), orig, target)
    assert abs(level_db(y, 0.5 * np.sqrt(0.5), skip=200)) < 0.1


@pytest.mark.parametrize("orig,target", [(48000, 16000), (44100, 16000), (16000, 8000)])
def test_documented_pass_and_stop_band(orig: int, target: int) -> None:
    """The docstring's promise: flat within 0.01 dB to 85% of Nyquist, at least 90 dB down from 1.05 x Nyquist."""
    nyquist = target / 2
    for frac in (0.25, 0.6, 0.85):
        assert abs(level_db(resample(tone(frac * nyquist, orig), orig, target), np.sqrt(0.5), 200)) < 0.01
    for frac in (1.05, 1.25, 1.5, 2.5):
        if frac * nyquist < orig / 2:
            assert level_db(resample(tone(frac * nyquist, orig), orig, target), np.sqrt(0.5), 200) < -90


@pytest.mark.parametrize("orig,target", RATE_PAIRS + [(44100, 48000), (48000, 44101), (16000, 16001)])
def test_matches_analytic_band_limited_signal(orig: int, target: int) -> None:
    """Output sample n must equal the continuous signal at time n / target (no delay, no gain error)."""
    rng = np.random.default_rng(orig + target)
    nyquist = min(orig, target) / 2
    freqs = rng.uniform(20, 0.8 * nyquist, size=6)
    amps, phases = rng.uniform(0.05, 0.15, size=6), rng.uniform(0, 2 * np.pi, size=6)

    def signal(n: int, sr: int) -> np.ndarray:
        t = np.arange(n)[:, None] / sr
        return (amps * np.sin(2 * np.pi * freqs * t + phases)).sum(axis=1)

    n = round(0.25 * orig)
    y = resample(signal(n, orig), orig, target)
    want = signal(len(y), target)
    skip = len(y) // 8  # away from the zero-padded edges
    assert np.abs(y[skip:-skip] - want[skip:-skip]).max() < 1e-4


def test_dc_gain_is_exactly_one_away_from_edges() -> None:
    for orig, target in RATE_PAIRS + [(44100, 48000)]:
        y = resample(np.full(orig // 4, 0.5), orig, target)
        skip = len(y) // 8
        np.testing.assert_allclose(y[skip:-skip], 0.5, atol=1e-6)


def test_multichannel_equals_each_channel() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4410, 3))
    y = resample(x, 44100, 16000)
    assert y.shape == (1600, 3)
    for c in range(3):
        np.testing.assert_array_equal(y[:, c], resample(x[:, c], 44100, 16000))


def test_polyphase_and_gather_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(4800)
    per_phase = resample(x, 48000, 32000)  # 3200 outputs >= 64 * 2 phases: strided per-phase path
    monkeypatch.setattr(resample_impl, "_TABLE_MAX_PHASES", 0)  # force the per-output path with taps on the fly
    gathered = resample(x, 48000, 32000)
    np.testing.assert_allclose(gathered, per_phase, atol=1e-6)
    monkeypatch.setattr(resample_impl, "_CHUNK_ELEMENTS", 1000)  # and in many small chunks
    np.testing.assert_allclose(resample(x, 48000, 32000), per_phase, atol=1e-6)


def test_equal_rates_return_a_float32_copy() -> None:
    x = np.linspace(-1, 1, 50)
    y = resample(x, 16000, 16000)
    assert y.dtype == np.float32 and y is not x
    np.testing.assert_array_equal(y, x.astype(np.float32))
    z = np.zeros(10, np.float32)
    assert resample(z, 8000, 8000) is not z


@pytest.mark.parametrize("args,match", [
    ((np.zeros(10), 0, 16000), "orig_sr"),
    ((np.zeros(10), 16000, -8000), "target_sr"),
    ((np.zeros(10), 44100.5, 16000), "orig_sr"),
    ((np.zeros(10), True, 16000), "orig_sr"),
    ((np.zeros(10), float("inf"), 16000), "orig_sr"),
    ((np.zeros(10), 8000, float("nan")), "target_sr"),
    ((np.zeros((2, 2, 2)), 8000, 16000), "shape"),
    ((np.zeros(3, complex), 8000, 16000), "real"),
    ((np.array([0.0, np.nan]), 8000, 16000), "NaN"),
])
def test_bad_arguments(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resample(*args)


def test_integral_float_rates_and_integer_input_are_accepted() -> None:
    y = resample(np.arange(100, dtype=np.int16), 8000.0, 16000)
    assert y.shape == (200,) and y.dtype == np.float32
    assert resample(np.zeros((10, 0)), 8000, 16000).shape == (20, 0)


def test_is_fast() -> None:
    rng = np.random.default_rng(0)
    short = rng.standard_normal(8000).astype(np.float32)
    resample(short, 8000, 16000)  # builds and caches the filter table
    best = min(_timed(resample, short, 8000, 16000) for _ in range(20))
    assert best < 0.01  # about 0.4 ms on one core
    long = rng.standard_normal(48000 * 60).astype(np.float32)
    assert min(_timed(resample, long, 48000, 16000) for _ in range(2)) < 1.0  # about 0.07 s


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def test_a_1hz_rate_is_refused_before_any_memory_is_taken() -> None:
    """Issue 18: 200k samples declared at 1 Hz asked for 23.8 GiB; now a ValueError naming the rates, at once."""
    import tracemalloc

    x = np.zeros(200_000, np.float32)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"^resample: 200000 samples from 1 Hz to 16000 Hz would give "
                                             r"3200000000 samples, over the limit"):
            resample(x, 1, 16000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_filter_wider_than_the_tap_limit_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^resample: 10000000 Hz to 1000 Hz needs a \d+-tap filter, over the limit"):
        resample(np.zeros(20_000), 10_000_000, 1000)
    assert resample(np.zeros(3840), 384_000, 1000).shape == (10,)  # the widest ratio the reader allows still works
