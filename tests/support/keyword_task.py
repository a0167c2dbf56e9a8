"""A tiny, learnable keyword task made of tones: three tone classes (``make_tiny_dataset``) and the fit config
that trains a small CNN on them in seconds (``tiny_config``); a two-tone dataset with a noise-only ``_silence_``
class (``make_tone_dataset``), so that a detector trained on it stays quiet between bursts; and noise streams
with tone bursts at known times (``tone_stream``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from kwslab.audio import write_wav
from kwslab.data.manifest import write_manifest

CLASSES = {"high": 3000.0, "low": 300.0, "mid": 1000.0}
SR = 16000
TONES = {"high": 3000.0, "low": 300.0}  # the tone dataset's keywords (beside ``_silence_``)
FEATURES = {"sample_rate": SR, "n_mfcc": 13, "num_frames": 51, "cmvn": True}  # the features tiny_config uses


def tone_clip(freq: float, rng: np.random.Generator, seconds: float = 0.5) -> np.ndarray:
    """A tone with random level, onset, slight detune and background noise."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = np.sin(2 * np.pi * freq * rng.uniform(0.95, 1.05) * t + rng.uniform(0, 6.28))
    env = np.zeros(n)
    start = rng.integers(0, n // 3)
    env[start:start + n // 2] = 1.0
    return (rng.uniform(0.1, 0.5) * env * y + 0.01 * rng.standard_normal(n)).astype(np.float32)


def make_tiny_dataset(root: Path, per_class: dict[str, int] | None = None, seed: int = 0,
                      classes: dict[str, float] | None = None) -> dict[str, Path]:
    """Write WAVs and train/val/test manifests under ``root``; returns the manifest paths."""
    per_class = per_class or {"train": 16, "val": 6, "test": 6}
    classes = classes or CLASSES
    rng = np.random.default_rng(seed)
    paths = {}
    for split, n in per_class.items():
        rows = []
        for label, freq in classes.items():
            for i in range(n):
                path = root / "wav" / split / f"{label}_{i}.wav"
                write_wav(path, tone_clip(freq, rng), SR)
                rows.append({"filename": str(path), "keyword": label, "speaker": f"s{i % 3}", "split": split})
        paths[split] = root / f"{split}.csv"
        write_manifest(paths[split], rows)
    return paths


def tiny_config(data: dict[str, Path], out: Path, *, epochs: int = 3, logger: str = "csv") -> Path:
    """Write a complete fit config that trains a small CNN on the tiny dataset in seconds; returns its path."""
    if logger == "csv":
        logger_cfg = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(out)}}
    else:
        logger_cfg = {"class_path": "kwslab.loggers.WandbLogger",
                      "init_args": {"save_dir": str(out / "runs"), "project": "kwslab-test"}}
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": epochs, "accelerator": "cpu", "devices": 1, "deterministic": True,
            "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 1,
            "default_root_dir": str(out), "logger": logger_cfg,
            "callbacks": [
                {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                 "init_args": {"dirpath": str(out / "ckpt"), "monitor": "val/acc", "mode": "max"}},
                {"class_path": "kwslab.callbacks.LatestCheckpoint", "init_args": {"dirpath": str(out / "ckpt")}},
                {"class_path": "kwslab.callbacks.ConfusionMatrixCallback", "init_args": {"dirpath": str(out)}},
            ],
        },
        "model": {"class_path": "kwslab.models.KeywordClassifier",
                  "init_args": {"net": {"class_path": "kwslab.nets.KeywordCNN",
                                        "init_args": {"channels": [16, 16], "hidden": 16, "dropout": 0.0}},
                                "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.01}}}},
        "data": {"class_path": "kwslab.data.datamodules.KeywordDataModule",
                 "init_args": {"train_manifest": str(data["train"]), "val_manifest": str(data["val"]),
                               "test_manifest": str(data["test"]), "batch_size": 16,
                               "features": {"sample_rate": SR, "n_mfcc": 13, "num_frames": 51, "cmvn": True}}},
    }
    path = out / "tiny.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def noise(n: int, rng: np.random.Generator, level: float = 0.01) -> np.ndarray:
    return (level * rng.standard_normal(n)).astype(np.float32)


def make_tone_dataset(root: Path, per_class: dict[str, int] | None = None, seed: int = 0) -> dict[str, Path]:
    """Tone clips (high/low, as in make_tiny_dataset) plus noise-only ``_silence_`` clips; 0.5 s each."""
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
