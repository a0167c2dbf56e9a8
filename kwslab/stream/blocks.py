"""Reading a WAV file block by block, so a long recording never sits in memory whole.

Blocks are mono float32 at the wanted rate, exactly the samples :func:`kwslab.audio.load_audio` gives, in pieces.
There is no streaming resampler yet: a file at another rate is read whole and resampled, then cut into blocks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from kwslab.audio import WavReader, load_audio


def iter_wav_blocks(path: str | Path, sample_rate: int, block_seconds: float = 1.0) -> Iterator[np.ndarray]:
    """Yield ``(n,)`` float32 mono blocks of ``block_seconds`` (the last one shorter) at ``sample_rate``.

    Raises:
        WavError: naming the file, when it cannot be read (raised before the first block).
    """
    block = max(1, round(block_seconds * sample_rate))
    with WavReader(path) as wav:  # the reader's own header parser: same checks and messages as read_wav
        info = wav.info
        if info.sample_rate != sample_rate:
            wav.close()
            x = load_audio(path, sample_rate)
            for s in range(0, len(x), block):
                yield x[s:s + block]
            return
        for start in range(0, info.frames, block):
            x = wav.read(start, block)
            if x.ndim == 2:
                x = x.mean(axis=1, dtype=np.float64).astype(np.float32)
            yield np.ascontiguousarray(x, dtype=np.float32)
