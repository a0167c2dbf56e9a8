"""Waveform augmentation and SpecAugment, NumPy only (no torch).

Every transform is a small class with a probability ``p`` and ``__call__(y, rng) -> y``: ``y`` is a 1-D float
waveform (or an ``(F, T)`` feature matrix for :class:`SpecAugment`) and ``rng`` an explicit
``np.random.Generator``, so the same generator state always gives the same output. A transform never changes its
input in place. Each call draws ``rng.random()`` first to decide whether to act (``< p``), then its parameters.

Waveform transforms keep the length of ``y`` except :class:`SpeedPerturb`, :class:`TimeStretch` and
:class:`OnsetCut` (see there). The datasets apply them to training clips only, before feature extraction;
:class:`SpecAugment` runs after feature extraction.

Build a chain from YAML-like settings with :func:`build_waveform_augment`::

    augment = build_waveform_augment({"time_shift": {"p": 0.5}, "gaussian_noise": {"snr_db": [10, 30]}},
                                     sample_rate=16000)
    y_aug = augment(y, np.random.default_rng(0))
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from kwslab.dsp.features import block_power, hz_to_mel
from kwslab.dsp.waveform import mix_at_snr, power

__all__ = [
    "WaveformTransform", "GaussianNoise", "BackgroundNoise", "TimeShift", "SpeedPerturb", "TimeStretch", "Gain",
    "BandLimit", "LowPass", "EQTilt", "BandStop", "OnsetCut", "Reverb", "Compose", "SpecAugment", "WAVEFORM_TRANSFORMS",
    "build_waveform_augment", "build_spec_augment",
]


def _pair(name: str, value: float | Sequence[float], low: float = -math.inf, high: float = math.inf) -> tuple:
    """Validate a ``(min, max)`` range (a single number means a fixed value); raise ValueError naming ``name``."""
    pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in pair):
        raise ValueError(f"{name} must be a number or a [min, max] pair of finite numbers, got {value!r}")
    lo, hi = float(pair[0]), float(pair[1])
    if lo > hi or lo < low or hi > high:
        raise ValueError(f"{name} must satisfy {low} <= min <= max <= {high}, got {value!r}")
    return lo, hi


def _draw(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


class WaveformTransform:
    """Base class: ``__call__`` checks ``y``, draws the coin for ``p`` and calls :meth:`apply`.

    Args:
        p: probability of applying the transform, in [0, 1].
    """

    def __init__(self, p: float = 0.5) -> None:
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"{type(self).__name__} expects a 1-D waveform, got shape {y.shape}")
        if rng.random() >= self.p or y.size == 0:
            return y
        return np.asarray(self.apply(y, rng), dtype=np.float32)

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


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


class Gain(WaveformTransform):
    """Multiply by a gain drawn uniformly in dB from [``min_db``, ``max_db``]. No clipping is applied."""

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0, p: float = 0.5) -> None:
        super().__init__(p)
        self.min_db, self.max_db = _pair("Gain.min_db/max_db", (min_db, max_db), -120.0, 60.0)

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return y * np.float32(10.0 ** (_draw(rng, (self.min_db, self.max_db)) / 20.0))


def _filter_fft(y: np.ndarray, sample_rate: int, response: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Zero-phase filter: multiply the spectrum of zero-padded ``y`` by the real ``response(freqs_hz)``."""
    n_fft = 1 << int(2 * y.size - 1).bit_length()  # >= 2 * len: the response's ringing does not wrap into y
    spectrum = np.fft.rfft(y, n_fft)
    spectrum *= response(np.fft.rfftfreq(n_fft, 1.0 / sample_rate))
    return np.fft.irfft(spectrum, n_fft)[:y.size]


