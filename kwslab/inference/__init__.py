"""A trained model, loaded once, whatever its file: what every command that runs a model shares.

- :mod:`~kwslab.inference.loaded`: checkpoint -> :class:`LoadedModel` (module, features, labels, and its kind,
  decided once by :func:`model_kind`).
- :mod:`~kwslab.inference.onnx`: an exported model on ONNX Runtime and NumPy features (never imports torch).
- :mod:`~kwslab.inference.backend`: streaming backends over either.
- :mod:`~kwslab.inference.keywords`: keyword models on files: classify, detect in a long recording.
- :mod:`~kwslab.inference.ctc`: CTC models on files: posteriors, decoding, WER/CER.
- :mod:`~kwslab.inference.scoring`: keyword accuracy on a manifest, ensembles, streaming evaluation.

Names are loaded on first use, so ``from kwslab.inference.onnx import OnnxModel`` never imports torch, and
``from kwslab.inference import load_model`` keeps working.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "LoadedModel": "loaded", "load_model": "loaded", "model_kind": "loaded", "UnusableAudioError": "loaded",
    "OnnxModel": "onnx", "OnnxModelError": "onnx",
    "Backend": "backend", "torch_backend": "backend", "onnx_backend": "backend", "CALIBRATION_KEY": "backend",
}

__all__ = sorted(_EXPORTS)


def add_model_arguments(parser: Any) -> None:
    """The model a command runs: ``--ckpt`` (PyTorch) or ``--onnx`` (ONNX Runtime, torch never imported), one of
    them required. Used by ``predict`` and ``serve``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="checkpoint written by python -m kwslab.fit")
    source.add_argument("--onnx", help="model written by python -m kwslab.export (runs without torch)")


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kwslab.inference' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"kwslab.inference.{_EXPORTS[name]}"), name)
