"""Seeded synthetic CTC posteriors for tests and benchmarks (no model needed).

A random transcript from a word list is aligned to frames (blank runs, 1-3 frames per character, a
blank forced between repeated characters) and every frame gets a distribution with a dominant token plus
Gaussian noise and, on some frames, a confusion token that takes a share of the mass. ``kind="peaky"``
looks like a trained CTC model (blank ~1 between characters); ``kind="flat"`` divides the logits by a
higher temperature (higher entropy, many live tokens per frame).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kwslab.text import CharVocab

__all__ = ["WORDS", "random_transcript", "align", "posteriors", "synthetic_utterance"]

WORDS = (
    "yes no up down left right on off stop go zero one two three four five six seven eight nine "
    "bed bird cat dog happy house marvin sheila tree wow learn follow forward backward visual "
    "the a of and to in is it that was he for you with as his they be at one have this from"
).split()

_KINDS = {"peaky": (15.0, 1.0), "flat": (7.0, 2.5)}  # (dominant boost, temperature)


def random_transcript(rng: np.random.Generator, words: Sequence[str] = WORDS, n_words: tuple[int, int] = (1, 5)) -> str:
    """Words drawn uniformly from ``words``, between ``n_words[0]`` and ``n_words[1]`` of them."""
    n = int(rng.integers(n_words[0], n_words[1] + 1))
    return " ".join(rng.choice(list(words), size=n).tolist())


def align(rng: np.random.Generator, ids: Sequence[int], blank: int, num_frames: int | None = None) -> np.ndarray:
    """A CTC alignment (frame labels) of ``ids``: blank runs, repeats, a blank between equal labels.

    With ``num_frames`` the alignment is padded with blanks (or its blank runs shortened) to that length.
    """
    frames: list[int] = [blank] * int(rng.integers(0, 4))
    prev = None
    for tok in ids:
        gap = int(rng.integers(0, 4))
        if tok == prev:
            gap = max(gap, 1)
        frames += [blank] * gap + [int(tok)] * int(rng.integers(1, 3))
        prev = tok
    frames += [blank] * int(rng.integers(0, 4))
    path = np.asarray(frames, dtype=np.int64)
    if num_frames is not None:
        if not (path == blank).any():
            path = np.append(path, blank)
        if path.size > num_frames:
            raise ValueError(f"alignment needs {path.size} frames, more than num_frames={num_frames}")
        spots = np.flatnonzero(path == blank)  # lengthen random blank runs to reach num_frames
        reps = np.ones(path.size, dtype=np.int64)
        reps[spots] += np.bincount(rng.integers(0, spots.size, size=num_frames - path.size), minlength=spots.size)
        path = np.repeat(path, reps)
    return path


def posteriors(
    rng: np.random.Generator,
    path: np.ndarray,
    num_classes: int,
    kind: str = "peaky",
    confusion_rate: float = 0.2,
    temperature: float | None = None,
    blank: int | None = None,
    noise: float = 1.0,
) -> np.ndarray:
    """``(T, V)`` log-probabilities whose per-frame argmax follows ``path`` (mostly), float64.

    Args:
        rng: Generator (all randomness).
        path: Frame labels (e.g. from :func:`align`).
        num_classes: V.
        kind: ``"peaky"`` or ``"flat"`` (sets the dominant boost and the temperature).
        confusion_rate: Share of frames where a random other token gets a boost close to the target's
            (a tenth of that on blank frames when ``blank`` is given).
        temperature: Override the kind's temperature.
        blank: The blank index (only used for the lower confusion rate on blank frames).
        noise: Standard deviation of the Gaussian logit noise.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    boost, temp = _KINDS[kind]
    temp = temp if temperature is None else float(temperature)
    T = path.size
    logits = rng.normal(0.0, noise, size=(T, num_classes))
    logits[np.arange(T), path] += boost
    # Confusions: another token gets almost the target's boost (rarer on blank frames, as in real models).
    rate = np.where(path == blank, confusion_rate * 0.1, confusion_rate) if blank is not None else confusion_rate
    conf = np.flatnonzero(rng.random(T) < rate)
    other = (path[conf] + rng.integers(1, num_classes, size=conf.size)) % num_classes
    logits[conf, other] += boost - rng.uniform(0.5, 5.0, size=conf.size)
    logits /= temp
    m = logits.max(axis=1, keepdims=True)
    return logits - (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))


def synthetic_utterance(
    rng: np.random.Generator,
    vocab: CharVocab,
    kind: str = "peaky",
    num_frames: int | None = None,
    words: Sequence[str] = WORDS,
    n_words: tuple[int, int] = (1, 5),
) -> tuple[np.ndarray, str]:
    """One ``(log_probs (T, V), transcript)`` pair; ``num_frames`` fixes T (words are dropped to fit)."""
    text = random_transcript(rng, words, n_words)
    ids = vocab.encode(text)
    if num_frames is not None:
        while len(ids) * 5 + 7 > num_frames and " " in text:
            text = text.rsplit(" ", 1)[0]
            ids = vocab.encode(text)
        if len(ids) * 5 + 7 > num_frames:
            text = text[: max(1, (num_frames - 7) // 5)]
            ids = vocab.encode(text)
    path = align(rng, ids, vocab.blank, num_frames)
    return posteriors(rng, path, len(vocab), kind, blank=vocab.blank), text
