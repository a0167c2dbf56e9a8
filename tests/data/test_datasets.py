"""KeywordDataset / CTCDataset / collate_ctc / samplers: shapes, labels, caching, determinism, clear errors."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from kwslab.audio import load_audio
from kwslab.augment import SpecAugment
from kwslab.data.datasets import BucketBatchSampler, CTCDataset, KeywordDataset, SeededRandomSampler, collate_ctc
from kwslab.data.manifest import read_manifest, write_manifest
from kwslab.dsp import FeatureExtractor
from kwslab.text import CharVocab
from tests.support.clips import KEYWORDS, SR, small_features, write_ctc_manifest, write_keyword_manifests

AUGMENT = {"time_shift": {"p": 1.0}, "gain": {"p": 1.0}, "gaussian_noise": {"p": 1.0, "snr_db": [10, 20]}}


@pytest.fixture
def manifests(tmp_path: Path) -> dict[str, Path]:
    return write_keyword_manifests(tmp_path, per_keyword=2)


def test_keyword_dataset_items(manifests: dict[str, Path]) -> None:
    cfg = small_features()
    ds = KeywordDataset(manifests["train"], cfg)
    assert len(ds) == 2 * len(KEYWORDS) and ds.labels == sorted(KEYWORDS)
    feats, label, index = ds[0]
    assert index == 0
    assert feats.shape == (cfg.num_features, 50) and feats.dtype == torch.float32
    assert isinstance(label, int) and ds.labels[label] == ds.rows[0].keyword
    expected = FeatureExtractor(cfg)(load_audio(ds.rows[3].path, SR))
    np.testing.assert_allclose(ds[3][0].numpy(), expected, rtol=1e-6)
    assert ds[3][0].numpy().flags.writeable  # a private copy, not the cache's array


def test_keyword_labels_explicit_and_unknown(manifests: dict[str, Path], tmp_path: Path) -> None:
    ds = KeywordDataset(manifests["val"], small_features(), labels=["yes", "no", "up", "down"])
    assert ds.labels == ["yes", "no", "up", "down"] and ds[0][1] == ds.labels.index(ds.rows[0].keyword)
    rows = read_manifest(manifests["val"])
    write_manifest(tmp_path / "odd.csv", [*rows[:2], {"filename": str(rows[2].path), "keyword": "maybe"}])
    with pytest.raises(ValueError, match=r"row 3 .*keyword 'maybe' is not one of the labels"):
        KeywordDataset(tmp_path / "odd.csv", small_features(), labels=sorted(KEYWORDS))
    with pytest.raises(ValueError, match="num_frames"):
        KeywordDataset(manifests["val"], small_features(num_frames=None))
    with pytest.raises(ValueError, match="distinct"):
        KeywordDataset(manifests["val"], small_features(), labels=["no", "no"])


def test_clean_feature_cache_hits_and_fingerprint(manifests: dict[str, Path], tmp_path: Path) -> None:
    ds = KeywordDataset(manifests["train"], small_features(), cache_dir=tmp_path / "cache")
    first = [ds[i][0] for i in range(len(ds))]
    assert ds.feature_cache.misses == len(ds) and ds.feature_cache.hits == 0
    second = [ds[i][0] for i in range(len(ds))]
    assert ds.feature_cache.memory_hits == len(ds) and ds.feature_cache.misses == len(ds)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    fresh = KeywordDataset(manifests["train"], small_features(), cache_dir=tmp_path / "cache")
    assert all(torch.equal(fresh[i][0], first[i]) for i in range(len(fresh)))
    assert fresh.feature_cache.disk_hits == len(fresh) and fresh.feature_cache.misses == 0
    changed = KeywordDataset(manifests["train"], small_features(n_mfcc=12), cache_dir=tmp_path / "cache")
    assert changed[0][0].shape[0] == 12 and changed.feature_cache.misses == 1 and changed.feature_cache.hits == 0


def test_augmented_items_deterministic_and_waveforms_cached(manifests: dict[str, Path]) -> None:
    ds = KeywordDataset(manifests["train"], small_features(), augment=AUGMENT, seed=3)
    clean = KeywordDataset(manifests["train"], small_features())
    epoch0 = [ds[(0, i)][0] for i in range(len(ds))]
    assert ds.waveform_cache.misses == len(ds) and ds.feature_cache.misses == 0
    epoch1 = [ds[(1, i)][0] for i in range(len(ds))]
    assert ds.waveform_cache.memory_hits == len(ds) and ds.waveform_cache.misses == len(ds)
    assert all(torch.equal(a, ds[(0, i)][0]) for i, a in enumerate(epoch0))  # same (seed, epoch, index)
    assert not any(torch.equal(a, b) for a, b in zip(epoch0, epoch1))  # a new draw every epoch
    assert not torch.equal(epoch0[0], clean[0][0])
    other_seed = KeywordDataset(manifests["train"], small_features(), augment=AUGMENT, seed=4)
    assert not torch.equal(other_seed[(0, 0)][0], epoch0[0])
    ds.set_epoch(1)  # a plain int index uses the dataset's epoch
    assert torch.equal(ds[2][0], epoch1[2])


def test_spec_augment_on_cached_clean_features(manifests: dict[str, Path]) -> None:
    spec = SpecAugment(freq_masks=1, freq_width=4, time_masks=2, time_width=8)
    ds = KeywordDataset(manifests["train"], small_features(), spec_augment=spec, seed=1)
    clean = KeywordDataset(manifests["train"], small_features())
    for i in range(len(ds)):
        expected = spec(clean[i][0].numpy(), np.random.default_rng([1, 2, i]))
        np.testing.assert_array_equal(ds[(2, i)][0].numpy(), expected)
    ds[(3, 0)]
    assert ds.feature_cache.misses == len(ds) and ds.feature_cache.hits == 1  # SpecAugment reuses clean features


def test_broken_audio_names_the_row(manifests: dict[str, Path]) -> None:
    ds = KeywordDataset(manifests["test"], small_features())
    ds.rows[1].path.write_bytes(b"ID3 definitely not a wav")
    with pytest.raises(ValueError, match=r"row 2 \('.*test_no_1\.wav'"):
        ds[1]


def test_ctc_dataset_targets_and_lengths(tmp_path: Path) -> None:
    manifest = write_ctc_manifest(tmp_path, count=6)
    cfg = small_features(num_frames=None)
    ds = CTCDataset(manifest, cfg)
    vocab = CharVocab()
    for i in range(len(ds)):
        feats, target = ds[i]
        assert feats.dtype == torch.float32 and feats.shape[0] == cfg.num_features
        assert feats.shape[1] == FeatureExtractor(cfg)(load_audio(ds.rows[i].path, SR)).shape[1]
        assert target.dtype == torch.int64
        assert vocab.decode(target.tolist()) == ds.rows[i].transcript.lower().rstrip("!")
    durations = ds.durations()
    assert len(set(durations)) > 3 and all(0.19 < d < 0.91 for d in durations)


def test_ctc_dataset_rejects_characters_outside_vocab(tmp_path: Path) -> None:
    manifest = write_ctc_manifest(tmp_path, count=3)
    rows = read_manifest(manifest)
    bad = [rows[0], dataclasses.replace(rows[1], transcript="route 66")]
    with pytest.raises(ValueError, match=r"row 2 .*outside the vocabulary: '6'"):
        CTCDataset(bad, small_features(num_frames=None))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        CTCDataset(manifest, small_features(num_frames=None), vocab="abc ")


def test_collate_ctc_pads_and_works_with_ctc_loss() -> None:
    batch = [(torch.randn(13, 7), torch.tensor([3, 4])), (torch.randn(13, 10), torch.tensor([5, 6, 7, 8])),
             (torch.randn(13, 4), torch.tensor([], dtype=torch.int64))]
    feats, feat_lens, targets, target_lens = collate_ctc(batch)
    assert feats.shape == (3, 13, 10) and feat_lens.tolist() == [7, 10, 4]
    assert torch.equal(feats[0, :, :7], batch[0][0]) and torch.all(feats[0, :, 7:] == 0)
    assert targets.tolist() == [[3, 4, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0]] and target_lens.tolist() == [2, 4, 0]
    log_probs = torch.randn(10, 3, 29).log_softmax(-1)  # (T, B, C)
    loss = torch.nn.functional.ctc_loss(log_probs, targets, feat_lens, target_lens)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="empty batch"):
        collate_ctc([])


def test_seeded_random_sampler() -> None:
    sampler = SeededRandomSampler(20, seed=5)
    first = list(sampler)
    assert sorted(i for _, i in first) == list(range(20)) and {e for e, _ in first} == {0}
    assert list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert [i for _, i in second] != [i for _, i in first] and {e for e, _ in second} == {1}
    assert [i for _, i in SeededRandomSampler(20, seed=5, shuffle=False)] == list(range(20))


def test_bucket_batch_sampler_covers_every_index_once() -> None:
    durations = np.random.default_rng(0).uniform(0.2, 5.0, 103)
    sampler = BucketBatchSampler(durations, batch_size=8, num_buckets=4, seed=1)
    epochs = []
    for epoch in range(3):
        sampler.sampler.set_epoch(epoch)  # the path Lightning takes: batch_sampler.sampler.set_epoch
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = [i for batch in batches for _, i in batch]
        assert sorted(flat) == list(range(103))
        assert all(e == epoch for batch in batches for e, _ in batch) and all(len(b) <= 8 for b in batches)
        epochs.append([[i for _, i in b] for b in batches])
    assert epochs[0] != epochs[1]
    sampler.set_epoch(0)
    assert [[i for _, i in b] for b in sampler] == epochs[0]  # same seed and epoch -> same batches
    # Batches hold similar durations: each spans at most one bucket's range.
    order = np.sort(durations)
    widest_bucket = max(b[-1] - b[0] for b in np.array_split(order, 4))
    assert max(np.ptp(durations[b]) for b in epochs[0]) <= widest_bucket + 1e-12
    assert np.mean([np.ptp(durations[b]) for b in epochs[0]]) < 0.5 * np.ptp(durations)
    dropped = BucketBatchSampler(durations, batch_size=8, num_buckets=4, drop_last=True)
    assert all(len(b) == 8 for b in dropped) and len(list(dropped)) == len(dropped) == 4 * (26 // 8)
    ordered = [[i for _, i in b] for b in BucketBatchSampler(durations, 8, num_buckets=4, shuffle=False)]
    assert list(durations[[i for b in ordered for i in b]]) == sorted(durations)


# ------------------------------------------------------------------------------------- issue 18: bad-input audit


def _float_wav_with_nan(path: Path) -> None:
    from kwslab.audio import write_wav

    write_wav(path, np.full(SR // 2, 0.1, np.float32), SR, float_format=True)
    data = bytearray(path.read_bytes())
    data[-4:] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(data))


def test_nan_clip_stops_keyword_dataset_construction_not_an_epoch(manifests: dict[str, Path]) -> None:
    from kwslab.data.manifest import ManifestError

    rows = read_manifest(manifests["train"])
    _float_wav_with_nan(rows[2].path)
    with pytest.raises(ManifestError, match=r"row 3 .*non-finite float samples \(NaN/Inf\)"):
        KeywordDataset(manifests["train"], small_features())


def test_zero_sample_clip_is_an_error_naming_the_file_in_keyword_and_ctc_datasets(tmp_path: Path) -> None:
    from kwslab.audio import write_wav

    rows = read_manifest(write_ctc_manifest(tmp_path, count=2))
    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0, np.float32), SR)
    rows = [rows[0], dataclasses.replace(rows[1], filename="empty.wav", path=empty, keyword="yes")]
    ctc = CTCDataset(rows, small_features(num_frames=None), check_audio=False)
    with pytest.raises(ValueError) as err:
        ctc[1]
    assert str(err.value).startswith(f"<rows>: row 2 ('empty.wav', {empty}): the audio is empty (0 samples)")
    assert "FeatureExtractor" not in str(err.value)
    keyword = KeywordDataset([dataclasses.replace(rows[0], keyword="yes"), rows[1]], small_features(),
                             check_audio=False)
    with pytest.raises(ValueError, match=rf"row 2 \('empty\.wav', {empty}\): the audio is empty \(0 samples\)"):
        keyword[1]  # used to be padded into an all-zero example without a word


def test_all_zero_clip_is_still_a_valid_silence_example(tmp_path: Path) -> None:
    from kwslab.audio import write_wav

    write_wav(tmp_path / "quiet.wav", np.zeros(SR // 2, np.float32), SR)
    write_manifest(tmp_path / "m.csv", [{"filename": tmp_path / "quiet.wav", "keyword": "_silence_"}])
    feats, _, _ = KeywordDataset(tmp_path / "m.csv", small_features())[0]
    assert torch.isfinite(feats).all()


@pytest.mark.parametrize("rate", [16000, 8000])
def test_mixed_sample_rates_give_the_features_of_resampling_first(tmp_path: Path, rate: int) -> None:
    """One FeatureConfig for 8 and 16 kHz recordings (FSDD beside Speech Commands): each file is resampled when it
    is read, so a manifest mixing rates gives exactly the features of the same audio resampled beforehand."""
    from kwslab.audio import resample, write_wav
    from tests.support.clips import clip

    rows = []
    for i, sr in enumerate((8000, 16000, 8000)):
        write_wav(tmp_path / f"mixed_{i}.wav", clip(i, 0.6, sr), sr)
        y = load_audio(tmp_path / f"mixed_{i}.wav", sr)  # the samples as stored (16-bit)
        write_wav(tmp_path / f"first_{i}.wav", resample(y, sr, rate) if sr != rate else y, rate, float_format=True)
        rows.append({"transcript": "go left", "i": i})
    for kind in ("mixed", "first"):
        write_manifest(tmp_path / f"{kind}.csv", [{"filename": tmp_path / f"{kind}_{r['i']}.wav",
                                                  "transcript": r["transcript"]} for r in rows])
    cfg = small_features(sample_rate=rate, n_fft=512 if rate == 16000 else 256,
                         hop_length=rate // 100, num_frames=None)
    mixed, first = CTCDataset(tmp_path / "mixed.csv", cfg), CTCDataset(tmp_path / "first.csv", cfg)
    for i in range(len(rows)):
        a, b = mixed[i][0].numpy(), first[i][0].numpy()
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-4)