class BandLimit(WaveformTransform):
    """Random band-pass (telephone-like): Butterworth magnitude responses applied with zero phase via the FFT.

    ``low_hz`` and ``high_hz`` are ranges for the high-pass and low-pass corner frequencies (a low corner of 0
    disables the high-pass). The magnitude is ``1/sqrt(1 + (f/high)^(2n))`` times ``1/sqrt(1 + (low/f)^(2n))``.
    """

    def __init__(self, low_hz: float | Sequence[float] = (200.0, 400.0),
                 high_hz: float | Sequence[float] = (3000.0, 3600.0), order: int = 4, sample_rate: int = 16000,
                 p: float = 0.5) -> None:
        super().__init__(p)
        name = type(self).__name__
        self.sample_rate = int(sample_rate)
        self.high_hz = _pair(f"{name}.high_hz", high_hz, 1.0, self.sample_rate / 2)
        self.low_hz = _pair(f"{name}.low_hz", low_hz, 0.0, self.high_hz[0])
        if not isinstance(order, int) or not 1 <= order <= 16:
            raise ValueError(f"{name}.order must be an integer in [1, 16], got {order!r}")
        self.order = order

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        low, high, n2 = _draw(rng, self.low_hz), _draw(rng, self.high_hz), 2 * self.order

        def response(f: np.ndarray) -> np.ndarray:
            gain = 1.0 / np.sqrt(1.0 + (f / high) ** n2)
            if low > 0.0:
                with np.errstate(divide="ignore"):
                    gain /= np.sqrt(1.0 + (low / f) ** n2)  # f = 0 -> inf -> gain 0
            return gain

        return _filter_fft(y, self.sample_rate, response)


class LowPass(BandLimit):
    """Random low-pass with its cut-off drawn from [``min_cutoff_hz``, ``max_cutoff_hz``] (see BandLimit)."""

    def __init__(self, min_cutoff_hz: float = 2000.0, max_cutoff_hz: float = 4000.0, order: int = 4,
                 sample_rate: int = 16000, p: float = 0.5) -> None:
        super().__init__(0.0, (min_cutoff_hz, max_cutoff_hz), order, sample_rate, p)


class EQTilt(WaveformTransform):
    """Spectral tilt: gain ``slope * log2(f / pivot_hz)`` dB with a slope drawn in dB/octave (zero phase).

    Frequencies below ``min_hz`` get the gain of ``min_hz`` so the DC gain stays finite.
    """

    def __init__(self, min_db_per_octave: float = -3.0, max_db_per_octave: float = 3.0, pivot_hz: float = 1000.0,
                 min_hz: float = 50.0, sample_rate: int = 16000, p: float = 0.5) -> None:
        super().__init__(p)
        self.slope = _pair("EQTilt.min_db_per_octave/max_db_per_octave", (min_db_per_octave, max_db_per_octave),
                           -24.0, 24.0)
        self.sample_rate = int(sample_rate)
        self.pivot_hz = _pair("EQTilt.pivot_hz", pivot_hz, 1.0, self.sample_rate / 2)[0]
        self.min_hz = _pair("EQTilt.min_hz", min_hz, 1.0, self.pivot_hz)[0]

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        slope = _draw(rng, self.slope)
        return _filter_fft(y, self.sample_rate,
                           lambda f: 10.0 ** (slope * np.log2(np.maximum(f, self.min_hz) / self.pivot_hz) / 20.0))


