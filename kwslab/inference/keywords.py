"""Keyword models on audio files: the keyword (and confidence) per clip, and detections in a long recording.

Used by ``python -m kwslab.predict``. The ONNX path never imports torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kwslab.audio import WavError, wav_info
from kwslab.dsp import FeatureConfig
from kwslab.stream.backend import Backend

__all__ = ["classify", "detect_stream", "long_clip_warning", "predict_files", "predict_files_onnx", "read_error"]

LONG_CLIP_RATIO = 4 / 3  # warn when more than a quarter of a file lies beyond the model's window


def read_error(path: str | Path, exc: Exception) -> str:
    """One line for a file that could not be read, naming it once (WavError messages already name the file)."""
    return str(exc) if str(path) in str(exc) else f"{path}: {exc}"


def predict_files(ckpt: str | Path, files: Sequence[str | Path], top_k: int = 1,
                  model: object | None = None) -> tuple[list[dict], list[str]]:
    """Returns (results, errors): per readable file ``{"file", "keyword", "confidence", "top": [[label, p], ...]}``.
    ``model``: an already loaded :class:`~kwslab.inference.loaded.LoadedModel` of ``ckpt``."""
    import torch

    from kwslab.inference.loaded import load_model

    model = model or load_model(ckpt)

    def probabilities(feats: np.ndarray) -> np.ndarray:
        return torch.softmax(model.logits([feats])[0], dim=-1).numpy()

    return classify(model.features, probabilities, model.labels, files, top_k, model.feature_config)


def predict_files_onnx(onnx: str | Path, files: Sequence[str | Path], top_k: int = 1) -> tuple[list[dict], list[str]]:
    """Like :func:`predict_files`, on an exported keyword model with ONNX Runtime (no torch)."""
    from kwslab.inference.onnx import OnnxModel, OnnxModelError

    model = OnnxModel(onnx)
    if model.kind != "keyword":
        raise OnnxModelError(f"{onnx}: a {model.kind} model; predict classifies with keyword models")
    return classify(model.features, lambda f: model.probabilities([f])[0], model.labels, files, top_k,
                    model.feature_config)


def long_clip_warning(path: str | Path, feature_config: FeatureConfig | None) -> str | None:
    """A warning when ``path`` is much longer than the model's window: a keyword model with a fixed frame count
    scores the first window only (the rest is cropped), so a long recording gets one confident answer about its
    first second. None for short files, models of any length, or files whose header cannot be read."""
    window = feature_config.num_samples if feature_config is not None else None
    if not window:
        return None
    try:
        duration = wav_info(path).duration
    except (WavError, OSError, ValueError):
        return None
    seconds = window / feature_config.sample_rate
    if duration <= LONG_CLIP_RATIO * seconds:
        return None
    return (f"{path}: {duration:.1f} s long, but the model scores only its first {seconds:.2f} s (its window); "
            "for a recording, use --stream FILE to detect keywords over its whole length")


def classify(features: Callable[[str | Path], np.ndarray], probabilities: Callable[[np.ndarray], np.ndarray],
             labels: list[str], files: Sequence[str | Path], top_k: int,
             feature_config: FeatureConfig | None = None) -> tuple[list[dict], list[str]]:
    """The ``top_k`` labels per file from a features function and a ``(F, T) -> (C,)`` probabilities function;
    unreadable files become one error line each and the others are still classified. With the model's
    ``feature_config``, a file much longer than its window gets a ``"warning"`` (:func:`long_clip_warning`)."""
    k = max(1, min(top_k, len(labels)))
    results, errors = [], []
    for f in files:
        try:
            feats = features(f)
        except (WavError, OSError, ValueError) as exc:
            errors.append(read_error(f, exc))
            continue
        probs = probabilities(feats)
        idx = sorted(range(len(labels)), key=lambda i: -float(probs[i]))[:k]
        top = [[labels[i], round(float(probs[i]), 6)] for i in idx]
        results.append({"file": str(f), "keyword": top[0][0], "confidence": top[0][1], "top": top})
        warning = long_clip_warning(f, feature_config)
        if warning:
            results[-1]["warning"] = warning
    return results, errors


def detect_stream(backend: Backend, path: str | Path, *, threshold: float | None = None,
                  target_fa_per_hour: float | None = None, block_seconds: float = 1.0, **overrides) -> dict:
    """Streaming detection over one recording; returns ``{"file", "threshold", "settings", "duration",
    "detections": [{keyword, start, end, score}]}``. ``overrides``: StreamConfig fields (None: keep)."""
    from kwslab.stream import StreamingDetector, iter_wav_blocks
    from kwslab.stream.evaluation import config_from_calibration

    cfg = config_from_calibration(backend.calibration, threshold=threshold, target_fa_per_hour=target_fa_per_hour,
                                  **overrides)
    det = StreamingDetector(backend.feature_config, backend.labels, backend.probabilities, cfg)
    found = det.run(iter_wav_blocks(path, backend.feature_config.sample_rate, block_seconds))
    return {"file": str(path), "threshold": cfg.threshold, "settings": cfg.to_dict(),
            "duration": round(det.duration, 3), "detections": [d.to_dict() for d in found]}
