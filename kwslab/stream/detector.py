"""Streaming keyword detection: slide a keyword classifier over audio of any length, block by block.

Two stages, both fed incrementally, so a live stream (blocks of any size) gives exactly the rows and detections
of the whole file:

* :class:`WindowScorer`: audio blocks -> one posterior row per hop. Window ``k`` covers samples
  ``[k * hop, k * hop + window)``; its features are computed by the model's own ``FeatureExtractor`` (CMVN and
  pad/crop included, as in training) and scored by a ``probabilities`` callable ``(B, F, T) -> (B, C)``. Only the
  last window's worth of audio is kept. Rows are smoothed by a trailing moving average over ``smooth`` hops.
* :class:`EventDetector`: smoothed rows -> detections. An event opens when the best keyword class (labels in
  ``ignore`` never fire) reaches ``threshold``, lasts while it stays there, and is reported when it drops below
  it (or the stream ends). After a detection, no new one opens for ``refractory`` seconds.

A keyword lies inside every window that detected it, so a detection spans the intersection of those windows
(shifted back by the moving average's delay): from the last window's start to the first window's end.

NumPy only (no torch): the same code runs with the PyTorch and the ONNX Runtime backends.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from kwslab.data.manifest import SILENCE_LABEL, UNKNOWN_LABEL
from kwslab.decoding.keyword_search import Detection
from kwslab.dsp import FeatureConfig, FeatureExtractor

Probabilities = Callable[[np.ndarray], np.ndarray]  # (B, F, T) float32 features -> (B, C) class probabilities
IGNORED_LABELS = (SILENCE_LABEL, UNKNOWN_LABEL)


@dataclass(frozen=True)
class StreamConfig:
    """Settings of streaming detection (all times in seconds).

    Attributes:
        window: analysis window; None: the model's clip length (``(num_frames - 1) * hop_length`` samples, or
            1 s when the FeatureConfig has no ``num_frames``).
        hop: step between windows. Default 0.1.
        smooth: moving-average length in hops (1: none). Default 3.
        threshold: smoothed keyword posterior that fires a detection. Default 0.5.
        refractory: quiet time after a detection is reported. Default 1.0.
        max_batch: windows per model call. Default 16.
        ignore: labels that never fire (not keywords). Default ``("_silence_", "_unknown_")``.
    """

    window: float | None = None
    hop: float = 0.1
    smooth: int = 3
    threshold: float = 0.5
    refractory: float = 1.0
    max_batch: int = 16
    ignore: tuple[str, ...] = IGNORED_LABELS

    def __post_init__(self) -> None:
        checks = [("hop", self.hop > 0), ("smooth", isinstance(self.smooth, int) and self.smooth >= 1),
                  ("threshold", 0.0 <= self.threshold <= 1.0), ("refractory", self.refractory >= 0),
                  ("max_batch", isinstance(self.max_batch, int) and self.max_batch >= 1),
                  ("window", self.window is None or self.window >= self.hop)]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"StreamConfig.{name}={getattr(self, name)!r} is invalid (hop > 0, smooth >= 1, "
                                 "0 <= threshold <= 1, refractory >= 0, max_batch >= 1, window >= hop)")
        object.__setattr__(self, "ignore", tuple(self.ignore))

    def window_samples(self, cfg: FeatureConfig) -> int:
        """The window length in samples for the model's features."""
        if self.window is not None:
            return max(1, round(self.window * cfg.sample_rate))
        if cfg.num_frames is None:
            return cfg.sample_rate
        return (cfg.num_frames - 1) * cfg.hop_length + (0 if cfg.center else cfg.n_fft)

    def hop_samples(self, cfg: FeatureConfig) -> int:
        """The hop in samples (at least 1)."""
        return max(1, round(self.hop * cfg.sample_rate))

    def to_dict(self) -> dict:
        """Plain JSON-safe values."""
        return {**asdict(self), "ignore": list(self.ignore)}


def _as_block(block: np.ndarray) -> np.ndarray:
    x = np.asarray(block)
    if x.ndim == 2:  # (n, channels): mix down as load_audio does
        x = x.mean(axis=1, dtype=np.float64)
    if x.ndim != 1 or (x.size and x.dtype.kind not in "fiu"):
        raise ValueError(f"stream block: expected 1-D audio samples (or (n, channels)), got {x.dtype} {x.shape}")
    return x.astype(np.float32, copy=False)


