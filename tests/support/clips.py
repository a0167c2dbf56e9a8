"""Tiny seeded WAV clips and manifests for the data tests (written under pytest's tmp_path)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kwslab.audio import write_wav
from kwslab.data.manifest import write_manifest
from kwslab.dsp import FeatureConfig

SR = 8000
KEYWORDS = ("no", "up", "yes")
TRANSCRIPTS = ("go left", "stop", "turn it up", "yes")

# Small features so every test stays fast: 8 kHz, 20 mel bands, 13 MFCCs, 0.5 s of frames.
SMALL_FEATURES = dict(sample_rate=SR, n_fft=256, hop_length=80, n_mels=20, n_mfcc=13, num_frames=50)


def small_features(**overrides: object) -> FeatureConfig:
    """The fast test FeatureConfig, with fields overridden as given."""
    return FeatureConfig(**{**SMALL_FEATURES, **overrides})


def clip(seed: int, seconds: float, sr: int = SR) -> np.ndarray:
    """A seeded "word": two tones with a random pitch under a smooth envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(150.0, 400.0)
    y = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * rng.uniform(800.0, 2500.0) * t)
    y *= np.hanning(t.size)
    return (0.4 * y / np.max(np.abs(y)) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_keyword_manifests(root: Path, per_keyword: int = 3, keywords: tuple[str, ...] = KEYWORDS,
                            sr: int = SR) -> dict[str, Path]:
    """Write ``train``/``val``/``test`` manifests (each with every keyword) of seeded clips; return their paths."""
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    manifests = {}
    seed = 0
    for split in ("train", "val", "test"):
        rows = []
        for keyword in keywords:
            for i in range(per_keyword):
                seed += 1
                path = root / "wav" / f"{split}_{keyword}_{i}.wav"
                write_wav(path, clip(seed, 0.3 + 0.05 * (seed % 5), sr), sr)
                rows.append({"filename": str(path), "keyword": keyword, "split": split, "speaker": f"s{i}"})
        manifests[split] = root / f"{split}.csv"
        write_manifest(manifests[split], rows)
    return manifests


def write_ctc_manifest(root: Path, name: str = "train", count: int = 8, sr: int = SR) -> Path:
    """Write a manifest of ``count`` clips of varied length (0.2-0.9 s) with transcripts; return its path."""
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        path = root / "wav" / f"{name}_{i}.wav"
        write_wav(path, clip(1000 + i, 0.2 + 0.7 * ((i * 7) % count) / count, sr), sr)
        rows.append({"filename": str(path), "transcript": TRANSCRIPTS[i % len(TRANSCRIPTS)].upper() + "!",
                     "split": name})
    manifest = root / f"{name}.csv"
    write_manifest(manifest, rows)
    return manifest
