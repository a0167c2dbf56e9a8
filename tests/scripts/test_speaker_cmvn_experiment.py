"""scripts/speaker_cmvn_experiment.py: features normalised with each speaker's statistics, not the clip's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.keyword_task import SR, make_tiny_dataset
from tests.support.scripts import load_script


def test_each_speaker_ends_with_zero_mean_unit_variance_but_clips_do_not(tmp_path: Path) -> None:
    script = load_script("speaker_cmvn_experiment")
    data = make_tiny_dataset(tmp_path, per_class={"train": 6})
    features = {"sample_rate": SR, "n_mfcc": 13, "num_frames": 51, "cmvn": False}
    ds = script.SpeakerNormalizedKeywordDataset(str(data["train"]), features)
    by_speaker: dict[str, list[np.ndarray]] = {}
    for i in range(len(ds)):
        by_speaker.setdefault(ds.speaker(i), []).append(ds.features(i))
    assert sorted(by_speaker) == ["s0", "s1", "s2"]
    for clips in by_speaker.values():
        frames = np.concatenate(clips, axis=1)
        np.testing.assert_allclose(frames.mean(axis=1), 0.0, atol=1e-4)
        np.testing.assert_allclose(frames.std(axis=1), 1.0, atol=1e-3)
        assert np.abs(clips[0].mean(axis=1)).max() > 0.1  # one clip keeps its own offset from the speaker
    with pytest.raises(ValueError, match="cmvn false"):
        script.SpeakerNormalizedKeywordDataset(str(data["train"]), {**features, "cmvn": True})


def test_missing_manifests_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    script = load_script("speaker_cmvn_experiment")
    monkeypatch.setattr(script, "REPO", tmp_path)
    assert script.main(["--speaker", "george"]) == 2
    err = capsys.readouterr().err
    assert "speaker_george" in err and "fsdd_experiments.py --only speaker-synth" in err
