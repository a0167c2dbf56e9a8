"""Keyword search scored against word segments: hits, false alarms and misses per word, the threshold chosen on
validation, and the evaluate command's report, on hand-made posteriors and segments."""
from __future__ import annotations

import numpy as np
import pytest

from kwslab.inference.spotting import (
    SpotCounts,
    SpottingError,
    choose_threshold,
    score_spotting,
    spot_candidates,
    spotting_at,
)
from kwslab.stream.metrics import TruthEvent
from kwslab.text import CharVocab

SHIFT = 0.03  # seconds per output frame


def _utterance(vocab: CharVocab, spoken: list[str], sure: float = 0.9) -> tuple[np.ndarray, list[TruthEvent]]:
    """Posteriors whose argmax spells ``spoken`` (5 blank frames, 2 frames per letter, a space between words) and
    the segment of each word in seconds. ``sure`` is the probability of each frame's label."""
    frames: list[int] = []
    events = []
    for i, word in enumerate(spoken):
        frames += [vocab.blank] * 5
        start = len(frames)
        prev = None
        for c in vocab.encode(word):
            if c == prev:
                frames.append(vocab.blank)
            frames += [c, c]
            prev = c
        events.append(TruthEvent(word, start * SHIFT, len(frames) * SHIFT))
        if i < len(spoken) - 1:
            frames += [vocab.tokens.index(" ")] * 2
    frames += [vocab.blank] * 5
    p = np.full((len(frames), len(vocab)), (1.0 - sure) / (len(vocab) - 1))
    p[np.arange(len(frames)), frames] = sure
    return np.log(p), events


def test_hits_false_alarms_and_misses_against_segments():
    vocab = CharVocab()
    # utterance 1: "yes no go"; utterance 2: the truth says "no" but the model hears "go" (a miss of "no" and a
    # false alarm of "go")
    lp1, ev1 = _utterance(vocab, ["yes", "no", "go"])
    lp2, ev2 = _utterance(vocab, ["go", "yes"])
    ev2 = [TruthEvent("no", ev2[0].start, ev2[0].end), ev2[1]]
    words = ["yes", "no", "go"]
    cands = spot_candidates([lp1, lp2], vocab, words, SHIFT, floor=0.05)
    curves = score_spotting(cands, [ev1, ev2], words, thresholds=[0.5, 0.95])
    at = spotting_at(curves, 0.5)
    assert at["yes"] == SpotCounts("yes", 0.5, hits=2, false_alarms=0, misses=0)
    assert at["no"] == SpotCounts("no", 0.5, hits=1, false_alarms=0, misses=1)
    assert at["go"] == SpotCounts("go", 0.5, hits=1, false_alarms=1, misses=0)
    assert at["all"] == SpotCounts("all", 0.5, hits=4, false_alarms=1, misses=1)
    assert at["no"].recall == 0.5 and at["go"].precision == 0.5 and at["all"].f1 == pytest.approx(0.8)
    # two frames per letter, each 90% sure: a per-token confidence of about 0.81, so 0.95 finds none of the 5 words
    assert spotting_at(curves, 0.95)["all"] == SpotCounts("all", 0.95, 0, 0, 5)
    # the detections fall inside their words' segments (no tolerance needed)
    tight = spotting_at(score_spotting(cands, [ev1, ev2], words, [0.5], tolerance=0.0), 0.5)
    assert tight["all"].hits == 4


def test_a_detection_away_from_its_segment_is_a_false_alarm_and_a_miss():
    vocab = CharVocab()
    lp, ev = _utterance(vocab, ["yes", "no"])
    moved = [TruthEvent("yes", ev[1].start, ev[1].end), TruthEvent("no", ev[0].start, ev[0].end)]
    cands = spot_candidates([lp], vocab, ["yes", "no"], SHIFT, floor=0.05)
    at = spotting_at(score_spotting(cands, [moved], ["yes", "no"], [0.5], tolerance=0.0), 0.5)
    assert at["all"] == SpotCounts("all", 0.5, hits=0, false_alarms=2, misses=2)


def test_whole_words_only_a_keyword_inside_another_word_or_across_two_is_not_found():
    """"on" inside "one" and across "go no" (the o of go, the n of no) are not detections of "on"."""
    vocab = CharVocab()
    lp, ev = _utterance(vocab, ["one", "go", "no", "on"])
    cands = spot_candidates([lp], vocab, ["on"], SHIFT, floor=0.05)
    assert len(cands[0]) == 1 and abs(cands[0][0].start - ev[3].start) < 2 * SHIFT
    loose = spot_candidates([lp], vocab, ["on"], SHIFT, floor=0.05, whole_word=False)
    assert len(loose[0]) > 1  # without the rule: inside "one" too


def test_threshold_chosen_for_best_f1():
    vocab = CharVocab()
    clear, ev1 = _utterance(vocab, ["stop"], sure=0.95)
    faint, ev2 = _utterance(vocab, ["stop"], sure=0.6)  # a real but unsure "stop"
    cands = spot_candidates([clear, faint], vocab, ["stop"], SHIFT, floor=0.05)
    curves = score_spotting(cands, [ev1, ev2], ["stop"], thresholds=[0.3, 0.5, 0.7, 0.9])
    assert [c.hits for c in curves["stop"]] == [2, 1, 1, 1]  # the faint one scores about 0.6 ** 2 per token
    assert choose_threshold(curves) == 0.3
    with pytest.raises(SpottingError, match="not among"):
        spotting_at(curves, 0.42)
    with pytest.raises(SpottingError, match="utterances"):
        score_spotting(cands, [ev1], ["stop"])
