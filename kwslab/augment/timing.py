"""Transforms that move or change time: shift, speed (pitch with it), tempo stretch (WSOLA) and cutting word onsets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kwslab.augment.base import WaveformTransform, _draw, _pair
from kwslab.dsp.features import block_power

__all__ = ["TimeShift", "SpeedPerturb", "TimeStretch", "OnsetCut"]


class TimeShift(WaveformTransform):
    """Shift by a whole number of samples drawn from ±``max_fraction`` of the clip length, zero-filling the gap.

    A positive shift delays the signal. The length is unchanged; samples shifted past the end are dropped.
    """

    def __init__(self, max_fraction: float = 0.1, p: float = 0.5) -> None:
        super().__init__(p)
        self.max_fraction = _pair("TimeShift.max_fraction", max_fraction, 0.0, 1.0)[0]

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        limit = int(round(self.max_fraction * y.size))
        shift = int(rng.integers(-limit, limit + 1))
        out = np.zeros_like(y)
        if shift >= 0:
            out[shift:] = y[:y.size - shift]
        else:
            out[:shift] = y[-shift:]
        return out


class SpeedPerturb(WaveformTransform):
    """Speed perturbation (tempo and pitch together, as in Kaldi): resample by a factor from the range.

    The factor is drawn uniformly and rounded to a multiple of 1/``resolution``; ``y`` is resampled with
    :func:`kwslab.audio.resample` from ``resolution * factor`` to ``resolution`` "Hz", so a factor of 1.1 plays
    10% faster and 10% higher. The default resolution 50 (steps of 0.02) keeps the rate ratio small, which
    makes the polyphase resampler about 4x faster than steps of 0.01. Length policy: the output has
    ``round(len(y) / factor)`` samples unless ``keep_length`` is true, in which case it is centre-cropped or
    zero-padded at the end back to ``len(y)``. To change the tempo alone, see :class:`TimeStretch`.
    """

    def __init__(self, min_factor: float = 0.9, max_factor: float = 1.1, resolution: int = 50,
                 keep_length: bool = False, p: float = 0.5) -> None:
        super().__init__(p)
        self.min_factor, self.max_factor = _pair("SpeedPerturb.min_factor/max_factor", (min_factor, max_factor),
                                                 0.25, 4.0)
        if not isinstance(resolution, int) or resolution < 10:
            raise ValueError(f"SpeedPerturb.resolution must be an integer >= 10, got {resolution!r}")
        self.resolution = resolution
        self.keep_length = bool(keep_length)

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from kwslab.audio import resample

        step = int(round(_draw(rng, (self.min_factor, self.max_factor)) * self.resolution))
        out = y.copy() if step == self.resolution else resample(y, step, self.resolution)
        if self.keep_length and out.size != y.size:
            if out.size > y.size:
                start = (out.size - y.size) // 2
                out = out[start:start + y.size]
            else:
                out = np.pad(out, (0, y.size - out.size))
        return out


class TimeStretch(WaveformTransform):
    """Change the tempo and keep the pitch and formants: WSOLA (waveform-similarity overlap-add).

    :class:`SpeedPerturb` resamples, so a faster voice is also a higher one. This transform changes only the
    duration (a rate drawn uniformly from ``[min_rate, max_rate]``; > 1 is faster, the output has
    ``round(len(y) / rate)`` samples), so the two together give a voice shift at any tempo. The output is built
    from ``frame_ms`` Hann-windowed frames overlapping by half (a periodic Hann window at half-frame hops sums to
    exactly 1). Frame ``k`` is taken from the input near its nominal place, ``k * hop * rate``, shifted by up to
    ``tolerance_ms`` to the position whose waveform best matches the natural continuation of frame ``k - 1``
    (highest normalised cross-correlation), so the pitch periods of neighbouring frames line up instead of
    cancelling. At rate 1 the best match is the nominal place itself and the input comes back unchanged.
    ``tolerance_ms = 0`` is plain overlap-add (OLA): the tempo changes too, but voiced sounds flutter.
    """

    def __init__(self, min_rate: float = 0.8, max_rate: float = 1.25, frame_ms: float = 30.0,
                 tolerance_ms: float = 10.0, sample_rate: int = 16000, p: float = 0.5) -> None:
        super().__init__(p)
        self.min_rate, self.max_rate = _pair("TimeStretch.min_rate/max_rate", (min_rate, max_rate), 0.25, 4.0)
        self.frame_ms = _pair("TimeStretch.frame_ms", frame_ms, 2.0, 200.0)[0]
        self.tolerance_ms = _pair("TimeStretch.tolerance_ms", tolerance_ms, 0.0, 100.0)[0]
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"TimeStretch.sample_rate must be a positive integer, got {sample_rate!r}")
        self.sample_rate = sample_rate

    def stretch(self, y: np.ndarray, rate: float) -> np.ndarray:
        """``y`` played at ``rate`` times its tempo (deterministic; :meth:`apply` draws the rate)."""
        x = np.asarray(y, dtype=np.float64)
        hop = max(1, int(round(self.frame_ms * self.sample_rate / 2000.0)))
        n = 2 * hop
        tol = int(round(self.tolerance_ms * self.sample_rate / 1000.0))
        out_len = max(1, int(round(x.size / rate)))
        frames = -(-out_len // hop) + 1
        # frame k is centred on output sample k * hop and read around input sample k * hop * rate; the padding
        # lets frames and their search windows run past both ends of the clip
        starts = np.round(np.arange(frames) * hop * rate).astype(np.int64) + tol  # nominal starts in xp
        xp = np.zeros(int(starts[-1]) + 2 * tol + 2 * n + hop)
        xp[hop + tol: hop + tol + x.size] = x
        window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
        energy = np.concatenate([[0.0], np.cumsum(xp * xp)])
        buf = np.zeros(frames * hop + n)
        prev = int(starts[0])
        buf[:n] += window * xp[prev: prev + n]
        for k in range(1, frames):
            lo = int(starts[k]) - tol
            if tol:
                target = xp[prev + hop: prev + hop + n]
                candidates = np.lib.stride_tricks.sliding_window_view(xp[lo: lo + 2 * tol + n], n)
                norms = np.sqrt(energy[lo + n: lo + n + 2 * tol + 1] - energy[lo: lo + 2 * tol + 1] + 1e-12)
                prev = lo + int(np.argmax(candidates @ target / norms))
            else:
                prev = lo
            buf[k * hop: k * hop + n] += window * xp[prev: prev + n]
        return buf[hop: hop + out_len]

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.stretch(y, _draw(rng, (self.min_rate, self.max_rate)))


class OnsetCut(WaveformTransform):
    """Cut the beginning off words, as an aggressive silence trimmer or a late push-to-talk button does.

    Real corpora contain words whose first consonant is missing: in FSDD, george's recordings 30-39 start at full
    loudness (their first 20 ms are as loud as the whole clip; 0.2-0.3 of it in his other recordings), and a
    recogniser trained on complete words hears "(th)ree" as "eight" and "(t)wo" as "four". This transform
    teaches the model such words: it finds the word onsets of ``y`` and deletes the first ``cut_ms`` of each
    with probability ``word_p``, so the word starts abruptly, mid-sound. Works on isolated clips (a clip that
    starts with speech has its onset at sample 0) and on connected speech (each word after a pause).

    Onsets: 10-ms frames louder than ``max(floor + rise_db, top - 50 dB)`` count as sound (``floor`` and ``top``
    are the 10th and 95th percentiles of the frame energies in dB; when they are closer than ``rise_db`` the clip
    has no pause and every frame above ``top - 50 dB`` is sound); runs of sound separated by less than
    ``min_gap_ms`` of quiet are one word, and a word's onset is its first frame. A cut never removes more than
    half of its word. The output is shorter than the input by the removed samples. Put it first in the chain,
    before speed changes and noise, so the pauses are still quiet when it looks for them.

    Measured (docs/results.md, section 7): the FSDD connected-digit recogniser with george held out went from 12.1%
    to 8.6% WER (beam + LM; seed 1: 12.5% to 9.15%) with ``cut_ms=(30, 150), word_p=0.6, p=0.7``. The 1-s keyword
    classifier did not gain (speaker-disjoint mean 87.4% -> 86.5% with a milder cut).
    """

    def __init__(self, cut_ms: float | Sequence[float] = (20.0, 100.0), word_p: float = 0.5,
                 min_gap_ms: float = 40.0, rise_db: float = 10.0, sample_rate: int = 16000, p: float = 0.5) -> None:
        super().__init__(p)
        self.cut_ms = _pair("OnsetCut.cut_ms", cut_ms, 0.0, 1000.0)
        if not isinstance(word_p, (int, float)) or not 0.0 <= word_p <= 1.0:
            raise ValueError(f"OnsetCut.word_p must be a probability in [0, 1], got {word_p!r}")
        self.word_p = float(word_p)
        self.min_gap_ms = _pair("OnsetCut.min_gap_ms", min_gap_ms, 0.0, 5000.0)[0]
        self.rise_db = _pair("OnsetCut.rise_db", rise_db, 0.0, 120.0)[0]
        self.sample_rate = int(sample_rate)

    def words(self, y: np.ndarray) -> list[tuple[int, int]]:
        """``[(start, end), ...]`` sample ranges of the words found in ``y`` (frame resolution: 10 ms)."""
        frame = max(1, self.sample_rate // 100)
        power = block_power(y, frame)
        if power.size == 0:
            return []
        e = 10.0 * np.log10(power + 1e-12)
        floor, top = np.percentile(e, 10), np.percentile(e, 95)
        # a clip with no quiet part (top within rise_db of floor) is all word, e.g. a tightly trimmed isolated clip
        loud = e > (max(floor + self.rise_db, top - 50.0) if top - floor >= self.rise_db else top - 50.0)
        loud &= e > -100.0  # digital silence is never a word
        if not loud.any():
            return []
        edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
        runs = edges.reshape(-1, 2)  # [start, end) frames of each loud run
        gap = self.min_gap_ms / 10.0
        merged = [list(runs[0])]
        for s, t in runs[1:]:
            if s - merged[-1][1] < gap:
                merged[-1][1] = t
            else:
                merged.append([s, t])
        return [(int(s) * frame, min(int(t) * frame, y.size)) for s, t in merged]

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        keep = np.ones(y.size, dtype=bool)
        for start, end in self.words(y):
            if rng.random() < self.word_p:
                cut = min(int(round(_draw(rng, self.cut_ms) * self.sample_rate / 1000.0)), (end - start) // 2)
                keep[start:start + cut] = False
        return y[keep]
