"""Keyword clips fill a whole feature window: centred in evaluation, at a seeded random place in training."""
from __future__ import annotations

import numpy as np

from kwslab.audio import load_audio
from kwslab.data.datasets import KeywordDataset
from kwslab.dsp import FeatureExtractor, fit_waveform
from tests.support.clips import SR, small_features, write_keyword_manifests


def test_eval_items_are_the_centred_window_and_train_items_move_with_the_epoch(tmp_path):
    manifests = write_keyword_manifests(tmp_path)
    cfg = small_features()
    clean = KeywordDataset(manifests["train"], cfg)
    y = load_audio(clean.rows[0].path, SR)
    assert len(y) < cfg.num_samples  # the fixture clips are shorter than the window
    expected = FeatureExtractor(small_features(num_frames=None))(fit_waveform(y, cfg.num_samples))
    np.testing.assert_allclose(clean[0][0].numpy(), expected, rtol=1e-6)

    gain_only = {"gain": {"min_db": 0.0, "max_db": 0.0, "p": 1.0}}  # an identity augmentation
    train = KeywordDataset(manifests["train"], cfg, augment=gain_only, seed=5)
    onsets = set()
    for epoch in range(6):
        feats = train[(epoch, 0)][0].numpy()
        energy = feats[0]  # c0 tracks the frame energy; the clip is where it is high
        onsets.add(int(np.argmax(energy > energy.min() + 0.5 * np.ptp(energy))))
        np.testing.assert_array_equal(feats, train[(epoch, 0)][0].numpy())  # seeded: same epoch, same item
    assert len(onsets) >= 3, f"the clip should move around the window, onsets {onsets}"
