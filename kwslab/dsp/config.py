"""FeatureConfig: every feature setting that training and inference share, saved in every checkpoint.

Names and defaults of the spectral settings follow librosa (``sample_rate`` is librosa's ``sr``), so
``mfcc(y, cfg)`` equals ``librosa.feature.mfcc(y=y, sr=cfg.sample_rate, ...)`` with the same values.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from kwslab.dsp.features import PAD_MODES, WINDOWS, get_window, mel_filterbank

KINDS = ("mfcc", "log_mel")
_FINGERPRINT_VERSION = "kwslab.dsp.FeatureConfig/1"


def window_from_name(name: str, length: int) -> np.ndarray:
    """The window a config names: "hann" (periodic, as librosa) or "hann_symmetric" (symmetric), etc."""
    base, symmetric = (name[: -len("_symmetric")], True) if name.endswith("_symmetric") else (name, False)
    return get_window(base, length, periodic=not symmetric)


@dataclass(frozen=True)
class FeatureConfig:
    """Feature settings; invalid values raise ValueError naming the field.

    Output of the full pipeline (:class:`~kwslab.dsp.FeatureExtractor`): (num_features, frames) float32, with
    frames = ``num_frames`` when set, else ``frame_count(len(y))`` (``1 + len(y) // hop_length`` for the
    defaults).
    """

    sample_rate: int = 16000  # Hz of the waveform the features are computed from (librosa: sr)
    n_fft: int = 512  # FFT size in samples; n_fft // 2 + 1 frequency bins
    win_length: int | None = None  # window length in samples (<= n_fft, centred, zero-padded); None = n_fft
    hop_length: int = 160  # samples between frames (10 ms at 16 kHz)
    window: str = "hann"  # hann|hamming|blackman|bartlett|rectangular, periodic; add "_symmetric" for symmetric
    center: bool = True  # pad n_fft // 2 on both sides so frame t is centred on sample t * hop_length
    pad_mode: str = "constant"  # padding when center: constant (zeros), reflect, edge, symmetric
    n_mels: int = 40  # mel bands
    fmin: float = 0.0  # lowest mel edge, Hz
    fmax: float | None = None  # highest mel edge, Hz; None = sample_rate / 2
    htk: bool = False  # HTK mel scale instead of Slaney's
    mel_norm: str | None = "slaney"  # "slaney" (equal-area triangles) or None (peak 1)
    n_mfcc: int = 13  # cepstral coefficients kept (kind="mfcc"), <= n_mels
    lifter: float = 0.0  # cepstral liftering (librosa's); 0 = none, 22 is the HTK classic
    top_db: float | None = 80.0  # per-clip floor: dB below the clip's maximum; None = no floor
    power: float = 2.0  # exponent of |STFT| before the mel filter bank (2 = power, 1 = magnitude)
    kind: str = "mfcc"  # "mfcc" or "log_mel"
    deltas: int = 0  # 0, 1 (add deltas) or 2 (add deltas and delta-deltas)
    delta_width: int = 9  # frames in the delta regression window, odd >= 3 (librosa's default 9)
    cmvn: bool = False  # per-utterance mean/variance normalisation of every feature row
    num_frames: int | None = None  # pad/crop to this many frames; None = keep the clip's length

    def __post_init__(self) -> None:
        _check_int(self, "sample_rate", minimum=1)
        _check_int(self, "n_fft", minimum=2)
        if self.win_length is not None:
            _check_int(self, "win_length", minimum=1)
            if self.win_length > self.n_fft:
                _fail("win_length", self.win_length, f"must be <= n_fft ({self.n_fft})")
        _check_int(self, "hop_length", minimum=1)
        windows = WINDOWS + tuple(f"{w}_symmetric" for w in WINDOWS)
        _check_choice(self, "window", windows)
        _check_bool(self, "center")
        _check_choice(self, "pad_mode", PAD_MODES)
        _check_int(self, "n_mels", minimum=1)
        _check_float(self, "fmin", minimum=0.0)
        nyquist = self.sample_rate / 2.0
        if self.fmin >= nyquist:
            _fail("fmin", self.fmin, f"must be below sample_rate / 2 ({nyquist:g})")
        if self.fmax is not None:
            _check_float(self, "fmax", minimum=0.0)
            if not self.fmin < self.fmax <= nyquist:
                _fail("fmax", self.fmax, f"must satisfy fmin ({self.fmin:g}) < fmax <= sample_rate / 2 ({nyquist:g})")
        _check_bool(self, "htk")
        _check_choice(self, "mel_norm", ("slaney", None))
        _check_int(self, "n_mfcc", minimum=1)
        if self.n_mfcc > self.n_mels:
            _fail("n_mfcc", self.n_mfcc, f"must be <= n_mels ({self.n_mels})")
        _check_float(self, "lifter", minimum=0.0)
        if self.top_db is not None:
            _check_float(self, "top_db", minimum=0.0)
        _check_float(self, "power", minimum=0.0)
        if self.power == 0:
            _fail("power", self.power, "must be > 0")
        _check_choice(self, "kind", KINDS)
        _check_int(self, "deltas", minimum=0)
        if self.deltas > 2:
            _fail("deltas", self.deltas, "must be 0, 1 or 2")
        _check_int(self, "delta_width", minimum=3)
        if self.delta_width % 2 == 0:
            _fail("delta_width", self.delta_width, "must be odd")
        _check_bool(self, "cmvn")
        if self.num_frames is not None:
            _check_int(self, "num_frames", minimum=1)
        empty = _empty_mel_bands(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax, self.htk)
        if empty:
            _fail("n_mels", self.n_mels, f"leaves mel bands {list(empty)[:8]} without any FFT bin at "
                  f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, fmin={self.fmin:g}, fmax={self.fmax}; "
                  "lower n_mels or raise n_fft")

    @property
    def num_features(self) -> int:
        """Feature rows of the full pipeline: (n_mfcc or n_mels) * (1 + deltas)."""
        return (self.n_mfcc if self.kind == "mfcc" else self.n_mels) * (1 + self.deltas)

    def frame_count(self, num_samples: int) -> int:
        """Frames of the features of a clip of ``num_samples`` samples, before pad/crop to ``num_frames``."""
        padded = num_samples + 2 * (self.n_fft // 2) if self.center else max(num_samples, self.n_fft)
        return 1 + (padded - self.n_fft) // self.hop_length

    @property
    def num_samples(self) -> int | None:
        """Waveform length whose features have exactly ``num_frames`` frames (None when ``num_frames`` is None)."""
        if self.num_frames is None:
            return None
        return (self.num_frames - 1) * self.hop_length + (0 if self.center else self.n_fft)

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values (JSON/YAML-safe), in declaration order."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureConfig":
        """Build from a dict of fields (missing ones take defaults); an unknown key raises ValueError naming it."""
        if not isinstance(data, Mapping):
            raise ValueError(f"FeatureConfig.from_dict: expected a mapping of field names, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise ValueError(f"FeatureConfig: unknown field(s) {', '.join(unknown)}; "
                             f"known fields are {', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**dict(data))

    def fingerprint(self) -> str:
        """16 hex digits identifying these settings; the same in every process and run (e.g. for cache names)."""
        text = json.dumps([_FINGERPRINT_VERSION, self.to_dict()], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _fail(name: str, value: object, problem: str) -> None:
    raise ValueError(f"FeatureConfig.{name}={value!r}: {problem}")


def _check_int(cfg: FeatureConfig, name: str, minimum: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, value, "must be an integer")
    if value < minimum:
        _fail(name, value, f"must be >= {minimum}")
    object.__setattr__(cfg, name, int(value))  # numpy ints become plain ints (stable to_dict/fingerprint)


def _check_float(cfg: FeatureConfig, name: str, minimum: float) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        _fail(name, value, "must be a finite number")
    if value < minimum:
        _fail(name, value, f"must be >= {minimum:g}")
    object.__setattr__(cfg, name, float(value))  # 0 and 0.0 give the same fingerprint


def _check_bool(cfg: FeatureConfig, name: str) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, (bool, np.bool_)):
        _fail(name, value, "must be true or false")
    object.__setattr__(cfg, name, bool(value))


def _check_choice(cfg: FeatureConfig, name: str, choices: tuple) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or value not in choices:
        _fail(name, value, f"must be one of {', '.join(map(repr, choices))}")


def _empty_mel_bands(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None,
                     htk: bool) -> tuple[int, ...]:
    """Indices of mel bands that no FFT bin reaches (their features would be constant)."""
    weights = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm=None)
    return tuple(int(i) for i in np.flatnonzero(weights.max(axis=1) <= 0))
