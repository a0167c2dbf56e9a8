"""Transforms from YAML-like settings: ``{name: {arg: value}}`` for the waveform chain, constructor arguments for
SpecAugment; unknown names and arguments are errors that list what is allowed.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from kwslab.augment.base import Compose, WaveformTransform
from kwslab.augment.channel import BandLimit, BandStop, EQTilt, Gain, LowPass, Reverb
from kwslab.augment.noise import BackgroundNoise, GaussianNoise
from kwslab.augment.spec import SpecAugment
from kwslab.augment.timing import OnsetCut, SpeedPerturb, TimeShift, TimeStretch

__all__ = ["WAVEFORM_TRANSFORMS", "build_waveform_augment", "build_spec_augment"]


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


def build_spec_augment(cfg: Mapping[str, object] | None) -> SpecAugment | None:
    """Build a :class:`SpecAugment` from constructor arguments (None/empty -> None)."""
    if not cfg:
        return None
    return _construct("spec_augment", SpecAugment, cfg)  # type: ignore[return-value]
