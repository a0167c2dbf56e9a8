"""What a microphone and a room do to a clip: gain, band limits, spectral tilt, notches and reverberation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from kwslab.augment.base import WaveformTransform, _draw, _pair
from kwslab.dsp.features import hz_to_mel
from kwslab.dsp.waveform import power

__all__ = ["Gain", "BandLimit", "LowPass", "EQTilt", "BandStop", "Reverb"]


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
