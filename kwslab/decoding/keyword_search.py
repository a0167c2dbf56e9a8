"""Open-vocabulary keyword search on CTC posteriors: spot any spelled word, no keyword classes needed.

The keyword's tokens are interleaved with blanks, ``[k1, b, k2, b, ..., kn]`` (no leading/trailing blank,
so the match starts at the frame of the first token and ends at the frame of the last), and a Viterbi
pass over the frames finds, for every end frame, the best alignment of that sequence starting at *any*
earlier frame (usual CTC transitions: stay, advance, skip a blank between different tokens). Its
log-probability divided by the number of keyword tokens is the detection score (``exp`` of it, a
per-token confidence in ``(0, 1]``, is compared with ``threshold``). Overlapping candidates are resolved
greedily, best first, and detections come back sorted by time.

:class:`Detection` is also what streaming detection (:mod:`kwslab.stream`) reports, so both kinds of hit are scored
by the same code (:func:`kwslab.stream.match_detections`); the hits found here are :class:`FrameDetection`
objects, which add the frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwslab.decoding._checks import check_log_probs
from kwslab.text import CharVocab

__all__ = ["Detection", "FrameDetection", "keyword_search", "keyword_scores"]


@dataclass(frozen=True)
class Detection:
    """A keyword found in time: ``start``/``end`` in seconds from the start of the audio; ``score`` in ``[0, 1]``,
    higher is surer (what it measures is the detector's: here a per-token CTC confidence, in streaming detection
    the peak smoothed posterior)."""

    keyword: str
    start: float
    end: float
    score: float

    def to_dict(self) -> dict:
        """``{"keyword", "start", "end", "score"}`` rounded for printing (ms, 4 decimals)."""
        return {"keyword": self.keyword, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": round(self.score, 4)}


@dataclass(frozen=True)
class FrameDetection(Detection):
    """A :class:`Detection` in CTC posteriors, with its frames ``[start_frame, end_frame]`` (inclusive); ``score``
    is the per-token confidence ``exp(log-prob / n_tokens)``, in ``(0, 1]``."""

    start_frame: int
    end_frame: int


def keyword_scores(log_probs: np.ndarray, ids: list[int], blank: int) -> tuple[np.ndarray, np.ndarray]:
    """Best alignment of ``ids`` ending at each frame.

    Args:
        log_probs: ``(T, V)`` log-probabilities.
        ids: Keyword token ids (non-empty, no blank).
        blank: The blank index.

    Returns:
        ``(score (T,), start (T,))``: the best total log-probability of a match whose last token is
        emitted at frame ``t`` (``-inf`` if none) and the frame that match starts at.
    """
    y = np.asarray(ids, dtype=np.int64)
    seq = np.full(2 * y.size - 1, blank, dtype=np.int64)
    seq[0::2] = y
    S = seq.size
    can_skip = np.zeros(S, dtype=bool)  # token state s may come from s - 2 when the tokens differ
    if y.size > 1:
        can_skip[2::2] = y[1:] != y[:-1]
    emit = log_probs[:, seq]  # (T, S)
    T = emit.shape[0]
    score = np.full(T, -np.inf)
    start = np.zeros(T, dtype=np.int64)
    a = np.full(S, -np.inf)
    a_start = np.zeros(S, dtype=np.int64)
    prev1, prev2 = np.full(S, -np.inf), np.full(S, -np.inf)
    s1, s2 = np.zeros(S, dtype=np.int64), np.zeros(S, dtype=np.int64)
    for t in range(T):
        prev1[1:], s1[1:] = a[:-1], a_start[:-1]
        prev2[2:], s2[2:] = np.where(can_skip[2:], a[:-2], -np.inf), a_start[:-2]
        best = np.maximum(np.maximum(a, prev1), prev2)
        new_start = np.where(best == a, a_start, np.where(best == prev1, s1, s2))
        # A new match may start at this frame with the first token.
        if 0.0 > best[0]:
            best[0], new_start[0] = 0.0, t
        a = best + emit[t]
        a_start = new_start
        score[t], start[t] = a[-1], a_start[-1]
    return score, start


def _stands_alone(path: np.ndarray, s: int, t: int, first: int, last: int, blank: int, space: int | None) -> bool:
    """Whether the most likely path has a space (or the utterance's edge) next to frames ``s..t``."""
    i = s - 1
    while i >= 0 and path[i] in (blank, first):
        i -= 1
    j = t + 1
    while j < len(path) and path[j] in (blank, last):
        j += 1
    return (i < 0 or path[i] == space) and (j >= len(path) or path[j] == space)


def keyword_search(
    log_probs: np.ndarray,
    vocab: CharVocab,
    keyword: str,
    frame_shift_s: float = 0.01,
    threshold: float = 0.5,
    whole_word: bool = False,
) -> list[FrameDetection]:
    """Find ``keyword`` in CTC posteriors.

    Args:
        log_probs: ``(T, V)`` log-probabilities of one utterance.
        vocab: The model's vocabulary.
        keyword: Text to spot (normalised with ``vocab``; may be any word the vocabulary can spell).
        frame_shift_s: Seconds per frame of ``log_probs`` (after the model's subsampling).
        threshold: Minimum per-token confidence ``exp(log-prob / n_tokens)`` in ``(0, 1]`` (default 0.5).
        whole_word: Keep only matches that stand as a word of their own on the frames' most likely path: the
            nearest other token before the match and after it (blanks and repeats of the keyword's first or last
            token skipped) is a space or the edge of the utterance. Then "on" is not found inside "one", nor
            across "go no". Needs a vocabulary with a space; default False (any match).

    Returns:
        Non-overlapping detections sorted by start time.

    Raises:
        ValueError: for an empty keyword, characters outside the vocabulary, or a threshold outside (0, 1].
    """
    lp = check_log_probs(log_probs, vocab)
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    ids = vocab.encode(keyword)
    if not ids:
        raise ValueError(f"keyword {keyword!r} is empty after normalisation")
    total, start = keyword_scores(lp, ids, vocab.blank)
    conf = np.exp(total / len(ids))
    found: list[FrameDetection] = []
    taken = np.zeros(lp.shape[0], dtype=bool)
    path = lp.argmax(axis=1) if whole_word else None
    space = vocab.tokens.index(" ") if whole_word and " " in vocab.tokens else None
    if whole_word and space is None:
        raise ValueError("whole_word needs a vocabulary with a space token")
    for t in np.argsort(-conf, kind="stable").tolist():
        if conf[t] < threshold:
            break
        s = int(start[t])
        if taken[s:t + 1].any():
            continue
        if path is not None and not _stands_alone(path, s, t, ids[0], ids[-1], vocab.blank, space):
            continue
        taken[s:t + 1] = True
        found.append(FrameDetection(vocab.normalize(keyword), s * frame_shift_s, (t + 1) * frame_shift_s,
                                    float(conf[t]), start_frame=s, end_frame=t))
    return sorted(found, key=lambda d: d.start_frame)
