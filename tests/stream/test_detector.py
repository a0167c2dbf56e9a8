"""Streaming detection: block-size independence, the two event detectors agree, hand-made event logic."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kwslab.audio import load_audio, write_wav
from kwslab.dsp import FeatureConfig
from kwslab.inference.onnx import softmax
from kwslab.stream import EventDetector, StreamConfig, StreamingDetector, Track, iter_wav_blocks

LABELS = ["_silence_", "a", "b"]
CFG = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=20, n_mfcc=10, cmvn=True, num_frames=41)


def fake_probabilities(feats: np.ndarray) -> np.ndarray:
    """A fixed, feature-dependent 'model': softmax of a seeded linear map of the time-pooled features."""
    w = np.random.default_rng(7).standard_normal((feats.shape[1], len(LABELS))).astype(np.float32)
    return softmax(feats.max(-1) @ w)


def _signal(rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    chirps = np.sin(2 * np.pi * (200 + 300 * np.sin(0.7 * t)) * t) * (np.sin(1.3 * t) > 0.3)
    return (0.3 * chirps + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def _detector(**kw) -> StreamingDetector:
    cfg = StreamConfig(hop=0.05, smooth=3, threshold=0.55, refractory=0.3, max_batch=kw.pop("max_batch", 16))
    return StreamingDetector(CFG, LABELS, fake_probabilities, cfg, **kw)


def test_random_block_sizes_give_the_whole_file_result(rng):
    y = _signal(rng, 7.3)
    whole = _detector(keep_track=True, max_batch=1000)
    found = whole.run([y])
    starts, rows = whole.track()
    assert len(found) >= 2, "the test signal should produce several detections"
    n_windows = 1 + math.ceil((len(y) - 3200) / 400)  # 0.4-s windows (41 frames), 0.05-s hops
    assert len(starts) == n_windows and starts[-1] < len(y) / 8000
    for trial in range(4):
        cuts = np.sort(rng.integers(0, len(y), size=int(rng.integers(1, 60))))
        blocks = np.split(y, cuts)  # includes empty and one-sample blocks
        live = _detector(keep_track=True, max_batch=int(rng.integers(1, 9)))
        got = []
        for b in blocks:
            got += live.push(b)
        got += live.flush()
        s2, r2 = live.track()
        np.testing.assert_array_equal(s2, starts)
        np.testing.assert_allclose(r2, rows, atol=1e-6)
        assert [(d.keyword, d.start, d.end) for d in got] == [(d.keyword, d.start, d.end) for d in found]
        assert [d.score for d in got] == pytest.approx([d.score for d in found], abs=1e-6)


def test_short_audio_gives_one_partial_window_and_push_after_flush_fails():
    det = _detector(keep_track=True)
    det.run([np.zeros(1000, np.float32) + 0.01])
    starts, rows = det.track()
    assert starts.tolist() == [0.0] and rows.shape == (1, 3)
    with pytest.raises(RuntimeError, match="reset"):
        det.push(np.zeros(10, np.float32))
    assert _detector().run([]) == []


def _rows(scores: list[list[float]]) -> np.ndarray:
    """Posteriors for [_silence_, a, b] with the given keyword scores."""
    arr = np.array(scores, dtype=np.float32)
    return np.concatenate([1.0 - arr.sum(1, keepdims=True), arr], axis=1)


def test_event_detector_threshold_refractory_span_and_ignored_labels():
    # window 1.0 s, hop 0.1 s, no smoothing; 'a' above 0.5 in rows 2-4, dip, again rows 6-7 (refractory 0.5 s
    # from the close at row 5 (t=0.5 + window) blocks rows whose window ends before 2.0 s), then 'b' at rows 16-17.
    scores = [[0.1, 0]] * 2 + [[0.6, 0], [0.9, 0], [0.7, 0.1], [0.2, 0], [0.6, 0], [0.6, 0]] + [[0, 0]] * 8
    scores += [[0, 0.8], [0.1, 0.95], [0, 0.1]]
    starts = np.arange(len(scores)) * 0.1
    rows = _rows(scores)
    rows[10, 0] = 0.99  # _silence_ is never a detection
    det = EventDetector(LABELS, window=1.0, hop=0.1, threshold=0.5, refractory=0.5)
    found = det.push(starts, rows) + det.flush()
    assert [d.keyword for d in found] == ["a", "b"]
    a, b = found
    assert (a.start, a.end, a.score) == pytest.approx((0.4, 1.2, 0.9))  # last window start, first window end
    assert (b.start, b.end, b.score) == pytest.approx((1.7, 2.6, 0.95))
    track = Track(starts, rows, LABELS, 1.0, 0.1, 1, 3.0)
    assert track.detect(0.5, 0.5) == found
    # without the refractory period the second 'a' run is reported too
    assert [d.keyword for d in track.detect(0.5, 0.0)] == ["a", "a", "b"]


def test_vectorised_track_detection_equals_the_streaming_detector(rng):
    for _ in range(20):
        n = int(rng.integers(5, 200))
        raw = rng.dirichlet([0.3, 0.3, 0.3], size=n).astype(np.float32)
        k = int(rng.integers(1, 5))
        rows = np.stack([raw[max(0, i - k + 1):i + 1].mean(0) for i in range(n)])
        starts = np.arange(n) * 0.1
        thr, refr = float(rng.uniform(0.3, 0.9)), float(rng.choice([0.0, 0.25, 1.0]))
        det = EventDetector(LABELS, 0.8, 0.1, thr, refr, smooth=k)
        cut = int(rng.integers(0, n))
        streamed = det.push(starts[:cut], rows[:cut]) + det.push(starts[cut:], rows[cut:]) + det.flush()
        assert Track(starts, rows, LABELS, 0.8, 0.1, k, n * 0.1).detect(thr, refr) == streamed


def test_wav_blocks_equal_load_audio(tmp_path, rng):
    stereo = (0.3 * rng.standard_normal((12345, 2))).astype(np.float32)
    write_wav(tmp_path / "s.wav", stereo, 16000)
    write_wav(tmp_path / "r.wav", stereo[:, 0], 8000)
    for name, sr in (("s.wav", 16000), ("r.wav", 16000)):
        blocks = list(iter_wav_blocks(tmp_path / name, sr, block_seconds=0.1))
        assert max(len(b) for b in blocks) == 1600
        np.testing.assert_array_equal(np.concatenate(blocks), load_audio(tmp_path / name, sr))
    (tmp_path / "bad.wav").write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="bad.wav"):
        next(iter_wav_blocks(tmp_path / "bad.wav", 16000))


def test_stream_config_rejects_bad_values():
    with pytest.raises(ValueError, match="smooth"):
        StreamConfig(smooth=0)
    with pytest.raises(ValueError, match="threshold"):
        StreamConfig(threshold=1.5)
    assert StreamConfig().window_samples(CFG) == 40 * 80
