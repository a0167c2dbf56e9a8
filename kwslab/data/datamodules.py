"""Thin LightningDataModules: manifests in, DataLoaders out (all data logic lives in :mod:`kwslab.data.datasets`).

Both modules expose, right after ``__init__``:

* ``feature_config`` (:class:`~kwslab.dsp.FeatureConfig`), ``labels`` (class names; for CTC the vocabulary
  tokens with ``""`` at the blank), ``num_outputs`` (``len(labels)``; LightningCLI links it into the model),
  and ``vocab`` (CTC: the :class:`~kwslab.text.CharVocab`; keyword spotting: None).

``KeywordDataModule.labels`` comes from the explicit ``labels`` argument, else it is read lazily (on first use)
from the training manifest's keywords, sorted. When that manifest does not exist yet, the ``prepare`` hook
(:meth:`prepare_data`) is run first; it must be idempotent. ``prepare_data`` may build data (runs once, on
rank 0); ``setup`` only reads manifests. Subclasses may override ``prepare_data`` instead of passing ``prepare``.

Augmentation (``augment``: :func:`~kwslab.augment.build_waveform_augment` settings, ``spec_augment``:
:class:`~kwslab.augment.SpecAugment` arguments) applies to the training set only. Shuffling and augmentation
are deterministic given ``seed`` and the epoch, whatever ``num_workers`` is. Workers are persistent so each
keeps its in-memory caches across epochs; the disk cache (``cache_dir``) is shared by all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from kwslab.data.cache import ArrayCache
from kwslab.data.datasets import (BucketBatchSampler, CTCDataset, KeywordDataset, SeededRandomSampler,
                                  as_feature_config, collate_ctc, labels_from_rows, manifest_rows)
from kwslab.dsp import FeatureConfig
from kwslab.text import DEFAULT_CHARS, CharVocab

__all__ = ["KeywordDataModule", "CTCDataModule"]


class _ManifestDataModule(L.LightningDataModule):
    """Shared plumbing: manifests, caches, loaders. Subclasses set ``_dataset`` / ``_train_loader_args``."""

    def __init__(self, train_manifest: str | list[str] | None = None, val_manifest: str | list[str] | None = None,
                 test_manifest: str | list[str] | None = None, features: FeatureConfig | dict | None = None,
                 batch_size: int = 64, num_workers: int = 0, pin_memory: bool | None = None,
                 augment: dict | None = None, spec_augment: dict | None = None, cache_dir: str | None = None,
                 memory_cache: bool = True, check_audio: bool = True, seed: int = 0, drop_last: bool = False,
                 prepare: Callable[[], None] | None = None) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
        self.manifests = {"train": train_manifest, "val": val_manifest, "test": test_manifest}
        self.feature_config = as_feature_config(features)
        self.batch_size, self.num_workers, self.seed, self.drop_last = batch_size, num_workers, seed, drop_last
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.augment, self.spec_augment = augment, spec_augment
        self.cache_dir, self.memory_cache, self.check_audio = cache_dir, memory_cache, check_audio
        self.prepare = prepare
        self.datasets: dict[str, Dataset] = {}
        # One clean-feature cache shared by every split (train too, when it has no waveform augmentation).
        self.feature_cache = ArrayCache(f"features-{self.feature_config.fingerprint()}", cache_dir,
                                        memory=memory_cache)

    def _hparams(self, **extra: Any) -> None:
        """Save plain-data hyperparameters. The features (and a CTC vocabulary) are not among them: the model saves
        them (``feature_config``, ``labels``, linked from here by ``kwslab.fit``), the checkpoint's one copy."""
        self.save_hyperparameters({
            **{f"{k}_manifest": v for k, v in self.manifests.items()},
            "batch_size": self.batch_size, "num_workers": self.num_workers, "augment": self.augment,
            "spec_augment": self.spec_augment, "cache_dir": self.cache_dir, "seed": self.seed, **extra})

    @property
    def vocab(self) -> CharVocab | None:
        return None

    @property
    def labels(self) -> list[str]:
        raise NotImplementedError

    @property
    def num_outputs(self) -> int:
        """Number of model outputs: classes, or CTC vocabulary size including the blank."""
        return len(self.labels)

    def prepare_data(self) -> None:
        """Build data if needed: calls the ``prepare`` hook (override in subclasses instead, if you prefer)."""
        if self.prepare is not None:
            self.prepare()

    def _manifest(self, split: str) -> str | list[str]:
        path = self.manifests[split]
        if path is None:
            raise ValueError(f"no {split}_manifest was given to {type(self).__name__}; set {split}_manifest")
        if isinstance(path, (list, tuple)) and not path:
            raise ValueError(f"{type(self).__name__}: {split}_manifest is an empty list; give one or more CSV paths")
        if not all(Path(p).exists() for p in ([path] if isinstance(path, str) else path)):
            self.prepare_data()  # idempotent hook; a no-op without one
        return path

    def _make(self, split: str, train: bool) -> Dataset:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Read the manifests the stage needs ("fit", "validate", "test", "predict" or None for all)."""
        wanted = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"],
                  "predict": ["test" if self.manifests["test"] else "val"]}.get(stage or "", ["train", "val", "test"])
        for split in wanted:
            if split not in self.datasets and self.manifests[split] is not None:
                self.datasets[split] = self._make(split, train=split == "train")

    def _dataset_kwargs(self, train: bool) -> dict[str, Any]:
        return {"features": self.feature_config, "check_audio": self.check_audio, "seed": self.seed,
                "cache_dir": self.cache_dir, "memory_cache": self.memory_cache, "feature_cache": self.feature_cache,
                "augment": self.augment if train else None, "spec_augment": self.spec_augment if train else None}

    def _loader(self, split: str, **kwargs: Any) -> DataLoader | list:
        if split not in self.datasets:
            if self.manifests[split] is None:
                return []  # Lightning: no batches for this split
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        return DataLoader(self.datasets[split], num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0, **kwargs)

    def train_dataloader(self) -> DataLoader:
        if self.manifests["train"] is None:
            raise ValueError(f"{type(self).__name__}: training needs train_manifest")
        if "train" not in self.datasets:
            self.setup("fit")
        return self._loader("train", **self._train_loader_args())  # type: ignore[return-value]

    def _train_loader_args(self) -> dict[str, Any]:
        raise NotImplementedError

    def _eval_loader(self, split: str) -> DataLoader | list:
        return self._loader(split, batch_size=self.batch_size, shuffle=False, collate_fn=self._collate())

    def _collate(self) -> Callable | None:
        return None

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test" if self.manifests["test"] else "val")


class KeywordDataModule(_ManifestDataModule):
    """Keyword classification data: :class:`KeywordDataset` splits with fixed-size features.

    Args:
        train_manifest, val_manifest, test_manifest: Manifest CSV paths (val/test optional). Each may be a list of
            paths, read as one set of rows in order (e.g. real recordings plus a synthetic corpus).
        features: FeatureConfig or dict of its fields; ``num_frames`` must be set.
        labels: Class names in model-output order; default: sorted keywords of the training manifest.
        batch_size: Items per batch (default 64). num_workers: DataLoader workers (default 0).
        pin_memory: Pin host memory; default: when CUDA is available.
        augment: Waveform augmentation settings (training only). spec_augment: SpecAugment args (training only).
        cache_dir: Folder for the on-disk clean-feature cache (None: memory only). memory_cache: Use memory caches.
        check_audio: Check every WAV header when reading manifests. seed: Shuffling/augmentation seed.
        drop_last: Drop the last incomplete training batch. prepare: Optional idempotent hook that builds data.
    """

    def __init__(self, train_manifest: str | list[str] | None = None, val_manifest: str | list[str] | None = None,
                 test_manifest: str | list[str] | None = None, features: FeatureConfig | dict | None = None,
                 labels: list[str] | None = None, batch_size: int = 64, num_workers: int = 0,
                 pin_memory: bool | None = None, augment: dict | None = None, spec_augment: dict | None = None,
                 cache_dir: str | None = None, memory_cache: bool = True, check_audio: bool = True, seed: int = 0,
                 drop_last: bool = False, prepare: Callable[[], None] | None = None) -> None:
        super().__init__(train_manifest, val_manifest, test_manifest, features, batch_size, num_workers, pin_memory,
                         augment, spec_augment, cache_dir, memory_cache, check_audio, seed, drop_last, prepare)
        if self.feature_config.num_frames is None:
            raise ValueError("KeywordDataModule: features.num_frames must be set (fixed-size input for the CNN)")
        if labels is not None and (isinstance(labels, str) or not labels or len(set(labels)) != len(labels)):
            raise ValueError(f"KeywordDataModule: labels must be a non-empty list of distinct names, got {labels!r}")
        self._labels = list(labels) if labels is not None else None
        self._hparams(**({"labels": self._labels} if self._labels is not None else {}))

    @property
    def labels(self) -> list[str]:
        """Class names in output order (explicit, else the training manifest's sorted keywords, read once)."""
        if self._labels is None:
            if self.manifests["train"] is None:
                raise ValueError("KeywordDataModule: set train_manifest (labels are read from it) or pass labels")
            rows, source = manifest_rows(self._manifest("train"), need_keyword=True, check_audio=False)
            self._labels = labels_from_rows(rows, source)
        return self._labels

    def _make(self, split: str, train: bool) -> Dataset:
        return KeywordDataset(self._manifest(split), labels=self.labels, **self._dataset_kwargs(train))

    def _train_loader_args(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "drop_last": self.drop_last,
                "sampler": SeededRandomSampler(len(self.datasets["train"]), self.seed)}


class CTCDataModule(_ManifestDataModule):
    """CTC recognition data: :class:`CTCDataset` splits, variable length, padded by :func:`collate_ctc`.

    Args:
        chars: Vocabulary characters (default: a-z, apostrophe, space). blank_first: Blank at index 0.
        bucket_by_length: Group training batches by duration (:class:`BucketBatchSampler`).
        num_buckets: Duration buckets for that sampler (default 10).
        Others: as :class:`KeywordDataModule` (``features.num_frames`` normally unset here).
    """

    def __init__(self, train_manifest: str | list[str] | None = None, val_manifest: str | list[str] | None = None,
                 test_manifest: str | list[str] | None = None, features: FeatureConfig | dict | None = None,
                 chars: str = DEFAULT_CHARS, blank_first: bool = True, batch_size: int = 32, num_workers: int = 0,
                 pin_memory: bool | None = None, augment: dict | None = None, spec_augment: dict | None = None,
                 bucket_by_length: bool = True, num_buckets: int = 10, cache_dir: str | None = None,
                 memory_cache: bool = True, check_audio: bool = True, seed: int = 0, drop_last: bool = False,
                 prepare: Callable[[], None] | None = None) -> None:
        super().__init__(train_manifest, val_manifest, test_manifest, features, batch_size, num_workers, pin_memory,
                         augment, spec_augment, cache_dir, memory_cache, check_audio, seed, drop_last, prepare)
        self._vocab = CharVocab(chars, blank_first)
        self.bucket_by_length, self.num_buckets = bucket_by_length, num_buckets
        self._hparams(bucket_by_length=bucket_by_length, num_buckets=num_buckets)

    @property
    def vocab(self) -> CharVocab:
        return self._vocab

    @property
    def labels(self) -> list[str]:
        """The vocabulary tokens, ``""`` at the blank."""
        return list(self._vocab.tokens)

    def _make(self, split: str, train: bool) -> Dataset:
        return CTCDataset(self._manifest(split), vocab=self._vocab, **self._dataset_kwargs(train))

    def _collate(self) -> Callable:
        return collate_ctc

    def _train_loader_args(self) -> dict[str, Any]:
        train = self.datasets["train"]
        if self.bucket_by_length:
            sampler = BucketBatchSampler(train.durations(), self.batch_size, num_buckets=self.num_buckets,  # type: ignore[attr-defined]
                                         drop_last=self.drop_last, seed=self.seed)
            return {"batch_sampler": sampler, "collate_fn": collate_ctc}
        return {"batch_size": self.batch_size, "drop_last": self.drop_last, "collate_fn": collate_ctc,
                "sampler": SeededRandomSampler(len(train), self.seed)}
