"""Small models and data for the deploy tests: untrained checkpoints written directly, and a tone dataset with a
``_silence_`` class (noise only) so that a detector trained on it stays quiet between tone bursts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kwslab.audio import write_wav
from kwslab.data.manifest import write_manifest
from kwslab.dsp import FeatureConfig
from tests.models.tiny import SR, tone_clip

TONES = {"high": 3000.0, "low": 300.0}
FEATURES = {"sample_rate": SR, "n_mfcc": 13, "num_frames": 51, "cmvn": True}


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


def noise(n: int, rng: np.random.Generator, level: float = 0.01) -> np.ndarray:
    return (level * rng.standard_normal(n)).astype(np.float32)


def make_tone_dataset(root: Path, per_class: dict[str, int] | None = None, seed: int = 0) -> dict[str, Path]:
    """Tone clips (high/low, from tests.models.tiny) plus noise-only ``_silence_`` clips; 0.5 s each."""
    per_class = per_class or {"train": 16, "val": 6, "test": 6}
    rng = np.random.default_rng(seed)
    paths = {}
    for split, n in per_class.items():
        rows = []
        for label in [*TONES, "_silence_"]:
            for i in range(n):
                path = root / "wav" / split / f"{label}_{i}.wav"
                clip = (tone_clip(TONES[label], rng) if label in TONES
                        else noise(SR // 2, rng, float(rng.uniform(0.003, 0.03))))
                write_wav(path, clip, SR)
                rows.append({"filename": str(path), "keyword": label, "speaker": f"s{i % 3}", "split": split})
        paths[split] = root / f"{split}.csv"
        write_manifest(paths[split], rows)
    return paths


def tone_stream(rng: np.random.Generator, events: list[tuple[str, float, float]], seconds: float) -> np.ndarray:
    """Noise with tone bursts ``(label, start, end)`` at known times (level 0.3)."""
    y = noise(int(seconds * SR), rng)
    for label, start, end in events:
        a, b = int(start * SR), int(end * SR)
        t = np.arange(b - a) / SR
        y[a:b] += 0.3 * np.sin(2 * np.pi * TONES[label] * t).astype(np.float32)
    return y
