"""kwslab.audio.checks: the public clip_problem/check_clip helpers that commands and datasets share."""

from __future__ import annotations

import numpy as np
import pytest

from kwslab.audio import WavError, check_clip, clip_problem, read_wav_bytes

from .wavbuild import PCM, chunk, fmt, riff


def test_clip_problem_flags_a_zero_sample_clip_read_from_a_real_header() -> None:
    x, _ = read_wav_bytes(riff(fmt(PCM, 1, 16000, 16), chunk(b"data", b"")))
    assert x.size == 0
    assert clip_problem(x) == "is empty (0 samples)"
    assert clip_problem(x, allow_silent=True) == "is empty (0 samples)"


def test_clip_problem_flags_an_all_zero_clip_unless_silence_is_allowed() -> None:
    zeros = np.zeros(1600, np.float32)
    assert clip_problem(zeros) == "is silent (every sample is 0)"
    assert clip_problem(zeros, allow_silent=True) is None
    assert clip_problem(np.zeros((800, 2), np.float32)) == "is silent (every sample is 0)"


def test_clip_problem_counts_non_finite_samples() -> None:
    x = np.full(100, 0.1, np.float32)
    x[[3, 50]] = [np.nan, np.inf]
    assert clip_problem(x) == "holds 2 NaN/Inf samples"


def test_clip_problem_accepts_ordinary_audio() -> None:
    x = np.zeros(1600, np.float32)
    x[10] = 1e-4  # one non-zero sample is not silence
    assert clip_problem(x) is None
    assert check_clip(x, "a.wav") is x


@pytest.mark.parametrize("samples, phrase", [(np.zeros(0, np.float32), "empty (0 samples)"),
                                              (np.zeros(10, np.float32), "silent")])
def test_check_clip_raises_one_line_naming_the_file(samples: np.ndarray, phrase: str) -> None:
    with pytest.raises(WavError) as err:
        check_clip(samples, "clips/bad one.wav")
    message = str(err.value)
    assert message.startswith("clips/bad one.wav: the audio ")
    assert phrase in message and "\n" not in message
