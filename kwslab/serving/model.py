"""A model served over HTTP: loaded once, answering for WAV bytes and audio blocks (no web framework here).

:func:`load_served` opens a checkpoint (PyTorch) or an exported ONNX file (ONNX Runtime and NumPy only: torch is
never imported) of either kind, and :class:`ServedModel` answers as ``python -m kwslab.predict`` does:

* keyword models: ``{"file", "keyword", "confidence", "top": [[label, p], ...]}`` through
  :func:`kwslab.inference.keywords.classify` (the same rounding and ordering), and a
  :class:`~kwslab.stream.StreamingDetector` over the model's :class:`~kwslab.stream.Backend` for live audio;
* CTC models: ``{"file", "text", "greedy"[, "beam"]}``, as :func:`kwslab.inference.ctc.transcribe_files` gives,
  with the LM and hotwords loaded once at start instead of once per request.

Request bodies are decoded in memory by :func:`kwslab.audio.read_wav_bytes` and checked by
:func:`kwslab.audio.check_clip`; what a client got wrong is a :class:`RequestError` carrying its HTTP status.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kwslab.audio import WavError, check_clip, read_wav_bytes, resample
from kwslab.decoding import beam_search_batch, greedy
from kwslab.decoding.settings import DecoderSettings
from kwslab.dsp import FeatureConfig, cached_extractor
from kwslab.inference.keywords import LONG_CLIP_RATIO, classify
from kwslab.stream import Backend, StreamingDetector
from kwslab.stream.evaluation import config_from_calibration
from kwslab.text import CharVocab, vocab_from_tokens

__all__ = ["Limits", "RequestError", "ServedModel", "load_served"]


class RequestError(ValueError):
    """What a client sent that the service refuses: ``status`` is the HTTP status, the message one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may hold.

    Attributes:
        max_bytes: request body (``POST /predict``) and one streamed message, in bytes. Default 10 MB.
        max_seconds: audio duration of one ``POST /predict`` clip. Default 30 s.
        max_stream_seconds: audio one ``/stream`` connection may send. Default 3600 s.
    """

    max_bytes: int = 10_000_000
    max_seconds: float = 30.0
    max_stream_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if not (self.max_bytes >= 1 and self.max_seconds > 0 and self.max_stream_seconds > 0):
            raise ValueError(f"Limits: every limit must be > 0, got {self}")


@dataclass
class ServedModel:
    """A loaded model and what answering needs.

    Attributes:
        kind: ``"keyword"`` or ``"ctc"``. source: the checkpoint or ONNX file. format: ``"checkpoint"``/``"onnx"``.
        feature_config, labels: the model's own. backend: keyword models (probabilities ``(B, F, T) -> (B, C)``,
        stream calibration). log_probs: CTC models, ``(F, T)`` features -> ``(T', V)`` log-probabilities.
        vocab, settings, decoder: CTC decoding (``decoder``: LM and hotwords, loaded once).
    """

    kind: str
    source: Path
    format: str
    feature_config: FeatureConfig
    labels: list[str]
    backend: Backend | None = None
    log_probs: Callable[[np.ndarray], np.ndarray] | None = None
    vocab: CharVocab | None = None
    settings: DecoderSettings = field(default_factory=DecoderSettings)
    decoder: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.extract = cached_extractor(self.feature_config)

    @property
    def window_seconds(self) -> float | None:
        """A keyword model's clip length (what one ``/predict`` scores), None for models of any length."""
        n = self.feature_config.num_samples if self.kind == "keyword" else None
        return n / self.feature_config.sample_rate if n else None

    def metadata(self) -> dict[str, Any]:
        """``GET /model``: kind, labels, features, source, and what a stream needs to know."""
        meta: dict[str, Any] = {"kind": self.kind, "format": self.format, "source": self.source.name,
                                "labels": self.labels, "sample_rate": self.feature_config.sample_rate,
                                "features": self.feature_config.to_dict()}
        if self.kind == "keyword":
            meta["window_seconds"] = self.window_seconds
            cal = self.backend.calibration if self.backend else None
            meta["stream_threshold"] = cal.get("threshold") if cal else None
        else:
            meta["decoder"] = {"beam_width": self.settings.beam_width, "lm": bool(self.settings.lm),
                               "hotwords": list(self.settings.hotwords)}
        return meta

    def samples(self, data: bytes, name: str, max_seconds: float) -> tuple[np.ndarray, float]:
        """Mono float32 samples at the model's rate from WAV bytes, and the clip's duration (s), as
        :func:`kwslab.audio.load_audio` reads a file. Raises RequestError: 400 (the reader's message or
        :func:`~kwslab.audio.check_clip`'s), 413 (longer than ``max_seconds``)."""
        try:
            x, sr = read_wav_bytes(data, name)
        except (WavError, ValueError) as exc:
            raise RequestError(400, str(exc)) from None
        duration = x.shape[0] / sr
        if duration > max_seconds:
            raise RequestError(413, f"{name}: {duration:.1f} s of audio; this server takes clips up to "
                                    f"{max_seconds:g} s on /predict (use the /stream WebSocket for recordings)")
        if x.ndim == 2:
            x = x.mean(axis=1, dtype=np.float64).astype(np.float32)
        rate = self.feature_config.sample_rate
        x = resample(x, sr, rate) if sr != rate else np.ascontiguousarray(x, dtype=np.float32)
        try:
            return check_clip(x, name), duration
        except WavError as exc:
            raise RequestError(400, str(exc)) from None

    def predict(self, data: bytes, name: str = "upload.wav", top_k: int = 1,
                max_seconds: float = Limits.max_seconds) -> dict[str, Any]:
        """The answer for one WAV file held in ``data`` (see the module docstring); ``"duration"`` (s) added."""
        x, duration = self.samples(data, name, max_seconds)
        feats = self.extract(x)
        if self.kind == "ctc":
            return {**self._transcribe(feats, name), "duration": round(duration, 3)}
        results, errors = classify(lambda _: feats, lambda f: self.backend.probabilities(f[None])[0], self.labels,
                                   [name], top_k)
        if errors:  # classify reports feature errors only, and the features are already computed
            raise RequestError(400, errors[0])
        result = {**results[0], "duration": round(duration, 3)}
        window = self.window_seconds
        if window and duration > LONG_CLIP_RATIO * window:
            result["warning"] = (f"{name}: {duration:.1f} s long, but the model scores only its first {window:.2f} s "
                                 "(its window); use the /stream WebSocket to detect keywords over a recording")
        return result

    def _transcribe(self, feats: np.ndarray, name: str) -> dict[str, Any]:
        lp = self.log_probs(feats)
        texts = {"greedy": " ".join(greedy(lp, self.vocab).split())}
        if self.settings.beam_width > 0:
            beams = beam_search_batch([lp], self.vocab, self.settings.beam_width, n_best=1, **self.decoder)[0]
            texts["beam"] = " ".join(beams[0][0].split()) if beams else ""
        return {"file": name, "text": texts.get("beam", texts["greedy"]), **texts}

    def detector(self, threshold: float | None = None, **overrides: Any) -> StreamingDetector:
        """A fresh streaming detector (keyword models): the stored calibration's settings, then ``threshold`` and
        StreamConfig ``overrides`` that are not None, as ``predict --stream`` picks them.

        Raises:
            RequestError: 400 for a CTC model or settings StreamConfig refuses.
        """
        if self.backend is None:
            raise RequestError(400, f"{self.source.name} is a {self.kind} model; streaming detection needs a "
                                    "keyword model")
        b = self.backend
        try:
            cfg = config_from_calibration(b.calibration, threshold=threshold, **overrides)
            return StreamingDetector(b.feature_config, b.labels, b.probabilities, cfg)
        except ValueError as exc:
            raise RequestError(400, str(exc).splitlines()[0]) from None


def load_served(ckpt: str | Path | None = None, onnx: str | Path | None = None,
                settings: DecoderSettings | None = None, threads: int = 1) -> ServedModel:
    """Load a checkpoint (``ckpt``, PyTorch; classes outside kwslab need
    :func:`kwslab.models.base.allowed_classes` around this call) or an ONNX file (``onnx``; torch never imported).

    Args:
        threads: intra-op threads per model call (torch: process-wide; ONNX Runtime: per session). Default 1: the
            service runs requests in parallel instead.
        settings: CTC decoding (beam width, LM, hotwords); the LM and hotwords are loaded here, once.

    Raises:
        CheckpointError / OnnxModelError: naming the file. ArpaError / DecoderSettingsError: a bad LM or hotword.
    """
    if (ckpt is None) == (onnx is None):
        raise ValueError("load_served: give exactly one of ckpt and onnx")
    settings = settings or DecoderSettings()
    if onnx is not None:
        from kwslab.inference.onnx import OnnxModel

        m = OnnxModel(onnx, threads=threads)
        served = ServedModel(m.kind, m.path, "onnx", m.feature_config, m.labels)
        if m.kind == "keyword":
            served.backend = Backend(m.feature_config, m.labels, m.probabilities, m.calibration, m.path)
        else:
            def onnx_log_probs(feats: np.ndarray) -> np.ndarray:
                lp, lengths = m.log_probs(feats[None])
                return lp[0, : int(lengths[0])]

            served.log_probs, served.vocab = onnx_log_probs, vocab_from_tokens(m.labels)
    else:
        import torch

        from kwslab.inference.backend import CALIBRATION_KEY
        from kwslab.inference.ctc import posteriors_of_features
        from kwslab.inference.loaded import load_model

        torch.set_num_threads(threads)
        m = load_model(ckpt)
        served = ServedModel(m.kind, m.path, "checkpoint", m.feature_config, m.labels)
        if m.kind == "keyword":
            def torch_probabilities(feats: np.ndarray) -> np.ndarray:  # as predict_files: softmax of the logits
                return torch.softmax(m.logits(feats), dim=-1).numpy()

            served.backend = Backend(m.feature_config, m.labels, torch_probabilities, m.checkpoint.get(CALIBRATION_KEY),
                                     m.path)
        else:
            served.log_probs, served.vocab = (lambda feats: posteriors_of_features(m, [feats])[0]), m.module.vocab
    if served.kind == "ctc":
        served.settings, served.decoder = settings, (settings.load(served.vocab) if settings.beam_width > 0 else {})
    return served
