"""Open-vocabulary keyword search (:func:`kwslab.decoding.keyword_search`) scored against recorded word segments.

A CTC model spots any word it can spell. To know how well, run it over composed utterances whose word times are
known (``segments.jsonl``, written by ``python -m kwslab.prepare sequences``) and count, for each word and each
threshold:

- hits: detections of the word that overlap a segment of that word (each segment matched once, as in streaming
  evaluation: :func:`kwslab.stream.match_detections`, with ``tolerance`` seconds of slack, default 0.3: see
  ``DEFAULT_TOLERANCE``);
- false alarms: the other detections of the word (inside other words, or a second hit on one segment);
- misses: segments of the word no detection matched.

Precision, recall and F1 follow. The threshold is chosen on a validation set (:func:`choose_threshold`: the one
with the best F1 over all words together) and then applied unchanged to the test set, so the test figures are
never tuned on the test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kwslab.data.sources.sequences import read_segments
from kwslab.decoding.keyword_search import Detection, keyword_search
from kwslab.inference.ctc import posteriors_of_features
from kwslab.inference.loaded import LoadedModel
from kwslab.stream.metrics import TruthEvent, match_detections
from kwslab.text import CharVocab

__all__ = ["SpotCounts", "DEFAULT_SPOT_THRESHOLDS", "spot_candidates", "score_spotting", "choose_threshold",
           "spotting_at", "evaluate_spotting", "SpottingError"]

# Seconds of slack on each side of a detection when matching it to a segment. A CTC model's letter spikes need not
# sit inside the word: a BiGRU often emits a short word's letters a few frames after it ends (measured on the Speech
# Commands strings: "on" spiked 0.1-0.3 s after its segment), so 0.3 s; words of one utterance are 50-300 ms apart,
# and a detection only ever matches a segment of its own word.
DEFAULT_TOLERANCE = 0.3

# per-token confidence thresholds tried (keyword_search's score is in (0, 1])
DEFAULT_SPOT_THRESHOLDS: tuple[float, ...] = tuple(round(t, 3) for t in np.arange(0.05, 1.0, 0.025))


class SpottingError(ValueError):
    """A spotting evaluation that cannot run: words the model cannot spell, a manifest without segments."""


@dataclass(frozen=True)
class SpotCounts:
    """Hits, false alarms and misses of one word (or of all words: ``word`` ``"all"``) at one threshold."""

    word: str
    threshold: float
    hits: int
    false_alarms: int
    misses: int

    @property
    def precision(self) -> float:
        found = self.hits + self.false_alarms
        return self.hits / found if found else 1.0

    @property
    def recall(self) -> float:
        events = self.hits + self.misses
        return self.hits / events if events else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "threshold": self.threshold, "hits": self.hits, "false_alarms": self.false_alarms,
                "misses": self.misses, "precision": self.precision, "recall": self.recall, "f1": self.f1}


def spot_candidates(log_probs: Sequence[np.ndarray], vocab: CharVocab, words: Sequence[str],
                    frame_shift_s: Sequence[float] | float, floor: float,
                    whole_word: bool = True) -> list[list[Detection]]:
    """Every word's detections at the lowest threshold ``floor``, per utterance; ``whole_word`` (default, when the
    vocabulary has a space): only matches standing as words of their own (see
    :func:`kwslab.decoding.keyword_search`), so "on" is not found inside "one".

    Raising the threshold later only drops detections below it: keyword search takes candidates best first, so
    the detections at a higher threshold are exactly these filtered by score.
    """
    shifts = [frame_shift_s] * len(log_probs) if np.isscalar(frame_shift_s) else list(frame_shift_s)  # type: ignore
    whole = whole_word and " " in vocab.tokens
    return [[d for w in words for d in keyword_search(lp, vocab, w, float(shift), threshold=floor, whole_word=whole)]
            for lp, shift in zip(log_probs, shifts)]


def score_spotting(candidates: Sequence[Sequence[Detection]], truths: Sequence[Sequence[TruthEvent]],
                   words: Sequence[str], thresholds: Sequence[float] = DEFAULT_SPOT_THRESHOLDS,
                   tolerance: float = DEFAULT_TOLERANCE) -> dict[str, list[SpotCounts]]:
    """Counts per word (and ``"all"``, the sums) at each threshold; see the module docstring."""
    if len(candidates) != len(truths):
        raise SpottingError(f"{len(candidates)} utterances of detections against {len(truths)} of segments")
    curves: dict[str, list[SpotCounts]] = {w: [] for w in [*words, "all"]}
    for t in thresholds:
        total = [0, 0, 0]
        for w in words:
            hits = false_alarms = misses = 0
            for dets, events in zip(candidates, truths):
                mine = [d for d in dets if d.keyword == w and d.score >= t]
                theirs = [e for e in events if e.keyword == w]
                m = match_detections(mine, theirs, tolerance)
                hits, false_alarms, misses = hits + m.hits, false_alarms + m.false_alarms, misses + m.misses
            curves[w].append(SpotCounts(w, float(t), hits, false_alarms, misses))
            total = [total[0] + hits, total[1] + false_alarms, total[2] + misses]
        curves["all"].append(SpotCounts("all", float(t), *total))
    return curves


def choose_threshold(curves: dict[str, list[SpotCounts]]) -> float:
    """The threshold with the best F1 over all words together (ties: the lower threshold)."""
    best = max(curves["all"], key=lambda c: (round(c.f1, 12), -c.threshold))
    return best.threshold


def spotting_at(curves: dict[str, list[SpotCounts]], threshold: float) -> dict[str, SpotCounts]:
    """Each word's counts at ``threshold`` (which must be one of the thresholds scored)."""
    out = {}
    for w, curve in curves.items():
        match = [c for c in curve if abs(c.threshold - threshold) < 1e-9]
        if not match:
            raise SpottingError(f"threshold {threshold} was not among those scored")
        out[w] = match[0]
    return out


