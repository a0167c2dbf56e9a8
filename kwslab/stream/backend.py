"""What streaming detection needs from a model: :class:`Backend`.

:mod:`kwslab.inference.backend` builds one from a checkpoint (PyTorch) or an ONNX file (ONNX Runtime only).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kwslab.dsp import FeatureConfig


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
