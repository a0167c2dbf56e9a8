"""Is a decoded clip usable? One answer for every command and dataset.

A WAV file can parse cleanly and still hold nothing to score: 0 frames (a header with an empty ``data`` chunk),
only zeros (a muted or failed recording, a TTS error turned into silence), or NaN/Inf samples (the reader
already refuses those in float files; arrays made in memory can still hold them). A model given such a clip
answers with confidence anyway (a 0-sample file scored ``_unknown_ 0.693``), so callers ask first:

* :func:`clip_problem` returns the reason as a short phrase, or ``None`` when the clip is fine;
* :func:`check_clip` raises :class:`~kwslab.audio.WavError` naming the file and saying what to do.

All-zero clips are a problem by default; pass ``allow_silent=True`` where digital silence is legitimate (a
``_silence_`` training class built from zeros). Only the samples are looked at, never the file's bytes.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from .io import WavError

__all__ = ["clip_problem", "check_clip"]

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
