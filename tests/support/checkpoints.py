"""Untrained (random, seeded) checkpoints written directly, without a training run, in the form
:func:`kwslab.inference.load_model` accepts: a keyword CNN over the tone task's features, and a CTC recogniser."""
from __future__ import annotations

from pathlib import Path

import torch

from kwslab.dsp import FeatureConfig
from tests.support.keyword_task import FEATURES, SR

# A stream calibration as `evaluate --out-ckpt` stores it under ``kwslab_threshold``.
CALIBRATION = {"threshold": 0.42, "target_fa_per_hour": 1.0, "stream": {"hop": 0.05, "smooth": 2},
               "curve": [[0.42, 0.1, 0.5]]}


def write_checkpoint(path: Path, module: torch.nn.Module, class_path: str, hparams: dict, **extra) -> Path:
    """A minimal Lightning-style checkpoint that :func:`kwslab.inference.load_model` accepts."""
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {"_class_path": class_path, **hparams},
                **extra}, path)
    return path


def keyword_checkpoint(path: Path, seed: int = 0, num_frames: int | None = 51, **extra) -> Path:
    """An untrained (random, seeded) keyword CNN over 13 MFCCs, with BatchNorm statistics made non-trivial."""
    from kwslab.models import KeywordClassifier

    torch.manual_seed(seed)
    hp = {"num_outputs": 4, "labels": ["_silence_", "_unknown_", "high", "low"],
          "feature_config": FeatureConfig(**{**FEATURES, "num_frames": num_frames}).to_dict(),
          "net": {"class_path": "kwslab.nets.KeywordCNN",
                  "init_args": {"channels": [8, 8], "hidden": 8, "dropout": 0.0}}}
    model = KeywordClassifier(**hp)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return write_checkpoint(path, model, "kwslab.models.KeywordClassifier", hp, **extra)


def ctc_checkpoint(path: Path, seed: int = 0) -> Path:
    """An untrained CTC recogniser (one conv block, one BiGRU layer)."""
    from kwslab.models import CTCRecognizer
    from kwslab.text import CharVocab

    torch.manual_seed(seed)
    vocab = CharVocab()
    hp = {"num_outputs": len(vocab), "labels": list(vocab.tokens),
          "feature_config": FeatureConfig(sample_rate=SR, n_mfcc=13).to_dict(),
          "conv_channels": [16], "rnn_hidden": 12, "rnn_layers": 1, "dropout": 0.0}
    return write_checkpoint(path, CTCRecognizer(**hp), "kwslab.models.CTCRecognizer", hp)
