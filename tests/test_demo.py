"""The feature walk-through runs offline and shows every stage."""
from kwslab.demo import ascii_spectrogram, main, synth_word

import numpy as np


def test_demo_prints_every_stage(capsys):
    main([])
    out = capsys.readouterr().out
    for stage in ("1. wrote", "2. read_wav: pcm_s16", "3. load_audio", "4. log_mel (40, 81), mfcc (13, 81)",
                  "5. FeatureExtractor", "(39, 101)", "6. log-mel spectrogram"):
        assert stage in out, stage


def test_synth_word_is_a_loud_voiced_clip_and_spectrogram_has_one_row_per_band():
    y = synth_word()
    assert y.dtype == np.float32 and len(y) == 12800 and 0.4 < np.abs(y).max() <= 0.5
    art = ascii_spectrogram(np.random.default_rng(0).random((5, 100)), width=20)
    assert [len(row) for row in art.splitlines()] == [20] * 5