class WindowScorer:
    """Audio blocks -> smoothed posterior rows, one per hop (see the module docstring).

    Args:
        feature_config: the model's FeatureConfig (blocks must be at its sample rate).
        probabilities: ``(B, F, T)`` features -> ``(B, C)`` probabilities.
        window: window length in samples.
        hop: hop in samples (<= window).
        smooth: moving-average length in rows. Default 1.
        max_batch: windows per ``probabilities`` call. Default 16.
    """

    def __init__(self, feature_config: FeatureConfig, probabilities: Probabilities, window: int, hop: int,
                 smooth: int = 1, max_batch: int = 16) -> None:
        if not 1 <= hop <= window:
            raise ValueError(f"WindowScorer: need 1 <= hop <= window samples, got hop={hop}, window={window}")
        self.extract = FeatureExtractor(feature_config)
        self.probabilities = probabilities
        self.window, self.hop, self.smooth, self.max_batch = window, hop, smooth, max_batch
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next block starts a new stream at time 0."""
        self._buf = np.zeros(0, np.float32)  # audio from sample self._buf_start on
        self._buf_start = 0
        self._next = 0  # index of the next window to score
        self._total = 0  # samples received
        self._recent: deque[np.ndarray] = deque(maxlen=max(1, self.smooth - 1))
        self._finished = False

    @property
    def samples(self) -> int:
        """Samples received so far."""
        return self._total

    def push(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add audio; returns ``(starts (n,), probs (n, C))`` for the windows it completed (start in samples)."""
        if self._finished:
            raise RuntimeError("WindowScorer: push after flush; call reset() to start a new stream")
        x = _as_block(block)
        self._buf = np.concatenate([self._buf, x]) if self._buf.size else x.copy()
        self._total += x.size
        windows, starts = [], []
        while self._next * self.hop + self.window <= self._total:
            s = self._next * self.hop - self._buf_start
            windows.append(self._buf[s:s + self.window])
            starts.append(self._next * self.hop)
            self._next += 1
        rows = self._score(windows)
        keep = self._next * self.hop - self._buf_start  # the next window's first sample
        if keep > 0:
            self._buf, self._buf_start = self._buf[keep:].copy(), self._buf_start + keep
        return np.array(starts, dtype=np.int64), rows

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: score the last, partial windows so that the windows cover all audio received."""
        self._finished = True
        if self._total == 0:
            return np.zeros(0, np.int64), self._score([])
        last = max(0, math.ceil((self._total - self.window) / self.hop))
        starts = list(range(self._next * self.hop, last * self.hop + 1, self.hop))
        rows = [self._score([self._buf[s - self._buf_start:]]) for s in starts]  # unequal lengths: one by one
        self._next = last + 1
        return np.array(starts, dtype=np.int64), np.concatenate(rows) if rows else self._score([])

    def _score(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        raw = []
        for b in range(0, len(windows), self.max_batch):
            feats = np.stack([self.extract(w) for w in windows[b:b + self.max_batch]])  # (B, F, T)
            raw.append(np.asarray(self.probabilities(feats), dtype=np.float32))
        if not raw:
            return np.zeros((0, 0), np.float32)
        out = []
        for row in np.concatenate(raw):
            history = [*self._recent, row]
            out.append(np.mean(np.stack(history), axis=0, dtype=np.float64).astype(np.float32))
            self._recent.append(row)
        return np.stack(out)


@dataclass
class EventSpan:
    """A run of windows whose best keyword score stayed at or above the threshold: the first and last window
    starts (s), the peak smoothed posterior per keyword class ``(K,)`` and the start of the window that held the
    highest one."""

    first: float
    last: float
    peaks: np.ndarray
    peak_start: float

    def detection(self, keywords: Sequence[str], window: float, delay: float) -> Detection:
        """The detection this run reports: its best keyword, over the intersection of the detecting windows of
        ``window`` seconds, shifted back by the moving average's ``delay``."""
        k = int(np.argmax(self.peaks))
        start, end = self.last - delay, self.first - delay + window  # intersection of the detecting windows
        if end <= start:  # a run longer than a window: fall back on the peak window
            start, end = self.peak_start - delay, self.peak_start - delay + window
        return Detection(keywords[k], max(0.0, start), max(0.0, end), float(self.peaks[k]))


