"""Torch-free inference on a model exported by ``python -m kwslab.export``: NumPy features + ONNX Runtime.

Everything the model needs travels in the ONNX file's ``metadata_props`` (JSON values): ``kind`` ("keyword" or
"ctc"), ``feature_config``, ``labels`` (classes, or CTC tokens with "" at the blank), ``threshold`` (the
calibration stored by ``evaluate --stream-manifest``, or null) and ``input_frames`` (fixed frame count or null).
This module imports neither torch nor Lightning.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kwslab.audio import check_clip, load_audio
from kwslab.dsp import FeatureConfig, FeatureExtractor

FORMAT = "kwslab-onnx-1"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(B, C)`` logits (float32)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


class OnnxModelError(ValueError):
    """An ONNX file that is missing, unreadable, or lacks kwslab metadata (the message names the file)."""


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The kwslab metadata of an ONNX file, JSON-decoded (``{"kind", "feature_config", "labels", ...}``)."""
    return OnnxModel(path).metadata


class OnnxModel:
    """An exported kwslab model on ONNX Runtime (CPU).

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default 1: predictable latency, fair to other processes).
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"{self.path}: ONNX model not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise OnnxModelError(f"{self.path}: not a loadable ONNX model ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        raw = self.session.get_modelmeta().custom_metadata_map
        if raw.get("kwslab_format") != FORMAT:
            raise OnnxModelError(f"{self.path}: no kwslab metadata (kwslab_format={raw.get('kwslab_format')!r}); "
                                 "export the model with python -m kwslab.export")
        try:
            self.metadata = {k: json.loads(v) for k, v in raw.items() if k != "kwslab_format"}
            self.feature_config = FeatureConfig.from_dict(self.metadata["feature_config"])
            self.labels: list[str] = list(self.metadata["labels"])
            self.kind: str = self.metadata["kind"]
        except (ValueError, KeyError, TypeError) as exc:
            raise OnnxModelError(f"{self.path}: broken kwslab metadata ({exc})") from None
        self.calibration: dict[str, Any] | None = self.metadata.get("threshold")
        self.input_frames: int | None = self.metadata.get("input_frames")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.extractor = FeatureExtractor(self.feature_config)

    def features(self, path: str | Path) -> np.ndarray:
        """Read any WAV the reader accepts, resample, and extract ``(F, T)`` float32 features (a WavError naming
        the file when it cannot be read or holds nothing to score: 0 samples, all zeros)."""
        return self.extractor(check_clip(load_audio(path, self.feature_config.sample_rate), path))

    def logits(self, feats: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Keyword model: ``(B, C)`` logits for ``(B, F, T)`` features (or a list of equal ``(F, T)``)."""
        if self.kind != "keyword":
            raise OnnxModelError(f"{self.path}: a {self.kind} model has no class logits; use log_probs()")
        x = np.ascontiguousarray(np.stack(feats) if not isinstance(feats, np.ndarray) else feats, np.float32)
        return self.session.run(None, {self.input_names[0]: x})[0]

    def probabilities(self, feats: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Keyword model: ``(B, C)`` softmax probabilities."""
        return softmax(self.logits(feats))

    def log_probs(self, feats: np.ndarray, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """CTC model: ``(B, F, T)`` features (+ ``(B,)`` frame counts) -> ``(B, T', V)`` log-probs and ``(B,)``
        output lengths. Padding is not masked: run one utterance per call (or equal lengths) for exact results."""
        if self.kind != "ctc":
            raise OnnxModelError(f"{self.path}: a {self.kind} model; use logits()")
        x = np.ascontiguousarray(feats, np.float32)
        if lengths is None:
            lengths = np.full(x.shape[0], x.shape[2], np.int64)
        out = self.session.run(None, {self.input_names[0]: x, self.input_names[1]: np.asarray(lengths, np.int64)})
        return out[0], out[1]
