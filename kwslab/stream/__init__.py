"""Streaming keyword detection and its evaluation (false alarms per hour, miss rate, DET curves).

NumPy only: importing this package never imports torch. A :class:`Backend` (the model) comes from
:mod:`kwslab.inference.backend`, from a checkpoint or an ONNX file.
"""
from kwslab.stream.backend import Backend
from kwslab.stream.blocks import iter_wav_blocks
from kwslab.decoding.keyword_search import Detection
from kwslab.stream.detector import (IGNORED_LABELS, EventDetector, EventSpan, StreamConfig, StreamingDetector,
                                    WindowScorer)
from kwslab.stream.metrics import (DetCurve, MatchResult, Track, TruthEvent, det_curve, match_detections,
                                   plot_det, select_threshold, threshold_for_target)

__all__ = [
    "Backend", "iter_wav_blocks", "IGNORED_LABELS", "Detection", "EventDetector", "EventSpan", "StreamConfig",
    "StreamingDetector", "WindowScorer", "DetCurve", "MatchResult", "Track", "TruthEvent", "det_curve",
    "match_detections", "plot_det", "select_threshold", "threshold_for_target",
]
