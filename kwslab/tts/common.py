"""Helpers shared by the TTS backends and the builder: names, seeded per-sample draws, post-processing.

Nothing here talks to a synthesiser; every function is a pure function of its arguments.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from kwslab.dsp.waveform import trim_silence

_SLUG_BAD = re.compile(r"[^a-z0-9]+")


class TTSError(RuntimeError):
    """A synthesis request failed for a reason the caller should report (not retry)."""


def slugify(text: str, max_len: int = 40) -> str:
    """Lower-case ASCII slug for file and folder names: ``"Hey Jarvis!" -> "hey-jarvis"``.

    Text with no ASCII letters or digits (e.g. ``"да"``) gives ``"u-<8 hex>"``, a digest of the text,
    so every non-empty text has a usable, stable name.
    """
    slug = _SLUG_BAD.sub("-", text.lower()).strip("-")[:max_len].strip("-")
    return slug or "u-" + digest(text)[:8]


def voice_slug(voice: str) -> str:
    """File-name form of a voice name: ``"en-us+f3" -> "en-us_f3"``, ``"coral" -> "coral"``."""
    return "_".join(slugify(part, 60) for part in voice.split("+"))


def digest(text: str) -> str:
    """Hex SHA-256 of ``text`` (stable across processes, unlike ``hash``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_rng(seed: int, *parts: object) -> np.random.Generator:
    """Generator seeded from ``seed`` and the parts that identify one sample (text, voice, index).

    A sample's draws depend only on its own identity, never on its position in the plan, so adding a
    keyword or a voice to a build leaves every other sample's parameters unchanged.
    """
    key = "\x1f".join([str(seed), *map(str, parts)])
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little"))


def peak_normalize(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale ``x`` so that ``max(|x|) == peak`` (all-zero input is returned unchanged). Returns float32."""
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    if m <= 0.0:
        return x.astype(np.float32)
    return (x * (peak / m)).astype(np.float32)


def postprocess(x: np.ndarray, sample_rate: int, *, trim: bool, trim_db: float, normalize: float | None) -> np.ndarray:
    """Trim silence (when ``trim``) and peak-normalise to ``normalize`` (when not None); float32 (n,)."""
    x = np.asarray(x, dtype=np.float32)
    if trim:
        x = trim_silence(x, sample_rate, trim_db, pad=0.02)
    if normalize is not None:
        x = peak_normalize(x, normalize)
    return np.clip(x, -1.0, 1.0)

