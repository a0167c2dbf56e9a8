"""Hotword boosting and open-vocabulary keyword search."""

from __future__ import annotations

import time

import numpy as np
import pytest

from kwslab.decoding import Hotwords, beam_search, keyword_search
from kwslab.decoding.synthetic import WORDS, align, posteriors, synthetic_utterance
from kwslab.text import CharVocab

from ._ambiguous import ambiguous


def test_hotword_recovers_a_slightly_less_likely_word() -> None:
    vocab = CharVocab()
    lp = ambiguous(vocab, "go to marvin now", pos=9, rival="n")  # acoustics prefer "marnin"
    assert beam_search(lp, vocab, 16)[0][0] == "go to marnin now"
    assert beam_search(lp, vocab, 16, hotwords=["marvin"])[0][0] == "go to marvin now"
    assert beam_search(lp, vocab, 16, hotwords={"marvin": 0.05})[0][0] == "go to marnin now"  # too weak
    assert beam_search(lp, vocab, 16, hotwords=[("sheila", 5.0), "dog"])[0][0] == "go to marnin now"
    # the partial bonus is taken back: a prefix of a hotword that never completes gains nothing (up to
    # the few alignments a differently pruned beam keeps)
    plain = dict(beam_search(lp, vocab, 16))
    boosted = dict(beam_search(lp, vocab, 16, hotwords=["marnins"]))
    assert boosted["go to marnin now"] == pytest.approx(plain["go to marnin now"], abs=1e-4)


def test_hotword_at_end_of_utterance_and_blank_last_vocab() -> None:
    vocab = CharVocab(blank_first=False)
    lp = ambiguous(vocab, "stop marvin", pos=8, rival="n")
    assert beam_search(lp, vocab, 16)[0][0] == "stop marnin"
    assert beam_search(lp, vocab, 16, hotwords=["marvin"])[0][0] == "stop marvin"


def test_hotwords_validate_input() -> None:
    vocab = CharVocab()
    with pytest.raises(ValueError, match="one non-empty word"):
        Hotwords(["new york"], vocab)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        Hotwords(["r2d2"], vocab)
    assert len(Hotwords({"Marvin": 2.0, "marvin": 3.0}, vocab)) == 1


def test_hundreds_of_hotwords_cost_about_the_same_as_a_few() -> None:
    vocab = CharVocab()
    rng = np.random.default_rng(5)
    lps = [synthetic_utterance(rng, vocab, "peaky", 150, n_words=(4, 6))[0] for _ in range(6)]
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    many = sorted({"".join(rng.choice(letters, size=int(rng.integers(3, 9)))) for _ in range(500)} | set(WORDS[:5]))

    def best_time(words: list[str]) -> float:
        hot = Hotwords(words, vocab)
        times = []
        for _ in range(3):
            t0 = time.process_time()
            for x in lps:
                beam_search(x, vocab, 16, hotwords=hot)
            times.append(time.process_time() - t0)
        return min(times)

    assert len(many) >= 500
    assert best_time(many) < 3.0 * best_time(WORDS[:5]) + 0.05


def _keyword_frames(vocab: CharVocab, text: str, word: str, seed: int):
    rng = np.random.default_rng(seed)
    ids = vocab.encode(text)
    path = align(rng, ids, vocab.blank)
    lp = posteriors(rng, path, len(vocab), "peaky", blank=vocab.blank)
    first = [t for t in range(len(path)) if path[t] != vocab.blank and (t == 0 or path[t - 1] != path[t])]
    k = text.index(word)
    last_tok = first[k + len(word) - 1]
    end = last_tok
    while end + 1 < len(path) and path[end + 1] == path[last_tok]:
        end += 1
    return lp, first[k], end


@pytest.mark.parametrize("blank_first", [True, False])
def test_keyword_search_finds_keyword_position(blank_first: bool) -> None:
    vocab = CharVocab(blank_first=blank_first)
    for seed in range(5):
        text = "go left then stop now"
        lp, start, end = _keyword_frames(vocab, text, "stop", seed)
        hits = keyword_search(lp, vocab, "stop", frame_shift_s=0.02, threshold=0.5)
        assert len(hits) == 1
        h = hits[0]
        assert abs(h.start_frame - start) <= 2 and abs(h.end_frame - end) <= 2
        assert h.start == pytest.approx(h.start_frame * 0.02) and h.end == pytest.approx((h.end_frame + 1) * 0.02)
        assert h.score > 0.8
        assert keyword_search(lp, vocab, "right", threshold=0.5) == []
        assert keyword_search(lp, vocab, "sheila", threshold=0.2) == []


def test_keyword_search_finds_repeats_in_time_order() -> None:
    vocab = CharVocab()
    text = "yes no yes go yes"
    rng = np.random.default_rng(9)
    path = align(rng, vocab.encode(text), vocab.blank)
    lp = posteriors(rng, path, len(vocab), "peaky", blank=vocab.blank)
    hits = keyword_search(lp, vocab, "yes")
    assert len(hits) == 3
    assert [h.start_frame for h in hits] == sorted(h.start_frame for h in hits)
    assert all(a.end_frame < b.start_frame for a, b in zip(hits, hits[1:]))
    with pytest.raises(ValueError, match="threshold"):
        keyword_search(lp, vocab, "yes", threshold=0.0)
    with pytest.raises(ValueError, match="empty"):
        keyword_search(lp, vocab, "?!")


def test_keyword_search_hits_are_detections_that_stream_matching_scores() -> None:
    """One Detection type: CTC keyword-search hits are matched to truth by the streaming metrics' code."""
    from kwslab.stream import Detection, TruthEvent, match_detections

    vocab = CharVocab()
    lp, start, end = _keyword_frames(vocab, "go left then stop now", "stop", 0)
    hits = keyword_search(lp, vocab, "stop", frame_shift_s=0.02)
    assert hits and all(isinstance(h, Detection) for h in hits)
    truth = [TruthEvent("stop", start * 0.02, (end + 1) * 0.02)]
    result = match_detections(hits, truth, tolerance=0.0)
    assert (result.hits, result.false_alarms) == (1, len(hits) - 1)


def test_keyword_search_whole_word_needs_a_space_on_both_sides() -> None:
    """On a path spelling "one on", "on" matches inside "one" too, unless whole words are asked for."""
    vocab = CharVocab()
    sp, b = vocab.tokens.index(" "), vocab.blank
    frames = [b, *vocab.encode("o"), *vocab.encode("n"), *vocab.encode("e"), sp, *vocab.encode("o"), b,
              *vocab.encode("n"), b]
    lp = np.log(np.where(np.eye(len(vocab))[frames] > 0, 0.9, 0.1 / (len(vocab) - 1)))
    every = keyword_search(lp, vocab, "on", threshold=0.5)
    whole = keyword_search(lp, vocab, "on", threshold=0.5, whole_word=True)
    assert [d.start_frame for d in every] == [1, 5] and [d.start_frame for d in whole] == [5]
    with pytest.raises(ValueError, match="space"):
        keyword_search(np.log(np.full((4, 3), 1 / 3)), CharVocab("ab"), "ab", threshold=0.01, whole_word=True)
