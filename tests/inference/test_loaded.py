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
