"""mfcc / log_mel / FeatureExtractor against librosa over a grid of settings, and the full pipeline."""
from __future__ import annotations

import pickle
import wave

import librosa
import numpy as np
import pytest
import scipy.signal

import kwslab.dsp.extractor as extractor_module
from kwslab.dsp import FeatureConfig, FeatureExtractor, cached_extractor, log_mel, mfcc
from kwslab.dsp.features import fit_waveform

TOLERANCE = 1e-5  # max |ours - librosa| / max |librosa|

GRID = [
    {},
    dict(sample_rate=8000, n_fft=256, hop_length=80, n_mels=23, htk=True, mel_norm=None),
    dict(n_fft=400, win_length=400, hop_length=160, center=False),
    dict(win_length=400, pad_mode="reflect", lifter=22.0),
    dict(sample_rate=8000, n_fft=200, hop_length=80, fmin=20.0, fmax=3800.0, n_mels=26, n_mfcc=20, top_db=None),
    dict(n_fft=1024, win_length=640, hop_length=320, n_mels=64, fmin=60.0, fmax=7600.0, htk=True, lifter=22.0,
         top_db=None),
    dict(window="hamming", n_mels=80, n_mfcc=40, top_db=50.0),
    dict(window="hann_symmetric", center=False, mel_norm=None, n_mfcc=20),
    dict(sample_rate=8000, n_fft=256, hop_length=128, pad_mode="reflect", htk=True, fmax=4000.0),
    dict(power=1.0, n_mels=32),
    dict(n_fft=401, hop_length=100, window="blackman", pad_mode="edge"),
    dict(sample_rate=8000, n_fft=512, win_length=256, hop_length=64, window="rectangular", mel_norm=None,
         center=False, lifter=22.0, top_db=None),
]
IDS = [",".join(f"{k}={v}" for k, v in g.items()) or "defaults" for g in GRID]


