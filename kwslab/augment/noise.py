"""Additive noise at a drawn SNR: white Gaussian noise, or segments of recorded background noise."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kwslab.augment.base import WaveformTransform, _draw, _pair
from kwslab.dsp.waveform import mix_at_snr

__all__ = ["GaussianNoise", "BackgroundNoise"]


class GaussianNoise(WaveformTransform):
    """Add white Gaussian noise at an SNR drawn uniformly from ``snr_db`` (exact, measured over the clip).

    Silent clips are returned unchanged (their SNR is undefined).
    """

    def __init__(self, snr_db: float | Sequence[float] = (10.0, 40.0), p: float = 0.5) -> None:
        super().__init__(p)
        self.snr_db = _pair("GaussianNoise.snr_db", snr_db)

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        snr = _draw(rng, self.snr_db)
        return mix_at_snr(y, rng.standard_normal(y.size), snr)


class BackgroundNoise(WaveformTransform):
    """Mix in a random segment of a random noise clip at an SNR drawn from ``snr_db``.

    Args:
        noises: WAV paths, folders (every ``*.wav`` inside, sorted) or 1-D arrays already at ``sample_rate``.
            Files are loaded lazily with :func:`kwslab.audio.load_audio` on first use and kept in memory.
        snr_db: SNR range in dB. sample_rate: rate of the clips this transform sees. p: probability.

    A noise clip shorter than ``y`` is looped from a random offset.
    """

    def __init__(self, noises: Sequence[str | Path | np.ndarray] | str | Path,
                 snr_db: float | Sequence[float] = (0.0, 20.0), sample_rate: int = 16000, p: float = 0.5) -> None:
        super().__init__(p)
        self.snr_db = _pair("BackgroundNoise.snr_db", snr_db)
        self.sample_rate = int(sample_rate)
        sources = [noises] if isinstance(noises, (str, Path)) else list(noises)
        self._sources: list[Path | np.ndarray] = []
        for src in sources:
            if isinstance(src, np.ndarray):
                if src.ndim != 1 or src.size == 0:
                    raise ValueError(f"BackgroundNoise: noise arrays must be 1-D and non-empty, got {src.shape}")
                self._sources.append(src.astype(np.float32))
            elif Path(src).is_dir():
                self._sources.extend(sorted(Path(src).glob("*.wav")))
            elif Path(src).is_file():
                self._sources.append(Path(src))
            else:
                raise ValueError(f"BackgroundNoise: noise file or folder {str(src)!r} does not exist")
        if not self._sources:
            raise ValueError(f"BackgroundNoise: no noise clips found in {noises!r}; give WAV files or folders")

    def _noise(self, index: int) -> np.ndarray:
        src = self._sources[index]
        if isinstance(src, Path):
            from kwslab.audio import load_audio

            src = self._sources[index] = load_audio(src, self.sample_rate)
        return src

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = self._noise(int(rng.integers(len(self._sources))))
        snr = _draw(rng, self.snr_db)
        if noise.size >= y.size:
            start = int(rng.integers(0, noise.size - y.size + 1))
            segment = noise[start:start + y.size]
        else:
            start = int(rng.integers(0, noise.size))
            segment = noise[(start + np.arange(y.size)) % noise.size]
        return mix_at_snr(y, segment, snr)