class BandStop(WaveformTransform):
    """Random notches: ``count`` bands, each ``width_mel`` mels wide, attenuated by ``depth_db`` (zero phase).

    The waveform counterpart of SpecAugment's frequency masks for MFCC features, where masking cepstral rows
    (what :class:`SpecAugment` does on an MFCC matrix) hides no frequency band. A fixed notch alone is a fixed
    channel, which per-utterance CMVN largely removes; put this *before* the noise in the chain, so the noise
    fills the notch and the band carries no speech. Centres are uniform on the mel scale in
    [``min_hz``, ``max_hz``] (HTK mels; ``max_hz`` None: Nyquist); band edges are raised-cosine, 20% of the
    width each. Measured on FSDD (docs/results.md): no gain there, neither for new speakers nor synthetic-to-real.
    """

    def __init__(self, count: int | Sequence[int] = (1, 2), width_mel: float | Sequence[float] = (80.0, 300.0),
                 depth_db: float | Sequence[float] = (20.0, 40.0), min_hz: float = 100.0,
                 max_hz: float | None = None, sample_rate: int = 16000, p: float = 0.5) -> None:
        super().__init__(p)
        self.sample_rate = int(sample_rate)
        counts = _pair("BandStop.count", count, 1, 16)
        if any(int(c) != c for c in counts):
            raise ValueError(f"BandStop.count must be an integer or a pair of integers, got {count!r}")
        self.count = (int(counts[0]), int(counts[1]))
        self.width_mel = _pair("BandStop.width_mel", width_mel, 1.0, 4000.0)
        self.depth_db = _pair("BandStop.depth_db", depth_db, 0.0, 120.0)
        nyquist = self.sample_rate / 2
        self.max_hz = _pair("BandStop.max_hz", nyquist if max_hz is None else max_hz, 1.0, nyquist)[0]
        self.min_hz = _pair("BandStop.min_hz", min_hz, 0.0, self.max_hz)[0]

    def gain(self, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the notches and return the linear gain at frequencies ``f`` (Hz)."""
        mel = hz_to_mel(f, htk=True)
        lo_mel, hi_mel = float(hz_to_mel(self.min_hz, htk=True)), float(hz_to_mel(self.max_hz, htk=True))
        gain_db = np.zeros_like(mel)
        for _ in range(int(rng.integers(self.count[0], self.count[1] + 1))):
            centre, width, depth = _draw(rng, (lo_mel, hi_mel)), _draw(rng, self.width_mel), _draw(rng, self.depth_db)
            # 1 inside the flat middle (60% of the width), raised-cosine to 0 over 20% on each side
            edge = 0.2 * width
            dist = np.abs(mel - centre) - (0.5 * width - edge)
            shape = np.where(dist <= 0, 1.0, 0.5 * (1.0 + np.cos(np.pi * np.clip(dist / edge, 0.0, 1.0))))
            gain_db = np.minimum(gain_db, -depth * shape)
        return 10.0 ** (gain_db / 20.0)

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _filter_fft(y, self.sample_rate, lambda f: self.gain(f, rng))


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


class Reverb(WaveformTransform):
    """Cheap synthetic reverb: convolve with a direct impulse plus exponentially decaying Gaussian noise.

    The noise tail has unit energy, lasts ``rt60`` seconds (decaying by 60 dB over it) and is scaled by
    ``10^(-drr_db / 20)`` relative to the direct path; convolution is done with the FFT and the result is cut to
    ``len(y)`` and rescaled to the input's RMS.
    """

    def __init__(self, rt60: float | Sequence[float] = (0.2, 0.7), drr_db: float | Sequence[float] = (0.0, 10.0),
                 sample_rate: int = 16000, p: float = 0.5) -> None:
        super().__init__(p)
        self.rt60 = _pair("Reverb.rt60", rt60, 0.01, 5.0)
        self.drr_db = _pair("Reverb.drr_db", drr_db, -30.0, 60.0)
        self.sample_rate = int(sample_rate)

    def impulse_response(self, rng: np.random.Generator) -> np.ndarray:
        """Draw one impulse response (1-D float64, ``h[0]`` the direct path)."""
        rt60, drr = _draw(rng, self.rt60), _draw(rng, self.drr_db)
        t = np.arange(1, max(2, int(rt60 * self.sample_rate))) / self.sample_rate
        tail = rng.standard_normal(t.size) * np.exp(-math.log(1000.0) * t / rt60)  # 1000x amplitude = 60 dB
        tail *= 10.0 ** (-drr / 20.0) / math.sqrt(np.sum(tail ** 2))
        return np.concatenate([[1.0], tail])

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h = self.impulse_response(rng)
        n_fft = 1 << int(y.size + h.size - 2).bit_length()
        wet = np.fft.irfft(np.fft.rfft(y, n_fft) * np.fft.rfft(h, n_fft), n_fft)[:y.size]
        wet_power = power(wet)
        return wet * math.sqrt(power(y) / wet_power) if wet_power > 0 else wet


class Compose:
    """Apply ``transforms`` in order, threading the same generator through them."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray, np.random.Generator], np.ndarray]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for transform in self.transforms:
            y = transform(y, rng)
        return y

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


WAVEFORM_TRANSFORMS: dict[str, type[WaveformTransform]] = {
    "gaussian_noise": GaussianNoise, "background_noise": BackgroundNoise, "time_shift": TimeShift,
    "speed": SpeedPerturb, "time_stretch": TimeStretch, "gain": Gain, "band_limit": BandLimit, "low_pass": LowPass,
    "eq_tilt": EQTilt, "band_stop": BandStop, "onset_cut": OnsetCut, "reverb": Reverb,
}


def _construct(kind: str, cls: type, kwargs: Mapping | None) -> object:
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"augmentation {kind!r}: settings must be a mapping of arguments, got {kwargs!r}")
    allowed = [k for k in inspect.signature(cls).parameters]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"augmentation {kind!r}: unknown argument(s) {unknown}; allowed: {allowed}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"augmentation {kind!r}: {exc}; allowed arguments: {allowed}") from None


