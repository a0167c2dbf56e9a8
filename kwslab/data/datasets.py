"""Datasets: manifest rows -> feature tensors (plain torch, no Lightning).

* :class:`KeywordDataset` yields ``(features (F, num_frames) float32, label index)`` for the CNN classifier.
* :class:`CTCDataset` yields ``(features (F, T) float32, target ids (L,) int64)``; :func:`collate_ctc` pads a batch.

Audio is read with :func:`kwslab.audio.load_audio` at ``FeatureConfig.sample_rate`` and turned into features by
one :class:`kwslab.dsp.FeatureExtractor`. Without waveform augmentation the clean features come from an
:class:`~kwslab.data.cache.ArrayCache` (memory, plus ``.npy`` files under ``cache_dir`` when set), so epochs after
the first skip decoding and feature extraction. With waveform augmentation only the decoded, resampled waveform
is cached (in memory); augmentation and features are then computed per item.

Bad audio (issue 18): the guarantee is given once, up front. A manifest path is read with ``check_audio`` (the
default), which runs :func:`kwslab.audio.check_wav` on every row: a 0-frame clip, a float clip holding NaN/Inf or a
non-WAV file stops dataset construction with a :class:`~kwslab.data.ManifestError` listing every bad row, so an
epoch never meets one. This costs a header read per file plus one scan of float files (PCM cannot hold NaN/Inf),
less than the first epoch's decoding, and avoids the alternative's hazards (skipping silently shifts class balance;
counts from DataLoader workers never reach the main process). Rows passed as objects or read with
``check_audio=False`` are not checked up front: a clip that turns out empty or unreadable when an item is loaded
raises a ValueError naming the row and the file (a 0-sample clip is never padded into a silent example).

Randomness: item ``index`` in epoch ``epoch`` uses ``np.random.default_rng([seed, epoch, index])`` (waveform
augmentation, then SpecAugment), so results do not depend on worker count or order. The samplers here
(:class:`SeededRandomSampler`, :class:`BucketBatchSampler`) yield ``(epoch, index)`` pairs, which carries the
epoch into DataLoader workers (persistent ones too); a plain ``int`` index uses :attr:`FeatureDataset.epoch`
(see :meth:`FeatureDataset.set_epoch`). Both samplers have ``set_epoch``, which Lightning calls every epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from kwslab.audio import check_clip, load_audio, wav_info
from kwslab.augment import SpecAugment, build_spec_augment, build_waveform_augment
from kwslab.data.cache import ArrayCache
from kwslab.data.manifest import ManifestRow, read_manifest
from kwslab.dsp import FeatureConfig, FeatureExtractor, fit_waveform
from kwslab.text import CharVocab

__all__ = ["FeatureDataset", "KeywordDataset", "CTCDataset", "collate_ctc", "labels_from_rows", "manifest_rows",
           "as_feature_config", "SeededRandomSampler", "BucketBatchSampler"]

ManifestLike = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], Sequence[ManifestRow]]
WaveformAugment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
MAX_LISTED = 10  # bad rows listed in one error message


def as_feature_config(features: FeatureConfig | Mapping[str, object] | None) -> FeatureConfig:
    """Accept a FeatureConfig, a plain dict of its fields (from YAML) or None (the defaults)."""
    if features is None:
        return FeatureConfig()
    if isinstance(features, FeatureConfig):
        return features
    if isinstance(features, Mapping):
        return FeatureConfig.from_dict(dict(features))
    raise TypeError(f"features must be a FeatureConfig or a dict of its fields, got {type(features).__name__}")


def manifest_rows(manifest: ManifestLike, **read_kwargs: object) -> tuple[list[ManifestRow], str]:
    """Read a manifest path, or several (their rows concatenated in order, e.g. real plus synthetic speech), each
    validated by read_manifest, or take rows as given; also return a name for error messages."""
    if isinstance(manifest, (str, os.PathLike)):
        return read_manifest(manifest, **read_kwargs), str(manifest)  # type: ignore[arg-type]
    items = list(manifest)
    if items and all(isinstance(m, (str, os.PathLike)) for m in items):
        rows = [r for m in items for r in read_manifest(m, **read_kwargs)]  # type: ignore[arg-type]
        return rows, " + ".join(str(m) for m in items)
    if not all(isinstance(r, ManifestRow) for r in items):
        raise TypeError("manifest must be a CSV path, a list of CSV paths or a sequence of ManifestRow")
    return items, "<rows>"


def _raise_listed(source: str, problems: list[str], hint: str) -> None:
    if problems:
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        lines = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        raise ValueError(f"{source}: {len(problems)} row(s) cannot be used:\n{lines}{more}\n{hint}")


def labels_from_rows(rows: Sequence[ManifestRow], source: str = "<rows>") -> list[str]:
    """The sorted distinct keywords of ``rows`` (the class list when none is given explicitly)."""
    _raise_listed(source, [f"row {i} {r.filename!r}: keyword is empty" for i, r in enumerate(rows, 1)
                           if not r.keyword], "Every row needs a keyword for classification.")
    return sorted({r.keyword for r in rows})


class FeatureDataset(Dataset):
    """Rows -> ``(F, T)`` float32 features with optional augmentation and caching (base of the two datasets).

    Args:
        rows: Manifest rows (already validated). features: FeatureConfig or dict.
        augment: Waveform augmentation ``(y, rng) -> y`` or a dict for :func:`build_waveform_augment`;
            training only. spec_augment: :class:`SpecAugment` or its constructor args; training only.
        cache_dir: Folder for the on-disk clean-feature cache (None: memory only).
        memory_cache: Keep clean features / waveforms in this process's memory.
        feature_cache, waveform_cache: Share existing caches between datasets (default: new ones).
        seed: Base seed of the per-item generators. source: Manifest name used in error messages.
    """

    def __init__(self, rows: Sequence[ManifestRow], features: FeatureConfig | Mapping[str, object] | None = None,
                 *, augment: WaveformAugment | Mapping[str, object] | None = None,
                 spec_augment: SpecAugment | Mapping[str, object] | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, memory_cache: bool = True,
                 feature_cache: ArrayCache | None = None, waveform_cache: ArrayCache | None = None,
                 seed: int = 0, source: str = "<rows>") -> None:
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.rows = list(rows)
        self.source = source
        self.feature_config = as_feature_config(features)
        self.extractor = FeatureExtractor(self.feature_config)
        sr = self.feature_config.sample_rate
        self.augment = build_waveform_augment(augment, sr) if isinstance(augment, Mapping) else augment
        self.spec_augment = build_spec_augment(spec_augment) if isinstance(spec_augment, Mapping) else spec_augment
        if feature_cache is None:
            feature_cache = ArrayCache(f"features-{self.feature_config.fingerprint()}", cache_dir, memory=memory_cache)
        self.feature_cache = feature_cache
        self.waveform_cache = waveform_cache if waveform_cache is not None else ArrayCache(
            f"waveform-{sr}", None, memory=memory_cache)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for plain ``int`` indices (the samplers pass it with every index instead)."""
        self.epoch = int(epoch)

    def rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator for item ``index`` in ``epoch`` (default: :attr:`epoch`)."""
        return np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, index])

    def _load(self, path: Path) -> np.ndarray:
        # Digital silence is a legitimate _silence_ example; a 0-sample clip is not, and padding would hide it.
        return check_clip(load_audio(path, self.feature_config.sample_rate), path, allow_silent=True)

    def waveform(self, index: int) -> np.ndarray:
        """The decoded, resampled clip (float32, read-only, from the waveform cache)."""
        return self.waveform_cache.get(self.rows[index].path, self._load)

    def _placed(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """With a fixed window (``num_frames``), put the clip at a random place in it (or cut a random window)
        before augmentation, so noise covers the whole window as in streaming; evaluation centres it instead."""
        n = self.feature_config.num_samples
        if n is None or len(y) == n:
            return y
        return fit_waveform(y, n, offset=int(rng.integers(0, abs(n - len(y)) + 1)))

    def features(self, index: int, epoch: int | None = None) -> np.ndarray:
        """Features of item ``index``: float32 ``(F, T)``, augmented when the dataset has augmentation.

        Raises:
            ValueError: naming the manifest row when its audio cannot be read or processed.
        """
        row = self.rows[index]
        try:
            if self.augment is None:
                feats = self.feature_cache.get(row.path, lambda p: self.extractor(self._load(p)))
                rng = self.rng(index, epoch) if self.spec_augment is not None else None
            else:
                rng = self.rng(index, epoch)
                feats = self.extractor(self.augment(self._placed(self.waveform(index), rng), rng))
            if self.spec_augment is not None:
                feats = self.spec_augment(feats, rng)
        except (OSError, ValueError) as exc:
            reason = str(exc)
            if reason.startswith(f"{row.path}: "):  # the reader's own message already names the file
                reason = reason[len(str(row.path)) + 2:]
            raise ValueError(f"{self.source}: row {index + 1} ({row.filename!r}, {row.path}): {reason}") from exc
        return feats

    def _resolve(self, item: int | tuple[int, int]) -> tuple[int, int | None]:
        if isinstance(item, (tuple, list)):
            epoch, index = item
            return int(index), int(epoch)
        return int(item), None

    def _tensor(self, index: int, epoch: int | None) -> torch.Tensor:
        feats = self.features(index, epoch)
        return torch.from_numpy(np.array(feats, dtype=np.float32, copy=not feats.flags.writeable))


class KeywordDataset(FeatureDataset):
    """Keyword classification: item -> ``(features (F, num_frames) float32, label index int, item index int)``.

    The item index lets callbacks name the file behind a prediction (``dataset.rows[index]``).

    Args:
        manifest: CSV path (read with ``need_keyword=True``), a list of paths (rows concatenated) or rows.
        features: FeatureConfig or dict; ``num_frames`` must be set (fixed-size CNN input).
        labels: The class list; default: sorted distinct keywords of ``manifest``. Pass the training labels to
            val/test datasets: a keyword outside them raises ValueError naming the rows.
        check_audio: Let :func:`read_manifest` check every clip up front (:func:`kwslab.audio.check_wav`).
        **kwargs: See :class:`FeatureDataset` (augment, spec_augment, cache_dir, seed, caches).
    """

    def __init__(self, manifest: ManifestLike, features: FeatureConfig | Mapping[str, object] | None = None,
                 labels: Sequence[str] | None = None, *, check_audio: bool = True, **kwargs: object) -> None:
        rows, source = manifest_rows(manifest, need_keyword=True, check_audio=check_audio)
        super().__init__(rows, features, source=source, **kwargs)  # type: ignore[arg-type]
        if self.feature_config.num_frames is None:
            raise ValueError(f"{source}: KeywordDataset needs a fixed features.num_frames (e.g. 101 for 1 s at "
                             f"hop_length {self.feature_config.hop_length} and {self.feature_config.sample_rate} Hz)")
        if labels is None:
            labels = labels_from_rows(self.rows, source)
        elif isinstance(labels, str) or len(set(labels)) != len(labels) or not labels:
            raise ValueError(f"labels must be a non-empty list of distinct keywords, got {labels!r}")
        self.labels = list(labels)
        index = {label: i for i, label in enumerate(self.labels)}
        problems = [f"row {i} {r.filename!r}: keyword {r.keyword!r} is not one of the labels"
                    for i, r in enumerate(self.rows, 1) if r.keyword not in index]
        _raise_listed(source, problems, f"Known labels: {self.labels}. Add the keyword to `labels` (and to the "
                                        "training data) or fix the rows.")
        self.targets = [index[r.keyword] for r in self.rows]

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        index, epoch = self._resolve(item)
        return self._tensor(index, epoch), self.targets[index], index


class CTCDataset(FeatureDataset):
    """CTC recognition: item -> ``(features (F, T) float32, target ids (L,) int64)``.

    Targets are ``vocab.encode(vocab.normalize(transcript))`` (``_silence_`` rows may have empty transcripts).

    Args:
        manifest: CSV path (read with ``need_transcript=True`` and ``vocab``), a list of paths or rows.
        features: FeatureConfig or dict (``num_frames`` normally unset: variable length).
        vocab: CharVocab, a string of characters, or None for the default vocabulary.
        check_audio: Let :func:`read_manifest` check every clip up front (and fill durations).
        **kwargs: See :class:`FeatureDataset`.
    """

    def __init__(self, manifest: ManifestLike, features: FeatureConfig | Mapping[str, object] | None = None,
                 vocab: CharVocab | str | None = None, *, check_audio: bool = True, **kwargs: object) -> None:
        self.vocab = vocab if isinstance(vocab, CharVocab) else CharVocab() if vocab is None else CharVocab(vocab)
        rows, source = manifest_rows(manifest, need_transcript=True, vocab=self.vocab, check_audio=check_audio)
        super().__init__(rows, features, source=source, **kwargs)  # type: ignore[arg-type]
        self.targets: list[np.ndarray] = []
        problems = []
        for i, row in enumerate(self.rows, 1):
            try:
                self.targets.append(np.asarray(self.vocab.encode(self.vocab.normalize(row.transcript)), np.int64))
            except ValueError as exc:
                problems.append(f"row {i} {row.filename!r}: {exc}")
        _raise_listed(source, problems, "Fix the transcripts or pass a vocabulary that covers them.")

    def durations(self) -> list[float]:
        """Clip durations in seconds: the manifest's, else from the WAV header."""
        return [r.duration if r.duration is not None else wav_info(r.path).duration for r in self.rows]

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch = self._resolve(item)
        return self._tensor(index, epoch), torch.from_numpy(self.targets[index])


