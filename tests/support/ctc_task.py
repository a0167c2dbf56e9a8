"""A tiny, learnable CTC task: each letter of ``abc`` is a tone burst; an utterance spells a short string."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from kwslab.audio import write_wav
from kwslab.data.manifest import write_manifest

SR = 16000
TONES = {"a": 500.0, "b": 1200.0, "c": 2500.0}
CHARS = "abc"


def spell(text: str, rng: np.random.Generator, pitch: float = 1.0) -> np.ndarray:
    """Tone bursts (90-130 ms) for each letter, separated and surrounded by 40-80 ms of quiet noise. ``pitch``
    multiplies every tone's frequency (a "speaker" the model was not trained on)."""
    parts = []
    for ch in text:
        parts.append(0.003 * rng.standard_normal(int(rng.uniform(0.04, 0.08) * SR)))
        n = int(rng.uniform(0.09, 0.13) * SR)
        t = np.arange(n) / SR
        parts.append(rng.uniform(0.2, 0.5) * np.hanning(n) * np.sin(2 * np.pi * pitch * TONES[ch] * t))
    parts.append(0.003 * rng.standard_normal(int(0.06 * SR)))
    return np.concatenate(parts).astype(np.float32)


def make_tiny_ctc_dataset(root: Path, counts: dict[str, int] | None = None, seed: int = 0,
                          pitch: float = 1.0) -> dict[str, Path]:
    """Write spelled strings of 2-4 letters with train/val/test manifests; returns the manifest paths."""
    counts = counts or {"train": 48, "val": 8, "test": 8}
    rng = np.random.default_rng(seed)
    paths = {}
    for split, n in counts.items():
        rows = []
        for i in range(n):
            text = "".join(rng.choice(list(CHARS), size=rng.integers(2, 5)))
            path = root / "wav" / split / f"{i:03d}_{text}.wav"
            write_wav(path, spell(text, rng, pitch), SR)
            rows.append({"filename": str(path), "transcript": text, "speaker": f"s{i % 2}", "split": split})
        paths[split] = root / f"{split}.csv"
        write_manifest(paths[split], rows)
    return paths


def tiny_ctc_config(data: dict[str, Path], out: Path, *, epochs: int = 30) -> Path:
    """A complete fit config training a small CRNN on the tiny CTC task; returns its path."""
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": epochs, "accelerator": "cpu", "devices": 1, "deterministic": True,
            "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 1,
            "default_root_dir": str(out),
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(out)}},
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "init_args": {"dirpath": str(out / "ckpt"), "monitor": "val/cer", "mode": "min"}},
                          {"class_path": "kwslab.callbacks.LatestCheckpoint",
                           "init_args": {"dirpath": str(out / "ckpt")}}],
        },
        "model": {"class_path": "kwslab.models.CTCRecognizer",
                  "init_args": {"conv_channels": [32, 32], "rnn_hidden": 32, "rnn_layers": 1, "dropout": 0.0,
                                "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.01}}}},
        "data": {"class_path": "kwslab.data.datamodules.CTCDataModule",
                 "init_args": {"train_manifest": str(data["train"]), "val_manifest": str(data["val"]),
                               "test_manifest": str(data["test"]), "chars": CHARS, "batch_size": 8,
                               "features": {"sample_rate": SR, "kind": "log_mel", "n_mels": 24, "cmvn": True}}},
    }
    path = out / "tiny_ctc.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path
