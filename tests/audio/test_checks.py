"""kwslab.audio.checks: the public clip_problem/check_clip helpers that commands and datasets share."""

from __future__ import annotations

import numpy as np
import pytest

from kwslab.audio import WavError, check_clip, check_wav, clip_problem, read_wav_bytes

from .wavbuild import FLOAT, PCM, chunk, fmt, riff


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


# ------------------------------------------------------------------------------------ check_wav: a file on disk


def float_wav(values: list[float], rate: int = 8000) -> bytes:
    import struct

    return riff(fmt(FLOAT, 1, rate, 32), chunk(b"data", struct.pack(f"<{len(values)}f", *values)))


def test_check_wav_refuses_nan_deep_in_a_float_file_naming_file_and_frame(tmp_path) -> None:
    from kwslab.audio import checks

    values = [0.1] * 600_000
    values[500_000] = float("nan")
    path = tmp_path / "corrupt.wav"
    path.write_bytes(float_wav(values))
    with pytest.raises(WavError, match=rf"^{path}: 1 non-finite float samples \(NaN/Inf\), the first in frame "
                                       r"500000; the file is corrupt$"):
        check_wav(path)
    assert checks._SCAN_FRAMES < 500_000  # the NaN sits in a later block than the first: the scan is whole


def test_check_wav_refuses_a_zero_frame_file(tmp_path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(riff(fmt(PCM, 1, 16000, 16), chunk(b"data", b"")))
    with pytest.raises(WavError, match=rf"^{path}: the audio is empty \(0 samples\)"):
        check_wav(path)


def test_check_wav_returns_the_header_of_good_pcm_and_float_files(tmp_path) -> None:
    (tmp_path / "f.wav").write_bytes(float_wav([0.5, -0.25, 2.0]))
    (tmp_path / "p.wav").write_bytes(riff(fmt(PCM, 1, 16000, 16), chunk(b"data", b"\x01\x00\x02\x00")))
    assert check_wav(tmp_path / "f.wav").frames == 3
    assert check_wav(tmp_path / "p.wav").encoding == "pcm_s16"


def test_check_wav_sees_a_float_file_that_changed_after_it_was_checked(tmp_path) -> None:
    path = tmp_path / "f.wav"
    path.write_bytes(float_wav([0.5] * 10))
    check_wav(path)
    path.write_bytes(float_wav([0.5] * 10 + [float("inf")]))  # another size: the cache key changes
    with pytest.raises(WavError, match="non-finite"):
        check_wav(path)