def _truth_and_posteriors(model: LoadedModel, manifest: str | Path) -> tuple[list[np.ndarray], list[float],
                                                                            list[list[TruthEvent]]]:
    from kwslab.data.manifest import read_manifest

    rows = read_manifest(manifest, need_transcript=True)
    try:
        segments = read_segments(manifest)
    except ValueError as exc:
        raise SpottingError(str(exc)) from None
    vocab: CharVocab = model.module.vocab
    truths = []
    for r in rows:
        segs = segments.get(Path(r.path).resolve())
        if segs is None:
            raise SpottingError(f"{manifest}: {r.path} has no word segments in the segments.jsonl beside it")
        truths.append([TruthEvent(vocab.normalize(str(s["word"])), float(s["start"]), float(s["end"])) for s in segs])
    feats = model.features_of([r.path for r in rows])
    log_probs = posteriors_of_features(model, feats)
    fc = model.feature_config
    shifts = [fc.hop_length / fc.sample_rate * max(1, round(f.shape[1] / max(1, lp.shape[0])))
              for f, lp in zip(feats, log_probs)]
    return log_probs, shifts, truths


def evaluate_spotting(model: LoadedModel, manifest: str | Path, words: Sequence[str], *,
                      val_manifest: str | Path | None = None, threshold: float | None = None,
                      thresholds: Sequence[float] = DEFAULT_SPOT_THRESHOLDS,
                      tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Precision, recall and F1 per word on ``manifest`` at one threshold: ``threshold`` when given, else the one
    :func:`choose_threshold` picks on ``val_manifest``.

    Returns:
        ``{"threshold", "chosen_on", "words": {word: counts}, "all": counts, "val": {...} | None, "curve": [...]}``
        (the curve: the test's all-word counts at every threshold, for plots, never for choosing).
    """
    vocab: CharVocab = model.module.vocab
    names = [vocab.normalize(w) for w in words]
    for w, n in zip(words, names):
        if not n or vocab.invalid_chars(n):
            raise SpottingError(f"the model cannot spell {w!r} (its characters: {vocab.chars!r})")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise SpottingError(f"the spotting threshold must be in (0, 1], got {threshold}")
    if threshold is None and val_manifest is None:
        raise SpottingError("give a validation manifest to choose the threshold on, or a threshold")
    grid = sorted({*thresholds, *([threshold] if threshold is not None else [])})
    floor = min(grid)
    val = None
    if threshold is None:
        lps, shifts, truths = _truth_and_posteriors(model, val_manifest)  # type: ignore[arg-type]
        curves = score_spotting(spot_candidates(lps, vocab, names, shifts, floor), truths, names, grid, tolerance)
        threshold = choose_threshold(curves)
        val = {w: c.to_dict() for w, c in spotting_at(curves, threshold).items()}
    lps, shifts, truths = _truth_and_posteriors(model, manifest)
    curves = score_spotting(spot_candidates(lps, vocab, names, shifts, floor), truths, names, grid, tolerance)
    at = spotting_at(curves, threshold)
    return {"threshold": threshold, "chosen_on": str(val_manifest) if val is not None else "given",
            "tolerance": tolerance, "manifest": str(manifest), "utterances": len(lps),
            "words": {w: at[w].to_dict() for w in names}, "all": at["all"].to_dict(), "val": val,
            "curve": [c.to_dict() for c in curves["all"]]}
