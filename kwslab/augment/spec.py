"""SpecAugment: frequency and time masks on a feature matrix, after feature extraction."""

from __future__ import annotations

import numpy as np

from kwslab.augment.base import _pair

__all__ = ["SpecAugment"]


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
