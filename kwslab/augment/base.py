"""What every waveform transform shares: the :class:`WaveformTransform` base class (the coin for ``p``, input checks),
:class:`Compose` and the range helpers the transforms validate their arguments with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["WaveformTransform", "Compose"]


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
