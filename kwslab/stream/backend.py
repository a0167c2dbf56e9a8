"""What streaming detection needs from a model, from a checkpoint (PyTorch) or an ONNX file (ONNX Runtime only).

:func:`onnx_backend` never imports torch: ``predict --onnx`` runs on NumPy and onnxruntime alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kwslab.dsp import FeatureConfig

CALIBRATION_KEY = "kwslab_threshold"  # checkpoint key (and ONNX metadata key "threshold") of the calibration


@dataclass
class Backend:
    """A keyword model ready for streaming.

    Attributes:
        feature_config: the model's features. labels: its classes.
        probabilities: ``(B, F, T)`` float32 -> ``(B, C)`` probabilities.
        calibration: what ``evaluate --stream-manifest`` stored (threshold, stream settings, curve) or None.
        source: the checkpoint or ONNX file.
    """

    feature_config: FeatureConfig
    labels: list[str]
    probabilities: Callable[[np.ndarray], np.ndarray]
    calibration: dict[str, Any] | None
    source: Path


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(B, C)`` logits (float32)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def torch_backend(ckpt: str | Path, threads: int | None = None) -> Backend:
    """Load a keyword checkpoint (raises CheckpointError naming the file).

    Args:
        ckpt: the checkpoint. threads: if given, ``torch.set_num_threads(threads)`` (process-wide). One thread
            is much faster for small streaming batches on a busy machine; the CLIs pass 1.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)

    from kwslab.checkpoint import CheckpointError
    from kwslab.inference import load_model

    model = load_model(ckpt)
    if model.checkpoint.get("hyper_parameters", {}).get("_class_path", "").endswith("CTCRecognizer"):
        raise CheckpointError(f"{ckpt}: a CTC recogniser; streaming keyword detection needs a keyword classifier")

    @torch.no_grad()
    def probabilities(feats: np.ndarray) -> np.ndarray:
        return torch.softmax(model.module(torch.from_numpy(feats)).float(), dim=-1).numpy()

    calibration = model.checkpoint.get(CALIBRATION_KEY)
    return Backend(model.feature_config, model.labels, probabilities, calibration, Path(ckpt))


def onnx_backend(path: str | Path, threads: int = 1) -> Backend:
    """Load an ONNX keyword model written by ``kwslab.export`` (raises OnnxModelError naming the file)."""
    from kwslab.onnx_infer import OnnxModel, OnnxModelError

    model = OnnxModel(path, threads=threads)
    if model.kind != "keyword":
        raise OnnxModelError(f"{path}: a {model.kind} model; streaming keyword detection needs a keyword model")
    return Backend(model.feature_config, model.labels, model.probabilities, model.calibration, Path(path))
