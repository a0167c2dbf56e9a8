"""KeywordDataModule / CTCDataModule: num_outputs and labels after __init__, loaders, workers, determinism."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from kwslab.data.datamodules import CTCDataModule, KeywordDataModule
from kwslab.data.datasets import BucketBatchSampler, SeededRandomSampler
from tests.support.clips import KEYWORDS, SMALL_FEATURES, small_features, write_ctc_manifest, write_keyword_manifests


@pytest.fixture
def manifests(tmp_path: Path) -> dict[str, Path]:
    return write_keyword_manifests(tmp_path, per_keyword=3)


def keyword_dm(manifests: dict[str, Path], **kwargs: object) -> KeywordDataModule:
    return KeywordDataModule(str(manifests["train"]), str(manifests["val"]), str(manifests["test"]),
                             features=dict(SMALL_FEATURES), **{"batch_size": 4, **kwargs})


def test_keyword_num_outputs_and_labels_right_after_init(manifests: dict[str, Path]) -> None:
    dm = keyword_dm(manifests)
    assert dm.num_outputs == len(KEYWORDS) and dm.labels == sorted(KEYWORDS) and dm.vocab is None
    assert dm.feature_config == small_features() and dm.datasets == {}  # nothing built yet
    explicit = keyword_dm(manifests, labels=["yes", "up", "no", "_unknown_"])
    assert explicit.num_outputs == 4 and explicit.labels[0] == "yes"
    assert explicit.feature_config.n_mfcc == 13 and explicit.hparams["labels"][0] == "yes"
    assert "features" not in explicit.hparams  # the model's feature_config is the checkpoint's one copy
    with pytest.raises(ValueError, match="num_frames"):
        KeywordDataModule(str(manifests["train"]), features={**SMALL_FEATURES, "num_frames": None})


def test_keyword_loaders_iterate(manifests: dict[str, Path]) -> None:
    dm = keyword_dm(manifests, augment={"gain": {"p": 1.0}}, spec_augment={"time_masks": 1})
    dm.setup("fit")
    train = dm.train_dataloader()
    assert isinstance(train.sampler, SeededRandomSampler)
    batches = list(train)
    assert len(batches) == 3 and batches[0][0].shape == (4, 13, 50) and batches[0][1].dtype == torch.int64
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted([0, 1, 2] * 3)
    train.sampler.set_epoch(1)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(batches, train))  # new order and augmentation
    assert dm.datasets["train"].augment is not None and dm.datasets["val"].augment is None
    assert dm.datasets["val"].spec_augment is None
    val = list(dm.val_dataloader())
    assert sum(len(b[1]) for b in val) == 9
    assert [b[1].tolist() for b in val] == [b[1].tolist() for b in dm.val_dataloader()]  # no shuffling
    assert dm.feature_cache.misses == 9 and dm.feature_cache.hits == 9  # val features computed once, then reused
    assert sum(len(b[1]) for b in dm.test_dataloader()) == 9


def test_missing_val_manifest_gives_no_batches(manifests: dict[str, Path]) -> None:
    dm = KeywordDataModule(str(manifests["train"]), features=dict(SMALL_FEATURES), batch_size=4)
    assert dm.val_dataloader() == [] and dm.test_dataloader() == []
    assert len(list(dm.train_dataloader())) == 3


def test_unknown_label_in_val_is_named(manifests: dict[str, Path], tmp_path: Path) -> None:
    dm = keyword_dm(manifests, labels=["no", "yes"])
    with pytest.raises(ValueError, match=r"row \d+ .*keyword 'up' is not one of the labels"):
        dm.setup("validate")


def test_prepare_hook_runs_when_train_manifest_is_missing(tmp_path: Path) -> None:
    calls = []

    def prepare() -> None:
        calls.append(1)
        if not (tmp_path / "train.csv").exists():
            write_keyword_manifests(tmp_path, per_keyword=1)

    dm = KeywordDataModule(str(tmp_path / "train.csv"), str(tmp_path / "val.csv"), features=dict(SMALL_FEATURES),
                           prepare=prepare)
    assert dm.num_outputs == 3 and calls == [1]
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 3 and calls == [1, 1]


def test_ctc_datamodule(tmp_path: Path) -> None:
    train = write_ctc_manifest(tmp_path, "train", count=10)
    val = write_ctc_manifest(tmp_path, "val", count=4)
    dm = CTCDataModule(str(train), str(val), features={**SMALL_FEATURES, "num_frames": None}, batch_size=3,
                       num_buckets=2, spec_augment={"time_masks": 1, "time_width": 5})
    assert dm.num_outputs == 29 == len(dm.vocab) and dm.labels[dm.vocab.blank] == ""
    loader = dm.train_dataloader()
    assert isinstance(loader.batch_sampler, BucketBatchSampler)
    seen = 0
    for feats, feat_lens, targets, target_lens in loader:
        assert feats.shape[0] == len(feat_lens) == len(targets) == len(target_lens) <= 3
        assert feats.shape[1] == 13 and feats.shape[2] == int(feat_lens.max())
        seen += len(feat_lens)
    assert seen == 10
    val_batches = list(dm.val_dataloader())
    assert sum(len(b[1]) for b in val_batches) == 4 and val_batches[0][2].dtype == torch.int64
    no_buckets = CTCDataModule(str(train), features={**SMALL_FEATURES, "num_frames": None}, batch_size=4,
                               bucket_by_length=False, chars="abcdefghijklmnopqrstuvwxyz ")
    assert no_buckets.num_outputs == 28 and sum(len(b[1]) for b in no_buckets.train_dataloader()) == 10


def test_workers_share_the_disk_cache(manifests: dict[str, Path], tmp_path: Path) -> None:
    dm = keyword_dm(manifests, num_workers=2, cache_dir=str(tmp_path / "cache"), augment={"gain": {"p": 1.0}})
    worker_val = torch.cat([b[0] for b in dm.val_dataloader()])
    dm.setup("fit")
    worker_train = [b[0] for b in dm.train_dataloader()]
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 9  # val clips, written by the workers (augmented train items are not cached)
    single = keyword_dm(manifests, num_workers=0, cache_dir=str(tmp_path / "cache"), augment={"gain": {"p": 1.0}})
    assert torch.equal(torch.cat([b[0] for b in single.val_dataloader()]), worker_val)
    assert single.feature_cache.disk_hits == 9 and single.feature_cache.misses == 0
    single.setup("fit")  # same seed -> the same shuffled, augmented batches, whatever the worker count
    assert all(torch.equal(a, b) for a, b in zip(worker_train, (b[0] for b in single.train_dataloader())))


class _TinyClassifier(L.LightningModule):
    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.net = torch.nn.Linear(13, num_outputs)
        self.epochs_seen: list[int] = []

    def training_step(self, batch, batch_idx):
        feats, labels, _ = batch
        return torch.nn.functional.cross_entropy(self.net(feats.mean(-1)), labels)

    def on_train_epoch_start(self) -> None:
        self.epochs_seen.append(self.trainer.train_dataloader.sampler.epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_sets_the_sampler_epoch(manifests: dict[str, Path]) -> None:
    dm = KeywordDataModule(str(manifests["train"]), features=dict(SMALL_FEATURES), batch_size=4,
                           augment={"gain": {"p": 1.0}})
    model = _TinyClassifier(dm.num_outputs)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    assert model.epochs_seen == [0, 1]


class _TinyCTC(L.LightningModule):
    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.net = torch.nn.Linear(13, num_outputs)
        self.epochs_seen: list[int] = []

    def training_step(self, batch, batch_idx):
        feats, feat_lens, targets, target_lens = batch
        log_probs = self.net(feats.transpose(1, 2)).log_softmax(-1).transpose(0, 1)  # (T, B, C)
        return torch.nn.functional.ctc_loss(log_probs, targets, feat_lens, target_lens, zero_infinity=True)

    def on_train_epoch_start(self) -> None:
        self.epochs_seen.append(self.trainer.train_dataloader.batch_sampler.epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_sets_the_bucket_sampler_epoch(tmp_path: Path) -> None:
    dm = CTCDataModule(str(write_ctc_manifest(tmp_path, count=6)), features={**SMALL_FEATURES, "num_frames": None},
                       batch_size=2, num_buckets=2)
    model = _TinyCTC(dm.num_outputs)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    assert model.epochs_seen == [0, 1] and trainer.global_step == 2 * 4  # 2 buckets of 3 -> 2 + 2 batches


def test_a_list_of_train_manifests_is_read_as_one(manifests: dict[str, Path], tmp_path: Path) -> None:
    dm = KeywordDataModule([str(manifests["train"]), str(manifests["val"])], str(manifests["val"]),
                           features=dict(SMALL_FEATURES), batch_size=4)
    assert dm.labels == sorted(KEYWORDS)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 18 and len(dm.datasets["val"]) == 9
    assert " + " in dm.datasets["train"].source
    assert sum(len(b[1]) for b in dm.train_dataloader()) == 18
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,keyword\nmissing.wav,yes\n")
    with pytest.raises(ValueError, match="missing.wav"):
        KeywordDataModule([str(manifests["train"]), str(bad)], features=dict(SMALL_FEATURES)).setup("fit")
    with pytest.raises(ValueError, match="empty list"):
        KeywordDataModule([], features=dict(SMALL_FEATURES)).setup("fit")