def collate_ctc(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a list of ``(features (F, T_i), targets (L_i,))`` into a batch.

    Returns:
        ``feats`` (B, F, T_max) float32 zero-padded on the right, ``feat_lens`` (B,) int64, ``targets``
        (B, max(1, L_max)) int64 padded with 0 (ignored by ``ctc_loss`` past ``target_lens``), ``target_lens``
        (B,) int64.
    """
    if not batch:
        raise ValueError("collate_ctc: empty batch")
    feats, targets = zip(*batch)
    feat_lens = torch.tensor([f.shape[-1] for f in feats], dtype=torch.int64)
    target_lens = torch.tensor([t.numel() for t in targets], dtype=torch.int64)
    padded = feats[0].new_zeros((len(feats), feats[0].shape[0], int(feat_lens.max())))
    for i, f in enumerate(feats):
        padded[i, :, :f.shape[-1]] = f
    padded_targets = torch.zeros((len(targets), max(1, int(target_lens.max()))), dtype=torch.int64)
    for i, t in enumerate(targets):
        padded_targets[i, :t.numel()] = t
    return padded, feat_lens, padded_targets, target_lens


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    # spawn_key keeps this stream apart from the per-item generators default_rng([seed, epoch, index]).
    return np.random.default_rng(np.random.SeedSequence([seed, epoch], spawn_key=(1,)))


class SeededRandomSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)`` for every index, in a fresh order each epoch drawn from ``(seed, epoch)``.

    Args:
        num_items: Dataset length. seed: Base seed (same seed and epoch -> same order). shuffle: False keeps
            0..n-1 in order (the epoch is still passed on, e.g. for augmentation).
    """

    def __init__(self, num_items: int, seed: int = 0, shuffle: bool = True) -> None:
        self.num_items, self.seed, self.shuffle, self.epoch = int(num_items), int(seed), bool(shuffle), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order (Lightning calls this before every epoch)."""
        self.epoch = int(epoch)

    def __iter__(self):
        order = _epoch_rng(self.seed, self.epoch).permutation(self.num_items) if self.shuffle \
            else range(self.num_items)
        return iter([(self.epoch, int(i)) for i in order])

    def __len__(self) -> int:
        return self.num_items


class BucketBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of similar duration, shuffled under a seed; yields lists of ``(epoch, index)``.

    Indices are sorted by duration and cut into ``num_buckets`` buckets of (nearly) equal count. Each epoch,
    every bucket is shuffled and cut into batches of ``batch_size`` (the last one of a bucket may be smaller,
    or is dropped with ``drop_last``), and the order of all batches is shuffled. Without ``shuffle`` the
    batches follow ascending duration. Every index appears exactly once per epoch unless ``drop_last``.

    Args:
        durations: Seconds (or any length measure) per dataset index. batch_size: Items per batch.
        num_buckets: Duration buckets (1 = plain shuffled batches). shuffle, drop_last, seed: see above.
    """

    def __init__(self, durations: Sequence[float], batch_size: int, *, num_buckets: int = 10, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0) -> None:
        if batch_size < 1 or num_buckets < 1:
            raise ValueError(f"BucketBatchSampler: batch_size ({batch_size}) and num_buckets ({num_buckets}) "
                             "must be >= 1")
        order = np.argsort(np.asarray(durations, dtype=np.float64), kind="stable")
        self.buckets = [b for b in np.array_split(order, min(num_buckets, max(1, order.size))) if b.size]
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self.seed, self.epoch = int(seed), 0

    @property
    def sampler(self) -> "BucketBatchSampler":
        """Itself: Lightning calls ``batch_sampler.sampler.set_epoch(epoch)``, which must reach this object."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's batches (Lightning calls this before every epoch)."""
        self.epoch = int(epoch)

    def _batches(self) -> list[np.ndarray]:
        rng = _epoch_rng(self.seed, self.epoch)
        batches = []
        for bucket in self.buckets:
            items = rng.permutation(bucket) if self.shuffle else bucket
            for start in range(0, items.size, self.batch_size):
                batch = items[start:start + self.batch_size]
                if batch.size == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self):
        return iter([[(self.epoch, int(i)) for i in batch] for batch in self._batches()])

    def __len__(self) -> int:
        if self.drop_last:
            return sum(b.size // self.batch_size for b in self.buckets)
        return sum(-(-b.size // self.batch_size) for b in self.buckets)
