"""Running a model over time-stamped test streams: tracks, DET curve, the threshold for a target FA rate,
and the calibration record stored with the model (checkpoint key ``kwslab_threshold``, ONNX metadata
``threshold``) that ``predict --stream`` uses by default."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from kwslab.stream.backend import Backend
from kwslab.stream.blocks import iter_wav_blocks
from kwslab.stream.detector import StreamConfig, StreamingDetector
from kwslab.stream.metrics import DEFAULT_THRESHOLDS, DetCurve, Track, TruthEvent, det_curve, plot_det, \
    select_threshold, threshold_for_target


def stream_track(backend: Backend, path: str | Path, config: StreamConfig, block_seconds: float = 1.0) -> Track:
    """Slide the model over one recording (read block by block) and keep its smoothed posteriors."""
    det = StreamingDetector(backend.feature_config, backend.labels, backend.probabilities, config, keep_track=True)
    det.run(iter_wav_blocks(path, backend.feature_config.sample_rate, block_seconds))
    starts, probs = det.track()
    return Track(starts, probs, list(backend.labels), det.window_seconds, det.hop_seconds, config.smooth,
                 det.duration, config.ignore)


def evaluate_streams(backend: Backend, streams: Sequence[tuple[Path, float, Sequence[tuple[str, float, float]]]],
                     config: StreamConfig, *, target_fa_per_hour: float = 1.0, tolerance: float = 0.5,
                     png: str | Path | None = None, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                     title: str = "") -> dict[str, Any]:
    """FRR and false alarms per hour across thresholds on recordings with keyword time stamps.

    Args:
        backend: the model. streams: ``(wav path, duration, [(keyword, start, end), ...])`` per recording.
        config: stream settings (its threshold is ignored: all ``thresholds`` are tried).
        target_fa_per_hour: the false-alarm rate the chosen threshold must meet. tolerance: matching slack (s).
        png: where to save the DET curve (None: no plot). A failed write (read-only folder, full disk) is a
            warning in ``"warnings"`` and ``"png"`` None: the results are never lost to it.

    Returns:
        ``{"curve": [{threshold, frr, fa_per_hour, false_alarms, misses}], "chosen": {...} | None, "events",
        "hours", "calibration": record to store with the model (None when no threshold meets the target),
        "png", "warnings"}``.
    """
    unknown = sorted({k for _, _, ev in streams for k, _, _ in ev} - set(backend.labels))
    if unknown:
        raise ValueError(f"stream manifest: keywords the model does not know: {', '.join(unknown)} "
                         f"(the model knows {', '.join(backend.labels)})")
    tracks = [(stream_track(backend, p, config), [TruthEvent(k, a, b) for k, a, b in ev]) for p, _, ev in streams]
    curve = det_curve(tracks, config.refractory, tolerance, thresholds)
    chosen = select_threshold(curve, target_fa_per_hour)
    warnings = []
    if png is not None:
        try:
            plot_det(curve, png, title, chosen)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0][:200]
            warnings.append(f"{png}: could not write the DET curve ({reason}); pass --png PATH to save it elsewhere")
            png = None
    calibration = None
    if chosen is not None:
        stream = {k: v for k, v in config.to_dict().items() if k not in ("threshold", "max_batch")}
        calibration = {**chosen, "tolerance": tolerance, "hours": curve.hours, "events": curve.events,
                       "stream": stream,
                       "curve": [[float(t), float(r), float(f)]
                                 for t, r, f in zip(curve.thresholds, curve.frr, curve.fa_per_hour)]}
    return {"curve": curve.rows(), "chosen": chosen, "events": curve.events, "hours": curve.hours,
            "calibration": calibration, "png": str(png) if png else None, "warnings": warnings}


def config_from_calibration(calibration: dict[str, Any] | None, *, threshold: float | None = None,
                            target_fa_per_hour: float | None = None, **overrides: Any) -> StreamConfig:
    """The StreamConfig ``predict --stream`` uses: stored stream settings (if any), then ``overrides`` that are
    not None; the threshold from ``threshold``, else from the stored curve for ``target_fa_per_hour``, else the
    stored threshold, else 0.5.

    Raises:
        ValueError: a target FA rate without a stored curve, or one that no stored threshold meets.
    """
    cal = calibration or {}
    names = {f.name for f in dataclasses.fields(StreamConfig)}
    base = {k: (tuple(v) if k == "ignore" else v) for k, v in (cal.get("stream") or {}).items() if k in names}
    base.update({k: v for k, v in overrides.items() if v is not None})
    if threshold is None and target_fa_per_hour is not None:
        if not cal.get("curve"):
            raise ValueError("--target-fa-per-hour needs a calibrated model: run python -m kwslab.evaluate "
                             "--stream-manifest M --store-threshold first, or pass --threshold")
        threshold = threshold_for_target(cal["curve"], target_fa_per_hour)
        if threshold is None:
            lowest = min(row[2] for row in cal["curve"])
            raise ValueError(f"no calibrated threshold reaches {target_fa_per_hour:g} false alarms per hour "
                             f"(the lowest measured is {lowest:.3g})")
    if threshold is None:
        threshold = cal.get("threshold", 0.5)
    return StreamConfig(**{**base, "threshold": float(threshold)})


__all__ = ["DetCurve", "stream_track", "evaluate_streams", "config_from_calibration"]
