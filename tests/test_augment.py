"""Waveform augmentation and SpecAugment: determinism under a seed and each transform's measurable effect."""
from __future__ import annotations

import numpy as np
import pytest

from kwslab.augment import (BackgroundNoise, BandLimit, BandStop, Compose, EQTilt, Gain, GaussianNoise, LowPass,
                            OnsetCut, Reverb, SpecAugment, SpeedPerturb, TimeShift, TimeStretch, build_spec_augment,
                            build_waveform_augment)
from kwslab.dsp.features import mel_to_hz

SR = 16000


def tone(freq: float, seconds: float = 0.5, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def speech_like(seed: int = 0, n: int = SR // 2) -> np.ndarray:
    """A seeded mixture of tones and noise, so every transform has something to change."""
    rng = np.random.default_rng(seed)
    return (tone(300, n / SR) + tone(1200, n / SR, amp=0.2) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def db(ratio: float) -> float:
    return float(10 * np.log10(ratio))


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


ALL_TRANSFORMS = {
    "gaussian_noise": lambda: GaussianNoise(p=1.0),
    "background_noise": lambda: BackgroundNoise([np.random.default_rng(5).standard_normal(3000)], p=1.0),
    "time_shift": lambda: TimeShift(p=1.0),
    "speed": lambda: SpeedPerturb(p=1.0),
    "time_stretch": lambda: TimeStretch(p=1.0),
    "gain": lambda: Gain(p=1.0),
    "band_limit": lambda: BandLimit(p=1.0),
    "low_pass": lambda: LowPass(p=1.0),
    "eq_tilt": lambda: EQTilt(p=1.0),
    "band_stop": lambda: BandStop(p=1.0),
    "onset_cut": lambda: OnsetCut(word_p=1.0, p=1.0),
    "reverb": lambda: Reverb(p=1.0),
}


@pytest.mark.parametrize("name", sorted(ALL_TRANSFORMS))
def test_same_seed_same_output_different_seed_different(name: str) -> None:
    y = speech_like()
    before = y.copy()
    transform = ALL_TRANSFORMS[name]()
    a = transform(y, np.random.default_rng(7))
    b = transform(y, np.random.default_rng(7))
    c = transform(y, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.ndim == 1
    assert a.shape != c.shape or not np.array_equal(a, c)
    np.testing.assert_array_equal(y, before)  # never in place


@pytest.mark.parametrize("name", sorted(ALL_TRANSFORMS))
def test_probability_zero_is_identity(name: str) -> None:
    transform = ALL_TRANSFORMS[name]()
    transform.p = 0.0
    y = speech_like(1)
    np.testing.assert_array_equal(transform(y, np.random.default_rng(0)), y)


def test_probability_is_respected_roughly() -> None:
    transform, y, rng = Gain(min_db=6, max_db=6, p=0.3), speech_like(), np.random.default_rng(0)
    changed = sum(not np.array_equal(transform(y, rng), y) for _ in range(400))
    assert 90 <= changed <= 150


def test_gaussian_noise_snr() -> None:
    y = speech_like()
    out = GaussianNoise(snr_db=20.0, p=1.0)(y, np.random.default_rng(0))
    assert db(power(y) / power(out - y)) == pytest.approx(20.0, abs=0.05)
    for seed in range(20):
        out = GaussianNoise(snr_db=(5.0, 15.0), p=1.0)(y, np.random.default_rng(seed))
        assert 4.95 <= db(power(y) / power(out - y)) <= 15.05
    silent = np.zeros(100, np.float32)
    np.testing.assert_array_equal(GaussianNoise(p=1.0)(silent, np.random.default_rng(0)), silent)


def test_background_noise_segment_and_snr() -> None:
    y = speech_like()
    noise = np.random.default_rng(3).standard_normal(y.size * 3).astype(np.float32)
    out = BackgroundNoise([noise], snr_db=(10.0, 10.0), p=1.0)(y, np.random.default_rng(1))
    added = out - y
    assert db(power(y) / power(added)) == pytest.approx(10.0, abs=0.05)
    # The added signal is a scaled contiguous slice of the noise clip.
    corr = np.correlate(noise, added, mode="valid")
    segment = noise[int(np.argmax(corr)):][:y.size]
    gain = np.dot(segment, added) / np.dot(segment, segment)
    np.testing.assert_allclose(added, gain * segment, atol=1e-5)


def test_background_noise_loops_short_clip_and_checks_paths(tmp_path) -> None:
    y = speech_like()
    short = np.random.default_rng(4).standard_normal(1000)
    out = BackgroundNoise([short], snr_db=0.0, p=1.0)(y, np.random.default_rng(2))
    added = out - y
    np.testing.assert_allclose(added[:1000], added[1000:2000], atol=1e-4)  # looped with period 1000
    with pytest.raises(ValueError, match="does not exist"):
        BackgroundNoise([tmp_path / "missing.wav"])
    with pytest.raises(ValueError, match="no noise clips"):
        BackgroundNoise(tmp_path)  # an empty folder


def test_background_noise_loads_wav_files(tmp_path) -> None:
    from kwslab.audio import write_wav

    noise = 0.3 * np.random.default_rng(6).standard_normal(8000)
    write_wav(tmp_path / "n.wav", noise, 8000)
    out = BackgroundNoise(tmp_path, snr_db=5.0, sample_rate=SR, p=1.0)(speech_like(), np.random.default_rng(0))
    assert db(power(speech_like()) / power(out - speech_like())) == pytest.approx(5.0, abs=0.05)


def test_time_shift_moves_impulse_within_bounds_and_zero_fills() -> None:
    n = 1000
    y = np.zeros(n, np.float32)
    y[500] = 1.0
    y[:10] = 0.5  # content at the start must fall off (or move) with zeros behind it
    shifts = []
    for seed in range(60):
        out = TimeShift(max_fraction=0.1, p=1.0)(y, np.random.default_rng(seed))
        shift = int(np.argmax(out == 1.0)) - 500
        assert abs(shift) <= 100
        np.testing.assert_array_equal(out, np.roll(y, shift) * _valid(n, shift))
        shifts.append(shift)
    assert min(shifts) < -50 and max(shifts) > 50


def _valid(n: int, shift: int) -> np.ndarray:
    mask = np.ones(n, np.float32)
    if shift > 0:
        mask[:shift] = 0
    elif shift < 0:
        mask[shift:] = 0
    return mask


def _peak_hz(x: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), 1 << 18))
    return float(np.argmax(spectrum) * sr / (1 << 18))


def test_speed_perturb_changes_length_and_pitch_together() -> None:
    y = tone(440.0)
    factors = []
    for seed in range(8):
        out = SpeedPerturb(0.9, 1.1, p=1.0)(y, np.random.default_rng(seed))
        factor = y.size / out.size
        assert 0.9 - 1e-3 <= factor <= 1.1 + 1e-3
        assert _peak_hz(out) == pytest.approx(440.0 * factor, rel=2e-3)
        factors.append(factor)
    assert max(factors) - min(factors) > 0.05
    fast = SpeedPerturb(1.1, 1.1, p=1.0)(y, np.random.default_rng(0))
    assert fast.size == round(y.size / 1.1)
    kept = SpeedPerturb(0.9, 0.9, keep_length=True, p=1.0)(y, np.random.default_rng(0))
    assert kept.size == y.size and _peak_hz(kept) == pytest.approx(396.0, rel=2e-3)


def test_gain_in_db() -> None:
    y = speech_like()
    assert db(power(Gain(6.0, 6.0, p=1.0)(y, np.random.default_rng(0))) / power(y)) == pytest.approx(6.0, abs=1e-3)
    for seed in range(20):
        out = Gain(-10.0, 3.0, p=1.0)(y, np.random.default_rng(seed))
        assert -10.0 - 1e-3 <= db(power(out) / power(y)) <= 3.0 + 1e-3


def _level_db(transform, freq: float) -> float:
    y = tone(freq, 1.0)
    out = transform(y, np.random.default_rng(0))
    middle = slice(2000, 14000)  # ignore the edges, where a tone starts and stops abruptly
    return db(power(out[middle]) / power(y[middle]))


def test_low_pass_attenuates_high_tone_and_keeps_low_tone() -> None:
    lp = LowPass(2000.0, 2000.0, order=4, p=1.0)
    assert _level_db(lp, 7000.0) < -40.0
    assert _level_db(lp, 300.0) == pytest.approx(0.0, abs=0.05)
    assert _level_db(lp, 2000.0) == pytest.approx(-3.01, abs=0.1)  # Butterworth: -3 dB at the corner


def test_band_limit_removes_both_ends() -> None:
    bl = BandLimit(low_hz=300.0, high_hz=3400.0, p=1.0)
    assert _level_db(bl, 60.0) < -40.0
    assert _level_db(bl, 7500.0) < -25.0
    assert _level_db(bl, 1000.0) == pytest.approx(0.0, abs=0.1)
    with pytest.raises(ValueError, match="high_hz"):
        BandLimit(high_hz=9000.0, sample_rate=16000)


def test_eq_tilt_slope_per_octave() -> None:
    tilt = EQTilt(6.0, 6.0, pivot_hz=1000.0, p=1.0)
    assert _level_db(tilt, 2000.0) == pytest.approx(6.0, abs=0.1)
    assert _level_db(tilt, 500.0) == pytest.approx(-6.0, abs=0.1)
    assert _level_db(tilt, 1000.0) == pytest.approx(0.0, abs=0.1)


def test_band_stop_notches_the_band_and_leaves_the_rest() -> None:
    notch = BandStop(count=1, width_mel=200.0, depth_db=30.0, min_hz=1000.0, max_hz=1000.0, p=1.0)  # centre 1000 mel
    assert _level_db(notch, 1000.0) == pytest.approx(-30.0, abs=0.2)
    assert _level_db(notch, float(mel_to_hz(1050.0, htk=True))) == pytest.approx(-30.0, abs=0.2)  # flat middle
    assert _level_db(notch, float(mel_to_hz(1080.0, htk=True))) == pytest.approx(-15.0, abs=0.5)  # half-way down
    for outside in (300.0, 3000.0):
        assert _level_db(notch, outside) == pytest.approx(0.0, abs=0.05)
    two = BandStop(count=2, width_mel=100.0, depth_db=40.0, sample_rate=8000, p=1.0)
    gain_db = 20 * np.log10(two.gain(np.linspace(0.0, 4000.0, 4001), np.random.default_rng(4)))
    assert gain_db.min() == pytest.approx(-40.0) and gain_db.max() == 0.0
    assert 0.01 < np.mean(gain_db < -20.0) < 0.2  # two narrow notches, not the whole band
    with pytest.raises(ValueError, match="BandStop.count"):
        BandStop(count=1.5)
    with pytest.raises(ValueError, match="BandStop.max_hz"):
        BandStop(max_hz=5000.0, sample_rate=8000)


def test_reverb_impulse_response_and_tail() -> None:
    reverb = Reverb(rt60=0.3, drr_db=6.0, p=1.0)
    h = reverb.impulse_response(np.random.default_rng(0))
    assert h[0] == 1.0 and h.size == pytest.approx(0.3 * SR, abs=2)
    assert db(np.sum(h[1:] ** 2)) == pytest.approx(-6.0, abs=1e-6)
    early, late = np.sum(h[1:480] ** 2), np.sum(h[-480:] ** 2)
    assert db(late / early) < -45.0  # about 60 dB per rt60 of decay
    y = np.zeros(SR, np.float32)
    y[:800] = speech_like(n=800)
    out = reverb(y, np.random.default_rng(0))
    assert power(out) == pytest.approx(power(y), rel=1e-4)
    assert power(out[1000:3000]) > 1e-4 * power(out[:800])  # the tail rings on after the sound stops
    assert np.all(out[800 + h.size:] == pytest.approx(0.0, abs=1e-6))


def test_compose_applies_in_order_with_shared_rng() -> None:
    y = speech_like()
    chain = Compose([TimeShift(p=1.0), Gain(p=1.0)])
    rng = np.random.default_rng(3)
    manual = Gain(p=1.0)(TimeShift(p=1.0)(y, rng), rng)
    np.testing.assert_array_equal(chain(y, np.random.default_rng(3)), manual)
    assert len(chain) == 2


def test_build_waveform_augment_from_settings() -> None:
    chain = build_waveform_augment({"speed": {"min_factor": 0.95}, "low_pass": None,
                                    "gaussian_noise": {"snr_db": [10, 20], "p": 1.0}}, sample_rate=8000)
    assert [type(t) for t in chain.transforms] == [SpeedPerturb, LowPass, GaussianNoise]
    assert chain.transforms[0].min_factor == 0.95 and chain.transforms[1].sample_rate == 8000
    assert chain.transforms[2].snr_db == (10.0, 20.0)
    assert build_waveform_augment(None) is None and build_waveform_augment({}) is None
    with pytest.raises(ValueError, match="unknown augmentation 'echo'"):
        build_waveform_augment({"echo": {}})
    with pytest.raises(ValueError, match=r"'gain'.*unknown argument.*'db'"):
        build_waveform_augment({"gain": {"db": 3}})
    with pytest.raises(ValueError, match="p must be a probability"):
        build_waveform_augment({"gain": {"p": 2}})
    with pytest.raises(ValueError, match="snr_db"):
        build_waveform_augment({"gaussian_noise": {"snr_db": [30, 10]}})


def test_spec_augment_mask_counts_widths_and_values() -> None:
    feats = np.random.default_rng(0).standard_normal((40, 100)).astype(np.float32) + 3.0
    spec = SpecAugment(freq_masks=2, freq_width=8, time_masks=3, time_width=12)
    widths = {0: [], 1: []}
    for seed in range(50):
        masks = spec.sample_masks(40, 100, np.random.default_rng(seed))
        assert [m[0] for m in masks] == [0, 0, 1, 1, 1]
        for axis, start, width in masks:
            assert 0 <= width <= (8 if axis == 0 else 12)
            assert 0 <= start and start + width <= (40 if axis == 0 else 100)
            widths[axis].append(width)
        out = spec(feats, np.random.default_rng(seed))
        masked = np.zeros(feats.shape, bool)
        for axis, start, width in spec.sample_masks(40, 100, _after_coin(seed)):
            if axis == 0:
                masked[start:start + width] = True
            else:
                masked[:, start:start + width] = True
        np.testing.assert_array_equal(out[~masked], feats[~masked])
        np.testing.assert_allclose(out[masked], feats.mean(), rtol=1e-6)
    assert max(widths[0]) == 8 and max(widths[1]) == 12 and min(widths[1]) == 0


def _after_coin(seed: int) -> np.random.Generator:
    rng = np.random.default_rng(seed)
    rng.random()  # SpecAugment draws its coin for p first
    return rng


def test_spec_augment_options_and_determinism() -> None:
    feats = np.random.default_rng(1).standard_normal((13, 50)).astype(np.float32)
    spec = SpecAugment(freq_masks=1, freq_width=5, time_masks=2, time_width=40, max_time_fraction=0.1,
                       mask_value=0.0)
    for seed in range(30):
        assert all(w <= 5 for axis, _, w in spec.sample_masks(13, 50, np.random.default_rng(seed)) if axis == 1)
    a, b = spec(feats, np.random.default_rng(2)), spec(feats, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert np.any(a == 0.0) and not np.any(feats == 0.0)
    assert not np.array_equal(a, spec(feats, np.random.default_rng(3)))
    np.testing.assert_array_equal(SpecAugment(p=0.0)(feats, np.random.default_rng(0)), feats)
    assert build_spec_augment(None) is None
    assert build_spec_augment({"freq_masks": 1}).freq_masks == 1
    with pytest.raises(ValueError, match="time_width"):
        build_spec_augment({"time_width": -1})
    with pytest.raises(ValueError, match="unknown argument"):
        build_spec_augment({"masks": 2})


def words_in_quiet(sr: int = 8000, lengths_ms=(200, 300, 60), gap_ms: int = 150, seed: int = 0) -> tuple:
    """Tone bursts ("words") of the given lengths between quiet gaps with a faint noise floor (40 dB down)."""
    rng = np.random.default_rng(seed)
    pieces, spans, pos = [], [], 0
    for i, ms in enumerate(lengths_ms):
        g, n = gap_ms * sr // 1000, ms * sr // 1000
        pieces += [np.zeros(g), tone(400 + 200 * i, ms / 1000, sr)]
        spans.append((pos + g, pos + g + n))
        pos += g + n
    pieces.append(np.zeros(gap_ms * sr // 1000))
    y = np.concatenate(pieces)
    return (y + 0.005 * rng.standard_normal(y.size)).astype(np.float32), spans


def loud_runs(y: np.ndarray, sr: int = 8000) -> list[int]:
    """Lengths in samples of the runs of |y| above the noise floor (the bursts), joined over zero crossings."""
    loud = np.convolve(np.abs(y) > 0.05, np.ones(sr // 200), mode="same") > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]]))).reshape(-1, 2)
    return [int(t - s) for s, t in edges]


def test_onset_cut_finds_the_words_and_removes_their_beginnings() -> None:
    y, spans = words_in_quiet()
    cut = OnsetCut(cut_ms=40.0, word_p=1.0, sample_rate=8000, p=1.0)
    assert cut.words(y) == [(s, e) for s, e in spans]  # spans fall on 10-ms frames here
    out = cut(y, np.random.default_rng(0))
    # 40 ms (320 samples) off the two long words, half of the 60-ms word (it never takes more than half)
    assert y.size - out.size == 320 + 320 + 240
    before, after = loud_runs(y), loud_runs(out)
    assert [b - a for b, a in zip(before, after)] == pytest.approx([320, 320, 240], abs=45)
    # what is left of each word is its end: the last samples of the first burst are unchanged
    s, e = spans[0]
    first_end = out[s + 1600 - 320 - 100: s + 1600 - 320]
    np.testing.assert_array_equal(first_end, y[e - 100: e])
    # the word now starts abruptly: its first 10 ms are as loud as the rest of it
    head = out[s: s + 80]
    assert power(head) > 0.5 * power(tone(400, 0.2, 8000))


def test_onset_cut_word_probability_and_isolated_clips() -> None:
    y, spans = words_in_quiet(lengths_ms=(200, 200, 200, 200, 200, 200))
    none = OnsetCut(cut_ms=40.0, word_p=0.0, sample_rate=8000, p=1.0)
    np.testing.assert_array_equal(none(y, np.random.default_rng(0)), y)
    half = OnsetCut(cut_ms=40.0, word_p=0.5, sample_rate=8000, p=1.0)
    removed = [(y.size - half(y, np.random.default_rng(seed)).size) // 320 for seed in range(200)]
    assert set(removed) <= set(range(7)) and 2.6 < np.mean(removed) < 3.4  # six words, each cut half the time
    clip = tone(500, 0.3, 8000)  # an isolated word trimmed to its first sample: the onset is sample 0
    out = OnsetCut(cut_ms=50.0, word_p=1.0, sample_rate=8000, p=1.0)(clip, np.random.default_rng(0))
    np.testing.assert_array_equal(out, clip[400:])
    quiet = np.zeros(800, np.float32)  # nothing above the floor: nothing to cut
    np.testing.assert_array_equal(OnsetCut(word_p=1.0, p=1.0)(quiet, np.random.default_rng(0)), quiet)


def test_onset_cut_from_settings_and_bad_values() -> None:
    chain = build_waveform_augment({"onset_cut": {"cut_ms": [10, 30], "word_p": 1.0, "p": 1.0}}, sample_rate=8000)
    assert isinstance(chain.transforms[0], OnsetCut) and chain.transforms[0].sample_rate == 8000
    with pytest.raises(ValueError, match="OnsetCut.word_p"):
        OnsetCut(word_p=1.5)
    with pytest.raises(ValueError, match="OnsetCut.cut_ms"):
        OnsetCut(cut_ms=(-5.0, 10.0))


def _frame_rms(y: np.ndarray, frame: int) -> np.ndarray:
    return np.sqrt(np.mean(np.square(y[: y.size // frame * frame].reshape(-1, frame), dtype=np.float64), axis=1))


def test_time_stretch_changes_the_length_and_keeps_the_pitch() -> None:
    y = tone(440.0, 1.0)
    for rate in (0.7, 0.8, 1.25, 1.4):
        out = TimeStretch(sample_rate=SR).stretch(y, rate)
        assert out.size == round(y.size / rate)
        assert _peak_hz(out) == pytest.approx(440.0, abs=2.0)  # SpeedPerturb would give 440 * rate
        # the similarity search lines up the periods of overlapping frames: a steady tone stays steady
        rms = _frame_rms(out, SR // 100)[2:-2]
        assert db((rms.max() / rms.min()) ** 2) < 0.3 and rms.mean() == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    # plain overlap-add (no search) lets neighbouring frames partly cancel: the tone flutters
    ola = _frame_rms(TimeStretch(tolerance_ms=0.0, sample_rate=SR).stretch(y, 0.8), SR // 100)[2:-2]
    assert db((ola.max() / ola.min()) ** 2) > 1.0


def test_time_stretch_rate_one_is_the_identity_and_events_move_in_time() -> None:
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    np.testing.assert_allclose(TimeStretch(sample_rate=SR).stretch(noise, 1.0), noise, atol=1e-5)
    # a 200-ms burst at 0.4-0.6 s plays at 0.5-0.75 s when the tempo is 0.8
    clip = np.zeros(SR, dtype=np.float32)
    clip[int(0.4 * SR): int(0.6 * SR)] = tone(300.0, 0.2)
    out = TimeStretch(sample_rate=SR).stretch(clip, 0.8)
    loud = np.flatnonzero(_frame_rms(out, SR // 100) > 0.1)  # 10-ms frames
    assert loud[0] == pytest.approx(50, abs=2) and loud[-1] + 1 == pytest.approx(75, abs=2)
    assert _peak_hz(out) == pytest.approx(300.0, abs=5.0)


def test_time_stretch_draws_its_rate_and_checks_settings() -> None:
    y = speech_like()
    lengths = {TimeStretch(0.8, 1.25, sample_rate=SR, p=1.0)(y, np.random.default_rng(s)).size for s in range(10)}
    assert len(lengths) > 5 and min(lengths) >= round(y.size / 1.25) and max(lengths) <= round(y.size / 0.8)
    chain = build_waveform_augment({"time_stretch": {"min_rate": 0.9, "max_rate": 1.1, "p": 1.0}}, sample_rate=8000)
    assert isinstance(chain.transforms[0], TimeStretch) and chain.transforms[0].sample_rate == 8000
    with pytest.raises(ValueError, match="TimeStretch.min_rate/max_rate"):
        TimeStretch(min_rate=1.2, max_rate=0.9)
    with pytest.raises(ValueError, match="TimeStretch.frame_ms"):
        TimeStretch(frame_ms=0.5)
    with pytest.raises(ValueError, match="TimeStretch.sample_rate"):
        TimeStretch(sample_rate=0)