def test_signal(sample_rate: int, seconds: float = 0.7, seed: int = 0) -> np.ndarray:
    """Seeded noise plus sinusoids, with a near-silent stretch so the top_db floor matters."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    y = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 1234.5 * t) * (t > 0.2)
    y += 0.05 * rng.standard_normal(t.size)
    y[int(0.4 * t.size):int(0.55 * t.size)] = 1e-6 * rng.standard_normal(int(0.55 * t.size) - int(0.4 * t.size))
    return y.astype(np.float32)


test_signal.__test__ = False  # a helper, not a test


def librosa_features(y: np.ndarray, cfg: FeatureConfig, kind: str) -> np.ndarray:
    """The reference: librosa with the same settings, per clip, in float64."""
    window: object = cfg.window
    if cfg.window.endswith("_symmetric") or cfg.window == "rectangular":
        name = {"rectangular": "boxcar"}.get(cfg.window, cfg.window.replace("_symmetric", ""))
        periodic = not cfg.window.endswith("_symmetric")
        window = scipy.signal.get_window(name, cfg.win_length or cfg.n_fft, fftbins=periodic)
    mel = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float64), sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
        win_length=cfg.win_length, window=window, center=cfg.center, pad_mode=cfg.pad_mode, power=cfg.power,
        n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, htk=cfg.htk, norm=cfg.mel_norm)
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=cfg.top_db)
    return db if kind == "log_mel" else librosa.feature.mfcc(S=db, n_mfcc=cfg.n_mfcc, lifter=cfg.lifter)


def assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    err = np.abs(ours.astype(np.float64) - ref).max() / np.abs(ref).max()
    assert err <= TOLERANCE, f"relative max error {err:.2e}"


@pytest.mark.parametrize("settings", GRID, ids=IDS)
@pytest.mark.parametrize("kind", ["mfcc", "log_mel"])
def test_parity_with_librosa(settings: dict, kind: str) -> None:
    cfg = FeatureConfig(**settings)
    fn = mfcc if kind == "mfcc" else log_mel
    y = test_signal(cfg.sample_rate)
    ref = librosa_features(y, cfg, kind)
    assert_close(fn(y, cfg), ref)
    assert_close(fn(y.astype(np.float64), cfg), ref)
    assert ref.shape[1] == cfg.frame_count(y.size)


@pytest.mark.parametrize("settings", [g for g in GRID if g.get("center", True)][:6])
def test_clip_shorter_than_n_fft(settings: dict) -> None:
    cfg = FeatureConfig(**settings)
    y = test_signal(cfg.sample_rate, seconds=0.5)[: cfg.n_fft // 2 + 7]
    with pytest.warns(UserWarning):  # librosa warns that n_fft is larger than the signal; we do not
        ref_mfcc, ref_mel = librosa_features(y, cfg, "mfcc"), librosa_features(y, cfg, "log_mel")
    assert_close(mfcc(y, cfg), ref_mfcc)
    assert_close(log_mel(y, cfg), ref_mel)


def test_uncentred_short_clip_is_zero_padded_to_one_frame() -> None:
    cfg = FeatureConfig(center=False)
    y = test_signal(16000)[:300]  # librosa raises here; we pad to n_fft at the end
    padded = np.concatenate([y, np.zeros(cfg.n_fft - y.size, np.float32)])
    assert_close(mfcc(y, cfg), librosa_features(padded, cfg, "mfcc"))
    assert mfcc(y, cfg).shape == (13, 1) == (13, cfg.frame_count(y.size))


def test_default_mfcc_equals_librosa_feature_mfcc_directly() -> None:
    y = test_signal(16000, seconds=1.0, seed=3)
    ref = librosa.feature.mfcc(y=y.astype(np.float64), sr=16000, n_fft=512, hop_length=160, n_mels=40, n_mfcc=13)
    assert_close(mfcc(y), ref)
    assert_close(mfcc(y, FeatureConfig(lifter=22)), librosa.feature.mfcc(
        y=y.astype(np.float64), sr=16000, n_fft=512, hop_length=160, n_mels=40, n_mfcc=13, lifter=22))


def test_real_speech_parity(fsdd_recordings) -> None:
    path = sorted(fsdd_recordings.glob("7_*.wav"))[0]
    with wave.open(str(path), "rb") as f:  # the stdlib reader keeps this test independent of kwslab.audio
        assert f.getsampwidth() == 2 and f.getnchannels() == 1
        y = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        sample_rate = f.getframerate()
    cfg = FeatureConfig(sample_rate=sample_rate, n_fft=256, hop_length=80, n_mels=23, lifter=22)
    assert_close(mfcc(y, cfg), librosa_features(y, cfg, "mfcc"))
    assert_close(log_mel(y, cfg), librosa_features(y, cfg, "log_mel"))


def test_top_db_is_per_clip() -> None:
    cfg = FeatureConfig(kind="log_mel", top_db=30.0)
    extract = FeatureExtractor(cfg)
    loud = test_signal(16000, seed=1)
    quiet = (test_signal(16000, seed=2) * 1e-3).astype(np.float32)
    alone = extract(quiet)
    loud_out = extract(loud)
    assert np.array_equal(extract(quiet), alone)  # nothing carries over from the loud clip
    assert alone.max() - alone.min() == pytest.approx(30.0, abs=1e-3)  # floor = this clip's max - top_db
    assert loud_out.min() > alone.max()  # a shared (batch-global) floor would have clipped the quiet clip away
    assert_close(alone, librosa_features(quiet, cfg, "log_mel"))


def test_extractor_bare_settings_equal_mfcc_and_log_mel() -> None:
    y = test_signal(16000, seed=4)
    cfg = FeatureConfig(n_mels=64, n_mfcc=20, lifter=22)
    assert np.array_equal(FeatureExtractor(cfg)(y), mfcc(y, cfg))
    mel_cfg = FeatureConfig(kind="log_mel", n_mels=64)
    assert np.array_equal(FeatureExtractor(mel_cfg)(y), log_mel(y, mel_cfg))


def test_filter_bank_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = FeatureConfig(n_mels=48, n_mfcc=16)  # validated before the count starts
    calls = []
    real = extractor_module.mel_filterbank
    monkeypatch.setattr(extractor_module, "mel_filterbank", lambda *a, **k: calls.append(1) or real(*a, **k))
    y = test_signal(16000)
    extract = FeatureExtractor(cfg)
    for _ in range(3):
        extract(y)
    assert len(calls) == 1
    cached_extractor.cache_clear()
    for _ in range(3):
        mfcc(y, cfg)
        log_mel(y, cfg)
    assert len(calls) == 2  # one more extractor, shared by every call with this config


def test_deltas_cmvn_and_fixed_frames() -> None:
    y = test_signal(16000, seconds=1.0, seed=5)
    base = mfcc(y)
    out = FeatureExtractor(FeatureConfig(deltas=2))(y)
    assert out.shape == (39, base.shape[1]) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:13], base)
    for order in (1, 2):
        ref = librosa.feature.delta(base.astype(np.float64), width=9, order=order)
        np.testing.assert_allclose(out[13 * order:13 * (order + 1)], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    normed = FeatureExtractor(FeatureConfig(deltas=1, cmvn=True))(y)
    np.testing.assert_allclose(normed.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(normed.std(axis=1), 1.0, atol=1e-4)


def test_num_frames_fits_the_waveform_to_a_centred_window() -> None:
    y = test_signal(16000, seconds=0.5, seed=6)
    for settings in (dict(kind="log_mel"), dict(deltas=1, lifter=22), dict(cmvn=True), dict(center=False)):
        cfg = FeatureConfig(num_frames=101, **settings)
        n = cfg.num_samples
        assert FeatureConfig(**settings).frame_count(n) == 101
        padded = np.zeros(n, dtype=np.float32)
        padded[(n - len(y)) // 2:(n - len(y)) // 2 + len(y)] = y
        out = FeatureExtractor(cfg)(y)
        assert out.shape == (cfg.num_features, 101)
        np.testing.assert_array_equal(out, FeatureExtractor(FeatureConfig(**settings))(padded))
    long = test_signal(16000, seconds=2.0, seed=7)
    cfg = FeatureConfig(num_frames=101)
    start = (len(long) - cfg.num_samples) // 2
    np.testing.assert_array_equal(FeatureExtractor(cfg)(long),
                                  FeatureExtractor(FeatureConfig())(long[start:start + cfg.num_samples]))


def test_fit_waveform_places_and_cuts() -> None:
    y = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(fit_waveform(y, 9), [0, 0, 1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(fit_waveform(y, 9, offset=4), [0, 0, 0, 0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(fit_waveform(y, 3), [2, 3, 4])
    np.testing.assert_array_equal(fit_waveform(y, 3, offset=0), [1, 2, 3])
    assert fit_waveform(y, 5) is y
    with pytest.raises(ValueError, match="offset 5"):
        fit_waveform(y, 9, offset=5)


@pytest.mark.parametrize("settings", [dict(), dict(n_fft=401, hop_length=100), dict(center=False)])
def test_frame_count_matches_output(settings: dict) -> None:
    cfg = FeatureConfig(**settings)
    for n in (1, 200, 401, 4000, 16000, 16161):
        y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        assert mfcc(y, cfg).shape[1] == cfg.frame_count(n)


def test_pickles_as_its_config() -> None:
    extract = FeatureExtractor(FeatureConfig(deltas=1))
    blob = pickle.dumps(extract)
    assert len(blob) < 2000  # the config, not the matrices
    y = test_signal(16000)
    assert np.array_equal(pickle.loads(blob)(y), extract(y))


@pytest.mark.parametrize("bad,match", [
    (np.zeros((100, 2), np.float32), "1-D audio"),
    (np.zeros(100, np.int16), "floating-point"),
    (np.zeros(0, np.float32), "empty"),
    (np.full(1000, np.nan, np.float32), "NaN or infinite"),
    (np.concatenate([np.zeros(500), [np.inf]]), "NaN or infinite"),
])
def test_bad_audio_raises_one_clear_error(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FeatureExtractor()(bad)
    with pytest.raises(TypeError, match="FeatureConfig"):
        FeatureExtractor({"n_mels": 40})  # type: ignore[arg-type]


def test_shared_extractor_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    extract = FeatureExtractor(FeatureConfig(deltas=1))
    clips = [test_signal(16000, seconds=s, seed=i) for i, s in enumerate([0.3, 1.0, 2.5, 0.7, 1.6, 0.2] * 3)]
    expected = [extract(y) for y in clips]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(extract, clips))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
