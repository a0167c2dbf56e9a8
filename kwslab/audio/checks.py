"""Is a decoded clip usable? One answer for every command and dataset.

A WAV file can parse cleanly and still hold nothing to score: 0 frames (a header with an empty ``data`` chunk),
only zeros (a muted or failed recording, a TTS error turned into silence), or NaN/Inf samples (the reader
already refuses those in float files; arrays made in memory can still hold them). A model given such a clip
answers with confidence anyway (a 0-sample file scored ``_unknown_ 0.693``), so callers ask first:

* :func:`clip_problem` returns the reason as a short phrase, or ``None`` when the clip is fine;
* :func:`check_clip` raises :class:`~kwslab.audio.WavError` naming the file and saying what to do.

All-zero clips are a problem by default; pass ``allow_silent=True`` where digital silence is legitimate (a
``_silence_`` training class built from zeros). Only the samples are looked at, never the file's bytes.

:func:`check_wav` is the up-front check of a file on disk that manifests and preparers run on every row, so a
corrupt clip stops a run before training rather than an hour into it. It costs what is cheap to know: the header
(as :func:`~kwslab.audio.wav_info`) and its frame count (0 frames is refused) for every file; the samples are read
only for IEEE-float files, the one encoding that can hold NaN/Inf (PCM cannot), block by block, and the answer is
remembered per (file, size, mtime) in this process so reading the same manifest again is free.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from .io import WavError, WavInfo, WavReader, wav_info

__all__ = ["clip_problem", "check_clip", "check_wav"]

_SCAN_FRAMES = 1 << 18  # frames per block when a float file's samples are scanned
_checked: dict[tuple[str, int, int, int], WavInfo] = {}  # float files found clean: (path, inode, size, mtime_ns)
_CHECKED_MAX = 1 << 17

PathLike = Union[str, "os.PathLike[str]"]


def clip_problem(samples: np.ndarray, *, allow_silent: bool = False) -> str | None:
    """Why a decoded clip cannot be used, or ``None`` when it can.

    Args:
        samples: Decoded audio, shape ``(n,)`` or ``(n, channels)``, any real dtype.
        allow_silent: Accept a clip whose samples are all exactly 0.

    Returns:
        ``"is empty (0 samples)"``, ``"holds N NaN/Inf samples"`` or ``"is silent (every sample is 0)"``;
        ``None`` for a usable clip.
    """
    x = np.asarray(samples)
    if x.size == 0:
        return "is empty (0 samples)"
    if np.issubdtype(x.dtype, np.inexact):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            return f"holds {bad} NaN/Inf samples"
    if not allow_silent and not np.any(x):
        return "is silent (every sample is 0)"
    return None


def check_clip(samples: np.ndarray, path: PathLike | None = None, *, allow_silent: bool = False) -> np.ndarray:
    """Return ``samples`` unchanged if :func:`clip_problem` finds nothing wrong; else raise.

    Args:
        samples: Decoded audio, shape ``(n,)`` or ``(n, channels)``.
        path: The file the clip came from (named in the message); ``None`` gives ``<samples>``.
        allow_silent: Accept an all-zero clip.

    Raises:
        WavError: ``"PATH: the audio is empty (0 samples); ..."`` and the like, one line, naming the file.
    """
    problem = clip_problem(samples, allow_silent=allow_silent)
    if problem is not None:
        name = os.fspath(path) if path is not None else "<samples>"
        raise WavError(f"{name}: the audio {problem}; nothing to score: re-record or re-export the file, or "
                       "remove it from the input")
    return samples


def check_wav(path: PathLike) -> WavInfo:
    """Check a WAV file before it is used: its header, that it holds at least one frame and, for float files,
    that every sample is finite.

    Args:
        path: The file.

    Returns:
        The header, as :func:`~kwslab.audio.wav_info` gives it.

    Raises:
        WavError: one line naming the file: anything :func:`~kwslab.audio.wav_info` refuses, ``"the audio is empty
            (0 samples)"``, or NaN/Inf samples in a float file (the frame of the first one).
    """
    info = wav_info(path)
    name = os.fspath(path)
    if info.frames == 0:
        raise WavError(f"{name}: the audio is empty (0 samples); re-record or re-export the file, or remove it")
    if not info.encoding.startswith("float"):
        return info  # PCM holds no NaN/Inf: the header is the whole check
    st = os.stat(name)
    key = (os.path.abspath(name), st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _checked:
        return _checked[key]
    with WavReader(path) as reader:  # _decode raises WavError naming the file and the first bad frame
        for start in range(0, info.frames, _SCAN_FRAMES):
            block = reader.read(start, _SCAN_FRAMES)
            if block.size == 0:
                break
    if len(_checked) >= _CHECKED_MAX:
        _checked.clear()
    _checked[key] = info
    return info
