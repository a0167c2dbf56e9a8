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


def test_custom_keywords_get_their_own_corpus_folder_and_near_words_as_negatives(tmp_path, monkeypatch) -> None:
    from kwslab.data.manifest import write_manifest
    from kwslab.tts.datamodules import SyntheticKeywordDataModule

    monkeypatch.chdir(tmp_path)
    dm = SyntheticKeywordDataModule(root=None, keywords=["marvin"], near_words=5, features={"num_frames": 101})
    assert dm.root.as_posix() == "data/tts_keywords/marvin"
    unknown = dm.build_args["unknown_words"]
    assert "marvin" not in unknown and "sheila" in unknown  # the default list minus the keyword
    assert len([w for w in unknown if "arvin" in w or w.startswith("mar") or w.startswith("m")]) >= 5
    # a folder that holds another keyword list's corpus is refused, not mixed into
    write_manifest(tmp_path / "other" / "train.csv", [
        {"filename": str(tmp_path / "a.wav"), "keyword": "yes"}, {"filename": str(tmp_path / "b.wav"),
                                                                 "keyword": "_unknown_"}])
    dm = SyntheticKeywordDataModule(root=str(tmp_path / "other"), keywords=["marvin"], features={"num_frames": 101})
    with pytest.raises(ValueError) as err:
        dm.prepare_data()
    assert "holds a corpus of the keywords ['yes'], not ['marvin']" in str(err.value)
