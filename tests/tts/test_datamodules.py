"""The espeak-made datamodules: their old class paths still resolve, and label names come from the manifest schema."""
import pytest

from kwslab.data.manifest import SILENCE_LABEL, UNKNOWN_LABEL


def test_old_class_paths_name_the_same_classes() -> None:
    """Configs and run folders written before the move say ``kwslab.data.synthetic.*``."""
    from kwslab.data import synthetic
    from kwslab.tts import datamodules

    assert synthetic.SyntheticKeywordDataModule is datamodules.SyntheticKeywordDataModule
    assert synthetic.SyntheticDigitsCTCDataModule is datamodules.SyntheticDigitsCTCDataModule


def test_keyword_datamodule_classes_are_the_keywords_plus_silence_and_unknown(tmp_path) -> None:
    from kwslab.tts.datamodules import SyntheticKeywordDataModule

    dm = SyntheticKeywordDataModule(root=str(tmp_path), keywords=["yes", "no"], features={"num_frames": 101})
    assert dm.labels == sorted(["yes", "no", SILENCE_LABEL, UNKNOWN_LABEL])
    with pytest.raises(ValueError, match="_silence_"):
        SyntheticKeywordDataModule(root=str(tmp_path), keywords=["yes", SILENCE_LABEL])
