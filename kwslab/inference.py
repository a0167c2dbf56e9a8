"""Rebuild a trained model from its checkpoint alone, and run it on audio files.

The checkpoint's ``hyper_parameters`` hold the model class (``_class_path``, written by LightningCLI), its
arguments, the labels and the FeatureConfig; :func:`load_model` reads them with ``weights_only=True`` loading.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch

from kwslab.audio import load_audio
from kwslab.checkpoint import CheckpointError, load_checkpoint
from kwslab.dsp import FeatureConfig, cached_extractor

DEFAULT_CLASS = "kwslab.models.KeywordClassifier"


@dataclass
class LoadedModel:
    """A model in eval mode with what inference needs: its feature settings and output labels."""

    module: L.LightningModule
    feature_config: FeatureConfig
    labels: list[str]
    path: Path
    checkpoint: dict[str, Any]

    def features(self, path: str | Path) -> np.ndarray:
        """Read any WAV the reader accepts, resample, and extract ``(F, T)`` features."""
        return cached_extractor(self.feature_config)(load_audio(path, self.feature_config.sample_rate))

    def features_of(self, paths: Sequence[str | Path], cache: dict | None = None) -> list[np.ndarray]:
        """Features of several files. ``cache`` (a dict shared between calls and models) keeps them per feature
        setting, so a file is read and transformed once however many models or folds use it."""
        if cache is None:
            return [self.features(p) for p in paths]
        store = cache.setdefault(self.feature_config, {})
        for p in paths:
            if p not in store:
                store[p] = self.features(p)
        return [store[p] for p in paths]

    @torch.no_grad()
    def logits(self, feats: Sequence[np.ndarray]) -> torch.Tensor:
        """``(B, C)`` logits for equally-shaped ``(F, T)`` feature matrices."""
        x = torch.from_numpy(np.stack(feats)).to(self.module.device)
        return self.module(x).float().cpu()


def _model_class(class_path: str, ckpt_path: Path) -> type[L.LightningModule]:
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise CheckpointError(f"{ckpt_path}: model class {class_path!r} cannot be imported; install the package "
                              "that defines it") from None
    if not (isinstance(cls, type) and issubclass(cls, L.LightningModule)):
        raise CheckpointError(f"{ckpt_path}: {class_path!r} is not a LightningModule")
    return cls


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a kwslab checkpoint for inference (eval mode, on ``device``).

    Raises:
        CheckpointError: naming the file, when it is not a usable kwslab checkpoint.
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    cls = _model_class(hparams.get("_class_path", DEFAULT_CLASS), path)
    kwargs = {k: v for k, v in hparams.items() if not k.startswith("_")}
    kwargs.update(init_from=None) if "init_from" in kwargs else None  # never chase the training-time source
    if not kwargs.get("feature_config") or not kwargs.get("labels"):
        raise CheckpointError(f"{path}: the checkpoint lacks feature_config/labels in its hyperparameters")
    try:
        module = cls(**kwargs)
        module.load_state_dict(ckpt["state_dict"])
    except (TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild {cls.__name__} from it: {exc}") from None
    module.eval().to(device)
    return LoadedModel(module, FeatureConfig.from_dict(dict(kwargs["feature_config"])), list(kwargs["labels"]),
                       path, ckpt)
