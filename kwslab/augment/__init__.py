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

Modules: :mod:`~kwslab.augment.base` (the base class, :class:`Compose`), :mod:`~kwslab.augment.noise` (additive
noise), :mod:`~kwslab.augment.timing` (shift, speed, tempo, onset cuts), :mod:`~kwslab.augment.channel`
(microphone and room), :mod:`~kwslab.augment.spec` (SpecAugment) and :mod:`~kwslab.augment.build` (from settings).
Every public name is importable from ``kwslab.augment`` itself.
"""
from kwslab.augment.base import Compose, WaveformTransform
from kwslab.augment.build import WAVEFORM_TRANSFORMS, build_spec_augment, build_waveform_augment
from kwslab.augment.channel import BandLimit, BandStop, EQTilt, Gain, LowPass, Reverb
from kwslab.augment.noise import BackgroundNoise, GaussianNoise
from kwslab.augment.spec import SpecAugment
from kwslab.augment.timing import OnsetCut, SpeedPerturb, TimeShift, TimeStretch

__all__ = [
    "WaveformTransform", "GaussianNoise", "BackgroundNoise", "TimeShift", "SpeedPerturb", "TimeStretch", "Gain",
    "BandLimit", "LowPass", "EQTilt", "BandStop", "OnsetCut", "Reverb", "Compose", "SpecAugment", "WAVEFORM_TRANSFORMS",
    "build_waveform_augment", "build_spec_augment",
]
