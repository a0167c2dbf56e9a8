"""Whole-waveform helpers: silence trimming, mixing at an SNR, coloured noise (kwslab.dsp.waveform)."""
import numpy as np
import pytest

from kwslab.dsp.waveform import NOISE_COLORS, colored_noise, mix_at_snr, power, rms, trim_silence


def test_trim_silence_cuts_only_silence() -> None:
    sr = 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(sr // 2) / sr)
    x = np.concatenate([np.zeros(sr // 4), tone, np.zeros(sr // 2)])
    y = trim_silence(x, sr, top_db=40, pad=0.02)
    assert abs(len(y) - (len(tone) + 2 * 320)) <= 2 * 160  # tone kept, 20 ms pads, frame-rounded
    assert np.max(np.abs(y)) == np.max(np.abs(x))


def test_trim_silence():
    x = np.concatenate([np.zeros(1600), np.ones(800), np.zeros(1600)]).astype(np.float32)
    y = trim_silence(x, 16000, pad=0.005)
    assert len(y) == 800 + 2 * 80 and y.max() == 1.0
    assert len(trim_silence(np.zeros(100, np.float32), 16000, pad=0.005)) == 100


def test_trim_silence_floor_db_cuts_room_noise_a_peak_threshold_keeps() -> None:
    """A word in 1 s of room noise 25 dB under it: 40 dB below the peak keeps the noise, 10 dB above the noise floor
    cuts it; noise alone (no frame above its own floor) is kept whole rather than cut to nothing."""
    sr = 16000
    rng = np.random.default_rng(0)
    x = 0.0178 * rng.standard_normal(sr)  # -25 dB against the word's RMS of 0.25
    word = slice(int(0.4 * sr), int(0.7 * sr))
    x[word] += 0.25 * np.sqrt(2) * np.sin(2 * np.pi * 300 * np.arange(word.stop - word.start) / sr)
    assert len(trim_silence(x, sr, 40, pad=0.0)) == sr
    y = trim_silence(x, sr, 40, pad=0.0, floor_db=10)
    assert abs(len(y) - (word.stop - word.start)) <= 2 * 160
    noise = rng.standard_normal(sr)
    assert len(trim_silence(noise, sr, 40, pad=0.0, floor_db=10)) >= 160  # at least the loudest frame


def test_mix_at_snr_is_exact_and_leaves_silence_alone() -> None:
    rng = np.random.default_rng(0)
    y = (0.3 * rng.standard_normal(4000)).astype(np.float32)
    noise = rng.standard_normal(4000).astype(np.float32)
    out = mix_at_snr(y, noise, 12.0)
    assert out.dtype == np.float32
    assert 10 * np.log10(power(y) / power(out - y)) == pytest.approx(12.0, abs=1e-3)
    speech = float(power(y[:1000]))  # SNR measured against a given signal power
    out = mix_at_snr(y, noise, 6.0, signal_power=speech)
    assert 10 * np.log10(speech / power(out - y)) == pytest.approx(6.0, abs=1e-3)
    silent = np.zeros(10, np.float32)
    np.testing.assert_array_equal(mix_at_snr(silent, np.ones(10), 0.0), silent)
    with pytest.raises(ValueError, match="shape"):
        mix_at_snr(y, noise[:10], 0.0)


@pytest.mark.parametrize("color", sorted(NOISE_COLORS))
@pytest.mark.parametrize("keep_dc", [False, True])
def test_colored_noise_has_its_spectral_slope(color: str, keep_dc: bool) -> None:
    """Log power against log frequency falls with slope -a (white 0, pink 1, brown 2), averaged over clips."""
    n = 4096
    psd = np.mean([np.abs(np.fft.rfft(colored_noise(n, color, np.random.default_rng(s), keep_dc=keep_dc))) ** 2
                   for s in range(40)], axis=0)
    k = np.arange(4, n // 2)
    slope = np.polyfit(np.log(k), np.log(psd[k]), 1)[0]
    assert slope == pytest.approx(-NOISE_COLORS[color], abs=0.1)


def test_colored_noise_dc_unit_rms_dtype() -> None:
    for color in NOISE_COLORS:
        x = colored_noise(8000, color, np.random.default_rng(1))
        assert x.dtype == np.float32 and rms(x) == pytest.approx(1.0, rel=1e-5)
        assert abs(float(np.mean(x))) < 1e-6  # DC removed
    kept = colored_noise(8000, "brown", np.random.default_rng(1), keep_dc=True, dtype=np.float64)
    assert kept.dtype == np.float64 and rms(kept) == pytest.approx(1.0)
    # the DC bin is weighted like bin 1, so brown noise keeps a sizeable offset over many draws
    means = [abs(np.mean(colored_noise(8000, "brown", np.random.default_rng(s), keep_dc=True))) for s in range(20)]
    assert np.median(means) > 0.1
    with pytest.raises(ValueError, match="color"):
        colored_noise(10, "blue", np.random.default_rng(0))