def build_waveform_augment(cfg: Mapping[str, Mapping | None] | None, sample_rate: int = 16000) -> Compose | None:
    """Build a :class:`Compose` from ``{name: {arg: value}}`` settings, applied in the order written.

    Names are the keys of :data:`WAVEFORM_TRANSFORMS` (``gaussian_noise``, ``background_noise``, ``time_shift``,
    ``speed``, ``time_stretch``, ``gain``, ``band_limit``, ``low_pass``, ``eq_tilt``, ``band_stop``, ``onset_cut``,
    ``reverb``); values are constructor arguments (``None`` or ``{}`` for the defaults). ``sample_rate`` is filled in
    for transforms that take it. Returns None for empty/None settings.
    """
    if not cfg:
        return None
    if not isinstance(cfg, Mapping):
        raise ValueError(f"augment settings must be a mapping {{name: {{arg: value}}}}, got {type(cfg).__name__}")
    transforms = []
    for kind, kwargs in cfg.items():
        if kind not in WAVEFORM_TRANSFORMS:
            raise ValueError(f"unknown augmentation {kind!r}; choose from {sorted(WAVEFORM_TRANSFORMS)}")
        cls = WAVEFORM_TRANSFORMS[kind]
        kwargs = dict(kwargs or {})
        if "sample_rate" in inspect.signature(cls).parameters:
            kwargs.setdefault("sample_rate", sample_rate)
        transforms.append(_construct(kind, cls, kwargs))
    return Compose(transforms)


class SpecAugment:
    """SpecAugment frequency and time masks on an ``(F, T)`` feature matrix (Park et al., 2019; no time warp).

    Draws ``freq_masks`` masks of width uniform in [0, ``freq_width``] rows and ``time_masks`` masks of width
    uniform in [0, ``time_width``] frames (capped at ``max_time_fraction * T`` when set); masks may overlap.
    Masked cells get ``mask_value``: ``"mean"`` (default) = the mean of the whole input matrix, which keeps the
    level of un-normalised log-mel/MFCC features; with ``cmvn`` features that mean is ~0, so ``0.0`` is the same.

    Args:
        p: probability of masking a given matrix at all.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 20,
                 max_time_fraction: float | None = None, mask_value: float | str = "mean", p: float = 1.0) -> None:
        for name, value in (("freq_masks", freq_masks), ("freq_width", freq_width), ("time_masks", time_masks),
                            ("time_width", time_width)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"SpecAugment.{name} must be a non-negative integer, got {value!r}")
        if max_time_fraction is not None:
            _pair("SpecAugment.max_time_fraction", max_time_fraction, 0.0, 1.0)
        if not (mask_value == "mean" or isinstance(mask_value, (int, float))):
            raise ValueError(f"SpecAugment.mask_value must be 'mean' or a number, got {mask_value!r}")
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"SpecAugment.p must be a probability in [0, 1], got {p!r}")
        self.freq_masks, self.freq_width, self.time_masks, self.time_width = freq_masks, freq_width, time_masks, \
            time_width
        self.max_time_fraction, self.mask_value, self.p = max_time_fraction, mask_value, float(p)

    def sample_masks(self, num_features: int, num_frames: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
        """Draw the masks as ``(axis, start, width)`` (axis 0 = features, 1 = frames); widths may be 0."""
        time_width = self.time_width
        if self.max_time_fraction is not None:
            time_width = min(time_width, int(self.max_time_fraction * num_frames))
        masks = []
        for axis, count, width, size in ((0, self.freq_masks, self.freq_width, num_features),
                                         (1, self.time_masks, time_width, num_frames)):
            for _ in range(count):
                w = min(int(rng.integers(0, width + 1)), size)
                masks.append((axis, int(rng.integers(0, size - w + 1)), w))
        return masks

    def __call__(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a masked copy of ``features`` (F, T)."""
        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"SpecAugment expects (features, frames), got shape {features.shape}")
        if rng.random() >= self.p:
            return features
        out = features.copy()
        if self.mask_value == "mean":
            value = float(features.mean()) if features.size else 0.0
        else:
            value = float(self.mask_value)
        for axis, start, width in self.sample_masks(*features.shape, rng):
            if axis == 0:
                out[start:start + width, :] = value
            else:
                out[:, start:start + width] = value
        return out

    def __repr__(self) -> str:
        return (f"SpecAugment(freq_masks={self.freq_masks}, freq_width={self.freq_width}, time_masks="
                f"{self.time_masks}, time_width={self.time_width}, max_time_fraction={self.max_time_fraction}, "
                f"mask_value={self.mask_value!r}, p={self.p})")


def build_spec_augment(cfg: Mapping[str, object] | None) -> SpecAugment | None:
    """Build a :class:`SpecAugment` from constructor arguments (None/empty -> None)."""
    if not cfg:
        return None
    return _construct("spec_augment", SpecAugment, cfg)  # type: ignore[return-value]
