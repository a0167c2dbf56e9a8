"""Streaming backends (:class:`kwslab.stream.backend.Backend`) from a checkpoint (PyTorch) or an ONNX file.

:func:`onnx_backend` never imports torch: ``predict --onnx`` runs on NumPy and onnxruntime alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kwslab.inference.onnx import OnnxModel, OnnxModelError, softmax
from kwslab.stream.backend import Backend

__all__ = ["CALIBRATION_KEY", "Backend", "onnx_backend", "softmax", "torch_backend"]

CALIBRATION_KEY = "kwslab_threshold"  # checkpoint key (and ONNX metadata key "threshold") of the calibration


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
    from kwslab.inference.loaded import load_model

    model = load_model(ckpt)
    if model.kind != "keyword":
        raise CheckpointError(f"{ckpt}: a CTC recogniser; streaming keyword detection needs a keyword classifier")

    @torch.no_grad()
    def probabilities(feats: np.ndarray) -> np.ndarray:
        return torch.softmax(model.module(torch.from_numpy(feats)).float(), dim=-1).numpy()

    calibration = model.checkpoint.get(CALIBRATION_KEY)
    return Backend(model.feature_config, model.labels, probabilities, calibration, Path(ckpt))


def onnx_backend(path: str | Path, threads: int = 1) -> Backend:
    """Load an ONNX keyword model written by ``kwslab.export`` (raises OnnxModelError naming the file)."""
    model = OnnxModel(path, threads=threads)
    if model.kind != "keyword":
        raise OnnxModelError(f"{path}: a {model.kind} model; streaming keyword detection needs a keyword model")
    return Backend(model.feature_config, model.labels, model.probabilities, model.calibration, Path(path))
