"""Experiment: speaker-level CMVN on FSDD speaker-disjoint + espeak voices (docs/results.md, section 2b).

Trains one rotation of ``configs/cnn_fsdd.yaml`` + ``cnn_fsdd_speaker.yaml`` + ``cnn_fsdd_speaker_synth.yaml``
with one change: the features are extracted without per-utterance CMVN and then normalised with the mean and
standard deviation over all frames of all clips of the same speaker (manifest ``speaker`` column; an espeak
voice is a speaker) in the same split. Test clips are normalised with the held-out speaker's statistics, which
uses the test speaker's audio without labels, as Kaldi's per-speaker CMVN does; the checkpoint is still chosen on
validation. Prints the test accuracy of the best checkpoint. Measured: seed 0 +2.0 points on the four-rotation mean,
seed 1 -1.0; no reliable gain (docs/results.md).

    python scripts/speaker_cmvn_experiment.py --speaker jackson [--seed 1] [--out runs/speaker_cmvn]

Needs the manifests that ``python scripts/fsdd_experiments.py --only speaker-synth`` writes
(``data/fsdd/speaker_<name>/``, ``data/tts_digits/``). This is an experiment, not a package feature: checkpoints
trained this way hold ``cmvn: false`` features, and ``kwslab.predict`` / ``kwslab.evaluate`` / the streaming
detector do not apply speaker statistics, so score them only through this script.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kwslab.data.datamodules import KeywordDataModule
from kwslab.data.datasets import KeywordDataset

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [REPO / "configs" / name for name in ("cnn_fsdd.yaml", "cnn_fsdd_speaker.yaml",
                                                 "cnn_fsdd_speaker_synth.yaml")]


class SpeakerNormalizedKeywordDataset(KeywordDataset):
    """:class:`KeywordDataset` whose features are normalised per speaker, with statistics of the clean clips."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.feature_config.cmvn:
            raise ValueError("speaker-level CMVN needs features.cmvn false (per-utterance CMVN would come first)")
        self._stats: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def speaker(self, index: int) -> str:
        row = self.rows[index]
        return row.speaker or row.voice or "unknown"

    def speaker_stats(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per speaker: mean and standard deviation ``(F, 1)`` over all frames of its clean clips."""
        if self._stats is None:
            groups: dict[str, list[int]] = {}
            for i in range(len(self.rows)):
                groups.setdefault(self.speaker(i), []).append(i)
            self._stats = {}
            for name, items in groups.items():
                frames = np.concatenate([self.extractor(self._load(self.rows[i].path)) for i in items], axis=1)
                self._stats[name] = (frames.mean(axis=1, keepdims=True), frames.std(axis=1, keepdims=True) + 1e-5)
        return self._stats

    def features(self, index: int, epoch: int | None = None) -> np.ndarray:
        mean, std = self.speaker_stats()[self.speaker(index)]
        return ((super().features(index, epoch) - mean) / std).astype(np.float32)


class SpeakerCMVNKeywordDataModule(KeywordDataModule):
    """:class:`KeywordDataModule` with :class:`SpeakerNormalizedKeywordDataset` splits."""

    def _make(self, split: str, train: bool) -> SpeakerNormalizedKeywordDataset:
        return SpeakerNormalizedKeywordDataset(self._manifest(split), labels=self.labels,
                                               **self._dataset_kwargs(train))


def overlay(speaker: str, seed: int, out: Path) -> dict[str, Any]:
    features = {}
    for config in CONFIGS:  # the features of the config stack, with per-utterance CMVN off
        features.update(((yaml.safe_load(config.read_text()).get("data") or {}).get("init_args") or {})
                        .get("features") or {})
    features["cmvn"] = False
    fsdd = REPO / "data" / "fsdd" / f"speaker_{speaker}"
    return {
        "seed_everything": seed,
        "trainer": {
            "enable_progress_bar": False,
            "default_root_dir": str(out),
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": str(out), "name": "csv", "version": 0}},
            "callbacks": [
                {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                 "init_args": {"dirpath": str(out / "checkpoints"), "filename": "epoch{epoch:02d}-acc{val/acc:.4f}",
                               "auto_insert_metric_name": False, "monitor": "val/acc", "mode": "max"}},
                {"class_path": "kwslab.averaging.EMA", "init_args": {"decay": 0.99}},
            ],
        },
        "data": {
            "class_path": "speaker_cmvn_experiment.SpeakerCMVNKeywordDataModule",
            "init_args": {"train_manifest": [str(fsdd / "train.csv"), str(REPO / "data" / "tts_digits" / "train.csv")],
                          "val_manifest": str(fsdd / "val.csv"), "test_manifest": str(fsdd / "test.csv"),
                          "features": features, "seed": seed},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speaker", required=True, choices=["george", "jackson", "lucas", "nicolas"],
                        help="the held-out test speaker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "speaker_cmvn")
    args = parser.parse_args(argv)
    missing = [p for p in (REPO / "data" / "fsdd" / f"speaker_{args.speaker}" / "train.csv",
                           REPO / "data" / "tts_digits" / "train.csv") if not p.is_file()]
    if missing:
        print(f"error: {', '.join(map(str, missing))} missing; run python scripts/fsdd_experiments.py "
              "--only speaker-synth first", file=sys.stderr)
        return 2
    out = args.out / f"{args.speaker}_seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "overlay.yaml").write_text(yaml.safe_dump(overlay(args.speaker, args.seed, out), sort_keys=False))
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # LightningCLI imports the DataModule by class_path
    from kwslab.fit import main as fit

    cli = fit([arg for config in CONFIGS for arg in ("--config", str(config))]
              + ["--config", str(out / "overlay.yaml")])
    acc = float(cli.trainer.callback_metrics["test/acc"])
    print(f"{args.speaker} seed {args.seed}: test accuracy (best checkpoint, speaker-level CMVN) {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
