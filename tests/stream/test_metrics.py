"""Matching detections to truth, FRR and false alarms per hour, threshold choice, the DET plot."""
from __future__ import annotations

import numpy as np
import pytest

from kwslab.stream import (Detection, Track, TruthEvent, det_curve, match_detections, plot_det, select_threshold,
                           threshold_for_target)
from kwslab.stream.metrics import DetCurve

TRUTH = [TruthEvent("yes", 10.0, 10.5), TruthEvent("no", 20.0, 20.4), TruthEvent("yes", 30.0, 30.5)]


def test_matching_counts_hits_misses_and_false_alarms():
    dets = [Detection("yes", 10.2, 10.9, 0.9),   # hit (overlaps)
            Detection("yes", 10.6, 11.0, 0.8),   # same event again: a false alarm
            Detection("no", 29.0, 29.8, 0.7),    # wrong keyword at a 'yes': false alarm
            Detection("yes", 30.9, 31.2, 0.6),   # 0.4 s after the event: a hit only thanks to the tolerance
            Detection("no", 50.0, 50.5, 0.95)]   # nothing there: false alarm
    m = match_detections(dets, TRUTH, tolerance=0.5)
    assert (m.hits, m.misses, m.false_alarms) == (2, 1, 3)
    assert m.pairs == [(0, 0), (3, 2)]
    strict = match_detections(dets, TRUTH, tolerance=0.0)
    assert (strict.hits, strict.false_alarms) == (1, 4)
    assert match_detections([], TRUTH).misses == 3


def test_the_higher_score_takes_the_event():
    dets = [Detection("yes", 10.0, 10.5, 0.3), Detection("yes", 9.9, 10.4, 0.8)]
    assert match_detections(dets, TRUTH[:1]).pairs == [(1, 0)]


def _track() -> Track:
    # one row per 0.1 s over 3600 s of 'audio' is too much; the duration is what FA/hour divides by
    starts = np.arange(0, 40, 0.1)
    probs = np.zeros((len(starts), 3), np.float32)
    probs[:, 0] = 1.0
    for lo, hi, col, p in ((9.4, 10.2, 2, 0.9), (29.5, 30.2, 2, 0.6), (35.0, 35.5, 1, 0.7)):
        sel = (starts >= lo) & (starts <= hi)
        probs[sel] = 0.0
        probs[sel, col], probs[sel, 0] = p, 1 - p
    return Track(starts, probs, ["_silence_", "no", "yes"], 1.0, 0.1, 1, duration=1800.0)


def test_det_curve_by_hand():
    curve = det_curve([(_track(), TRUTH)], refractory=0.5, tolerance=0.2, thresholds=[0.5, 0.65, 0.8, 0.95])
    assert curve.hours == 0.5 and curve.events == 3
    # 0.5: both 'yes' found, 'no' missed, the 'no' at 35 s is a false alarm; 0.65: the weak 'yes' is lost;
    # 0.8: only the strong 'yes'; 0.95: nothing
    assert curve.misses.tolist() == [1, 2, 2, 3]
    assert curve.false_alarms.tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(curve.fa_per_hour, [2.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(curve.frr, [1 / 3, 2 / 3, 2 / 3, 1.0])
    chosen = select_threshold(curve, 1.0)
    assert chosen == {"threshold": 0.8, "frr": pytest.approx(2 / 3), "fa_per_hour": 0.0, "target_fa_per_hour": 1.0}
    assert select_threshold(curve, 5.0)["threshold"] == 0.5


def test_threshold_selection_ties_and_impossible_targets():
    curve = DetCurve(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), np.array([0.0, 0.1, 0.1, 0.1, 0.4]),
                     np.array([9.0, 0.5, 0.5, 0.5, 0.0]), np.zeros(5), np.zeros(5), 10, 1.0)
    assert select_threshold(curve, 1.0)["threshold"] == 0.3  # the middle of the tied plateau
    assert select_threshold(curve, 0.1)["threshold"] == 0.5
    shifted = DetCurve(curve.thresholds, curve.frr, curve.fa_per_hour + 1, curve.false_alarms, curve.misses, 10, 1)
    assert select_threshold(shifted, 0.5) is None
    rows = [[t, r, f] for t, r, f in zip(curve.thresholds, curve.frr, curve.fa_per_hour)]
    assert threshold_for_target(rows, 1.0) == 0.3 and threshold_for_target(rows, -1) is None


def test_plot_det_writes_a_png_and_no_temp_files(tmp_path):
    curve = det_curve([(_track(), TRUTH)], refractory=0.5)
    path = plot_det(curve, tmp_path / "det" / "curve.png", chosen=select_threshold(curve, 2.0))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["curve.png"]
