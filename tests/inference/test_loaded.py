"""Loading a checkpoint (``kwslab.inference.loaded``): a model has one feature setting; an older checkpoint with a
second copy loads when the two agree and is refused, naming both, when they do not."""
from __future__ import annotations

import pytest

from kwslab.checkpoint import CheckpointError
from kwslab.inference import load_model
from tests.support.checkpoints import write_checkpoint
from tests.support.keyword_task import FEATURES


def test_a_checkpoint_with_two_different_feature_settings_is_refused_naming_both(tmp_path):
    from kwslab.models import KeywordClassifier

    model = KeywordClassifier(3, ["a", "b", "c"], FEATURES)
    hparams = {"num_outputs": 3, "labels": ["a", "b", "c"], "feature_config": FEATURES,
               "net": model.hparams["net"]}
    same = write_checkpoint(tmp_path / "same.ckpt", model, "kwslab.models.KeywordClassifier", hparams,
                            datamodule_hyper_parameters={"features": dict(FEATURES), "batch_size": 4})
    assert load_model(same).feature_config.n_mfcc == 13  # two copies that agree: an older checkpoint, loads
    other = write_checkpoint(tmp_path / "other.ckpt", model, "kwslab.models.KeywordClassifier", hparams,
                             datamodule_hyper_parameters={"features": {**FEATURES, "n_mfcc": 20}})
    with pytest.raises(CheckpointError, match=r"two different feature settings.*'n_mfcc': 13.*'n_mfcc': 20"):
        load_model(other)


def test_a_ctc_checkpoint_with_two_different_vocabularies_is_refused_naming_both(tmp_path):
    import torch

    from kwslab.text import DEFAULT_CHARS
    from tests.support.checkpoints import ctc_checkpoint

    path = ctc_checkpoint(tmp_path / "ctc.ckpt")
    data = torch.load(path, weights_only=True)
    data["datamodule_hyper_parameters"] = {"chars": DEFAULT_CHARS, "blank_first": True}
    torch.save(data, tmp_path / "agree.ckpt")
    loaded = load_model(tmp_path / "agree.ckpt")  # an older checkpoint whose two copies agree
    assert loaded.kind == "ctc" and loaded.is_ctc
    data["datamodule_hyper_parameters"] = {"chars": "abc ", "blank_first": True}
    torch.save(data, tmp_path / "differ.ckpt")
    with pytest.raises(CheckpointError, match=r"two different vocabularies.*'abc '"):
        load_model(tmp_path / "differ.ckpt")
    data["datamodule_hyper_parameters"] = {"features": {"sample_rate": -5}}
    torch.save(data, tmp_path / "broken.ckpt")
    with pytest.raises(CheckpointError, match=r"broken.ckpt: broken feature settings.*sample_rate"):
        load_model(tmp_path / "broken.ckpt")
