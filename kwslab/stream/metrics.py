"""Scoring detections against time-stamped truth: misses (FRR), false alarms per hour, DET curves, thresholds.

A detection matches a truth event of the same keyword when ``[start - tolerance, end + tolerance]`` overlaps the
event; each event is matched at most once (detections are taken in order of score, each to the unmatched event it
overlaps most). Unmatched detections are false alarms; unmatched events are misses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from kwslab.decoding.keyword_search import Detection
from kwslab.stream.detector import IGNORED_LABELS, EventSpan


@dataclass(frozen=True)
class TruthEvent:
    """A keyword spoken from ``start`` to ``end`` seconds into a stream."""

    keyword: str
    start: float
    end: float


@dataclass
class MatchResult:
    """Counts of one stream (or of several, summed)."""

    events: int
    hits: int
    false_alarms: int
    pairs: list[tuple[int, int]]  # (detection index, event index)

    @property
    def misses(self) -> int:
        return self.events - self.hits


def match_detections(detections: Sequence[Detection], events: Sequence[TruthEvent],
                     tolerance: float = 0.5) -> MatchResult:
    """Match detections to truth events (see the module docstring).

    Args:
        detections: what the detector reported.
        events: the truth.
        tolerance: seconds added on both sides of a detection before testing overlap. Default 0.5.
    """
    taken = [False] * len(events)
    pairs = []
    for d in sorted(range(len(detections)), key=lambda i: (-detections[i].score, detections[i].start)):
        det = detections[d]
        lo, hi = det.start - tolerance, det.end + tolerance
        best, best_overlap = -1, -math.inf
        for e, ev in enumerate(events):
            if taken[e] or ev.keyword != det.keyword or ev.end < lo or ev.start > hi:
                continue
            overlap = min(hi, ev.end) - max(lo, ev.start)
            if overlap > best_overlap:
                best, best_overlap = e, overlap
        if best >= 0:
            taken[best] = True
            pairs.append((d, best))
    return MatchResult(len(events), len(pairs), len(detections) - len(pairs), sorted(pairs, key=lambda p: p[1]))


@dataclass
class Track:
    """The smoothed posteriors of one stream, for sweeping thresholds without re-running the model.

    Attributes:
        starts: ``(n,)`` window starts (s). probs: ``(n, C)`` smoothed posteriors. labels: the C class names.
        window, hop: seconds. smooth: rows averaged. duration: seconds of audio.
    """

    starts: np.ndarray
    probs: np.ndarray
    labels: list[str]
    window: float
    hop: float
    smooth: int
    duration: float
    ignore: tuple[str, ...] = IGNORED_LABELS

    def detect(self, threshold: float, refractory: float) -> list[Detection]:
        """The detections :class:`~kwslab.stream.detector.EventDetector` gives on these rows, found run by run
        (an independent, vectorised implementation: only rows above the threshold are visited)."""
        cols = [i for i, lab in enumerate(self.labels) if lab not in set(self.ignore)]
        keywords = [self.labels[i] for i in cols]
        kw = self.probs[:, cols]
        above = np.flatnonzero(kw.max(axis=1) >= threshold)
        if not above.size:
            return []
        breaks = np.flatnonzero(np.diff(above) > 1)
        runs = zip(above[np.r_[0, breaks + 1]], above[np.r_[breaks, above.size - 1]])
        delay, quiet_until, found = (self.smooth - 1) / 2 * self.hop, -math.inf, []
        for r0, r1 in runs:
            ok = np.flatnonzero(self.starts[r0:r1 + 1] + self.window >= quiet_until)
            if not ok.size:
                continue
            a = r0 + int(ok[0])
            peak = a + int(np.argmax(kw[a:r1 + 1].max(axis=1)))  # first row of the highest score
            ev = EventSpan(float(self.starts[a]), float(self.starts[r1]), kw[a:r1 + 1].max(axis=0),
                           float(self.starts[peak]))
            found.append(ev.detection(keywords, self.window, delay))
            if r1 + 1 < len(self.starts):
                quiet_until = float(self.starts[r1 + 1]) + self.window + refractory
            else:
                quiet_until = math.inf
        return found


DEFAULT_THRESHOLDS = tuple(sorted(set(np.round(np.r_[np.arange(0.02, 1.0, 0.02),
                                                     1.0 - np.logspace(-2, -5, 13)], 6).tolist())))


@dataclass
class DetCurve:
    """Miss rate and false alarms per hour at each threshold (ascending thresholds)."""

    thresholds: np.ndarray
    frr: np.ndarray
    fa_per_hour: np.ndarray
    false_alarms: np.ndarray
    misses: np.ndarray
    events: int
    hours: float

    def rows(self) -> list[dict]:
        """One dict per threshold: ``threshold, frr, fa_per_hour, false_alarms, misses``."""
        return [{"threshold": float(t), "frr": float(r), "fa_per_hour": float(f), "false_alarms": int(a),
                 "misses": int(m)}
                for t, r, f, a, m in zip(self.thresholds, self.frr, self.fa_per_hour, self.false_alarms,
                                         self.misses)]


def det_curve(tracks: Sequence[tuple[Track, Sequence[TruthEvent]]], refractory: float, tolerance: float = 0.5,
              thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> DetCurve:
    """Sweep thresholds over the tracks of several streams and their truth events.

    Returns:
        FRR = missed events / all events, and false alarms per hour of audio, per threshold.
    """
    ts = np.array(sorted(set(float(t) for t in thresholds)))
    hours = sum(t.duration for t, _ in tracks) / 3600.0
    if hours <= 0:
        raise ValueError("det_curve: the streams hold no audio")
    events = sum(len(ev) for _, ev in tracks)
    fas, misses = np.zeros(len(ts), np.int64), np.zeros(len(ts), np.int64)
    for i, thr in enumerate(ts):
        for track, truth in tracks:
            m = match_detections(track.detect(thr, refractory), truth, tolerance)
            fas[i] += m.false_alarms
            misses[i] += m.misses
    frr = misses / events if events else np.zeros(len(ts))
    return DetCurve(ts, frr, fas / hours, fas, misses, events, hours)


def select_threshold(curve: DetCurve, target_fa_per_hour: float) -> dict | None:
    """The threshold with the lowest miss rate among those with ``fa_per_hour <= target`` (ties: lowest FA/h,
    then the middle of the tied thresholds). None when no threshold meets the target."""
    ok = np.flatnonzero(curve.fa_per_hour <= target_fa_per_hour + 1e-12)
    if not ok.size:
        return None
    key = np.lexsort((curve.fa_per_hour[ok], curve.frr[ok]))
    best = ok[key[0]]
    tied = [i for i in ok if curve.frr[i] == curve.frr[best] and curve.fa_per_hour[i] == curve.fa_per_hour[best]]
    pick = tied[len(tied) // 2]
    return {"threshold": float(curve.thresholds[pick]), "frr": float(curve.frr[pick]),
            "fa_per_hour": float(curve.fa_per_hour[pick]), "target_fa_per_hour": float(target_fa_per_hour)}


def threshold_for_target(curve_rows: Sequence[Sequence[float]], target_fa_per_hour: float) -> float | None:
    """Pick a threshold from a stored curve ``[[threshold, frr, fa_per_hour], ...]`` (as kept in a checkpoint)."""
    arr = np.asarray(curve_rows, dtype=np.float64).reshape(-1, 3)
    curve = DetCurve(arr[:, 0], arr[:, 1], arr[:, 2], np.zeros(len(arr)), np.zeros(len(arr)), 0, 0.0)
    chosen = select_threshold(curve, target_fa_per_hour)
    return None if chosen is None else chosen["threshold"]


def plot_det(curve: DetCurve, path: str | Path, title: str = "", chosen: dict | None = None) -> Path:
    """Save the DET curve (miss rate vs false alarms per hour) as a PNG, written atomically (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=120)
    # in threshold order (a parametric curve): very low thresholds merge events and can turn back
    ax.plot(curve.fa_per_hour, 100 * curve.frr, marker=".", lw=1.2)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false alarms per hour")
    ax.set_ylabel("miss rate (FRR, %)")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    if chosen:
        ax.axvline(chosen["target_fa_per_hour"], color="grey", ls="--", lw=0.8)
        ax.plot([chosen["fa_per_hour"]], [100 * chosen["frr"]], "o", color="C3",
                label=f"threshold {chosen['threshold']:.4g}: FRR {100 * chosen['frr']:.1f}%, "
                      f"{chosen['fa_per_hour']:.2f} FA/h")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"DET: {curve.events} keywords, {curve.hours:.2f} h", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        fig.savefig(tmp)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
