"""Serving a trained model over HTTP (``python -m kwslab.serve``).

- :mod:`~kwslab.serving.model`: :class:`ServedModel`, a checkpoint or ONNX model of either kind answering for WAV
  bytes and audio blocks, and the request :class:`Limits` (NumPy; torch only for checkpoints; no web framework).
- :mod:`~kwslab.serving.app`: the FastAPI app over it (needs the ``kwslab[serve]`` extra).
"""
from kwslab.serving.model import Limits, RequestError, ServedModel, load_served

__all__ = ["Limits", "RequestError", "ServedModel", "load_served"]