class EventDetector:
    """Smoothed posterior rows -> detections (threshold, then refractory period); see the module docstring.

    Args:
        labels: class names of the posterior columns.
        window: window length (s).
        hop: hop (s); with ``smooth`` it gives the moving average's delay.
        threshold: posterior that fires. refractory: quiet time (s) after a detection. smooth: rows averaged.
        ignore: labels that never fire.
    """

    def __init__(self, labels: Sequence[str], window: float, hop: float, threshold: float, refractory: float,
                 smooth: int = 1, ignore: Iterable[str] = IGNORED_LABELS) -> None:
        ignored = set(ignore)
        self.columns = [i for i, lab in enumerate(labels) if lab not in ignored]
        if not self.columns:
            raise ValueError(f"EventDetector: every label is ignored ({list(labels)}); nothing can be detected")
        self.keywords = [labels[i] for i in self.columns]
        self.window, self.threshold, self.refractory = window, threshold, refractory
        self.delay = (smooth - 1) / 2 * hop
        self._open: EventSpan | None = None
        self._quiet_until = -math.inf  # a new event may open once a window's end reaches this

    def push(self, starts: np.ndarray, probs: np.ndarray) -> list[Detection]:
        """Feed rows: window starts (s, increasing) and ``(n, C)`` smoothed probabilities."""
        found = []
        for t, row in zip(np.asarray(starts, dtype=np.float64).tolist(), np.asarray(probs)[:, self.columns]):
            score = float(row.max())
            ev = self._open
            if ev is not None and score >= self.threshold:
                if score > float(ev.peaks.max()):
                    ev.peak_start = t
                np.maximum(ev.peaks, row, out=ev.peaks)
                ev.last = t
            elif ev is not None:
                found.append(ev.detection(self.keywords, self.window, self.delay))
                self._open, self._quiet_until = None, t + self.window + self.refractory
            elif score >= self.threshold and t + self.window >= self._quiet_until:
                self._open = EventSpan(t, t, row.astype(np.float32, copy=True), t)
        return found

    def flush(self) -> list[Detection]:
        """End of stream: report an event still open."""
        ev, self._open = self._open, None
        return [] if ev is None else [ev.detection(self.keywords, self.window, self.delay)]


@dataclass
class StreamingDetector:
    """Blocks of audio in, detections out: a :class:`WindowScorer` feeding an :class:`EventDetector`.

    Args:
        feature_config: the model's FeatureConfig; blocks must be mono audio at its sample rate.
        labels: the model's class names.
        probabilities: ``(B, F, T) -> (B, C)`` class probabilities (PyTorch or ONNX Runtime backend).
        config: :class:`StreamConfig`.
        keep_track: also keep every smoothed row (``track()``), for threshold sweeps.
    """

    feature_config: FeatureConfig
    labels: list[str]
    probabilities: Probabilities
    config: StreamConfig = field(default_factory=StreamConfig)
    keep_track: bool = False

    def __post_init__(self) -> None:
        cfg, sr = self.config, self.feature_config.sample_rate
        win, hop = cfg.window_samples(self.feature_config), cfg.hop_samples(self.feature_config)
        if hop > win:
            raise ValueError(f"stream hop {cfg.hop} s is longer than the window {win / sr} s")
        self.window_seconds, self.hop_seconds = win / sr, hop / sr
        self.scorer = WindowScorer(self.feature_config, self.probabilities, win, hop, cfg.smooth, cfg.max_batch)
        self.events = EventDetector(self.labels, self.window_seconds, self.hop_seconds, cfg.threshold,
                                    cfg.refractory, cfg.smooth, cfg.ignore)
        self._starts: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []

    def _feed(self, starts: np.ndarray, rows: np.ndarray) -> list[Detection]:
        seconds = starts / self.feature_config.sample_rate
        if self.keep_track and len(starts):
            self._starts.append(seconds)
            self._rows.append(rows)
        return self.events.push(seconds, rows) if len(starts) else []

    def push(self, block: np.ndarray) -> list[Detection]:
        """Add a block of audio (any length); returns the detections completed by it."""
        return self._feed(*self.scorer.push(block))

    def flush(self) -> list[Detection]:
        """End of stream: score the last partial windows and report what is still open."""
        return self._feed(*self.scorer.flush()) + self.events.flush()

    def run(self, blocks: Iterable[np.ndarray]) -> list[Detection]:
        """Feed every block, then flush; returns all detections."""
        found: list[Detection] = []
        for block in blocks:
            found += self.push(block)
        return found + self.flush()

    def track(self) -> tuple[np.ndarray, np.ndarray]:
        """``(starts (n,) s, probs (n, C))``: every smoothed row so far (needs ``keep_track=True``)."""
        if not self._starts:
            return np.zeros(0), np.zeros((0, len(self.labels)), np.float32)
        return np.concatenate(self._starts), np.concatenate(self._rows)

    @property
    def duration(self) -> float:
        """Seconds of audio received."""
        return self.scorer.samples / self.feature_config.sample_rate
