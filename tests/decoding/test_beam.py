"""Prefix beam search: exactness against brute force, batch = single, agreement with pyctcdecode."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kwslab.decoding import beam_search, beam_search_batch, ctc_log_likelihood, greedy
from kwslab.decoding.synthetic import synthetic_utterance
from kwslab.text import CharVocab

from ._brute import labelling_logprobs, random_log_probs

NO_PRUNE = dict(token_min_logp=-1e9, beam_prune_logp=-1e9)


@pytest.mark.parametrize("chars,blank_first", [("ab", True), ("abc", True), ("abc", False)])
def test_exhaustive_beam_equals_brute_force(chars: str, blank_first: bool) -> None:
    """Without pruning the search is exact: every labelling's score is its total CTC probability."""
    vocab = CharVocab(chars, blank_first=blank_first)
    rng = np.random.default_rng(len(chars) + blank_first)
    for T in (1, 2, 4, 6):
        for conc in (0.3, 1.0):
            lp = random_log_probs(rng, T, len(vocab), conc)
            ref = labelling_logprobs(lp, vocab.blank)
            hyps = beam_search(lp, vocab, beam_width=5000, **NO_PRUNE)
            assert len(hyps) == len(ref)
            for text, score in hyps:
                assert score == pytest.approx(ref[tuple(vocab.encode(text))], abs=1e-9)
            best = max(ref, key=ref.get)
            assert hyps[0][0] == vocab.decode(best)


def test_wide_beam_finds_most_probable_labelling_on_tiny_inputs() -> None:
    vocab = CharVocab("abc")
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(30):
        lp = random_log_probs(rng, 6, 4, 0.5)
        ref = labelling_logprobs(lp, vocab.blank)
        text = beam_search(lp, vocab, beam_width=64)[0][0]
        hits += ref[tuple(vocab.encode(text))] >= max(ref.values()) - 1e-12
    assert hits == 30


def test_batch_matches_single_and_blank_last_vocab() -> None:
    rng = np.random.default_rng(3)
    for vocab in (CharVocab(), CharVocab(blank_first=False)):
        utts = [synthetic_utterance(rng, vocab, kind, int(rng.integers(20, 70)), n_words=(1, 3))
                for kind in ("peaky", "flat") for _ in range(4)]
        batch = beam_search_batch([x for x, _ in utts], vocab, beam_width=12)
        for (x, _), hyps in zip(utts, batch):
            single = beam_search(x, vocab, beam_width=12)
            assert [h[0] for h in hyps] == [h[0] for h in single]
            np.testing.assert_allclose([h[1] for h in hyps], [h[1] for h in single], atol=1e-9)
        peaky = [(x, t) for (x, t), h in zip(utts[:4], batch[:4])]
        assert sum(h[0][0] == greedy(x, vocab) for (x, _), h in zip(peaky, batch)) >= 3


def test_blank_skipping_does_not_change_peaky_results() -> None:
    """The blank-frame shortcut (token_min_logp=-12) agrees with a search that tries every token."""
    vocab = CharVocab()
    rng = np.random.default_rng(11)
    for _ in range(30):
        x, _ = synthetic_utterance(rng, vocab, "peaky", 80, n_words=(2, 4))
        fast = beam_search(x, vocab, beam_width=16)[0]
        full = beam_search(x, vocab, beam_width=16, token_min_logp=-1e9)[0]
        assert fast[0] == full[0]
        assert fast[1] == pytest.approx(full[1], abs=1e-3)


def test_n_best_top_k_and_argument_checks() -> None:
    vocab = CharVocab()
    x, _ = synthetic_utterance(np.random.default_rng(0), vocab, "flat", 40, n_words=(1, 2))
    hyps = beam_search(x, vocab, beam_width=8, n_best=3)
    assert len(hyps) == 3 and hyps[0][1] >= hyps[1][1] >= hyps[2][1]
    assert len({h[0] for h in beam_search(x, vocab, beam_width=8)}) == len(beam_search(x, vocab, beam_width=8))
    assert beam_search(x, vocab, beam_width=8, top_k=1)[0][0] == greedy(x, vocab)
    for bad in (dict(beam_width=0), dict(beam_prune_logp=1.0), dict(top_k=0), dict(n_best=0)):
        with pytest.raises(ValueError):
            beam_search(x, vocab, **bad)
    assert beam_search(np.zeros((0, len(vocab))), vocab) == [("", 0.0)]


def test_at_least_as_probable_as_pyctcdecode_on_peaky_utterances() -> None:
    pyctcdecode = pytest.importorskip("pyctcdecode")
    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    vocab = CharVocab()
    decoder = pyctcdecode.build_ctcdecoder(vocab.tokens)
    rng = np.random.default_rng(2024)
    utts = [synthetic_utterance(rng, vocab, "peaky", 60, n_words=(1, 4)) for _ in range(200)]
    ours = beam_search_batch([x for x, _ in utts], vocab, beam_width=16, token_min_logp=-12, beam_prune_logp=-10)
    at_least, same = 0, 0
    for (x, _), hyps in zip(utts, ours):
        theirs = decoder.decode_beams(x, beam_width=16, token_min_logp=-12, beam_prune_logp=-10)[0][0]
        mine = hyps[0][0]
        same += " ".join(mine.split()) == theirs
        at_least += (ctc_log_likelihood(x, vocab.encode(mine), vocab.blank)
                     >= ctc_log_likelihood(x, vocab.encode(theirs), vocab.blank) - 1e-9)
    assert at_least >= 199  # >= 99.5 %
    assert same >= 190


def _peaky_and_flat(vocab: CharVocab, seed: int, n: int = 4, T: tuple[int, int] = (30, 90)):
    rng = np.random.default_rng(seed)
    return [synthetic_utterance(rng, vocab, kind, int(rng.integers(*T)), n_words=(1, 4))[0]
            for kind in ("peaky", "flat") for _ in range(n)]


@pytest.mark.parametrize("small_pairs,beam_width", [(0, 24), (40, 24), (10**9, 24), (0, 100), (300, 100)])
def test_plain_python_and_vectorised_steps_agree(monkeypatch: pytest.MonkeyPatch, small_pairs: int,
                                                 beam_width: int) -> None:
    """Whichever step implementation runs a frame (and however often they swap), the beams are the same.

    The reference is the batch lockstep search; one utterance at a time runs plain-Python steps on frames
    with at most ``small_pairs`` (beam, candidate) pairs and the one-utterance vectorised step on the others
    (with more than 64 beams it finds merges by sorting instead of a (B, B) comparison).
    """
    from kwslab.decoding import _prefix_search

    vocab = CharVocab(blank_first=False)
    lps = _peaky_and_flat(vocab, 5)
    monkeypatch.setattr(_prefix_search, "FEW_TOKENS", -1.0)  # batches: always the lockstep vectorised search
    monkeypatch.setattr(_prefix_search, "LOCKSTEP_BEAMS", 10**9)
    reference = beam_search_batch(lps, vocab, beam_width=beam_width)
    monkeypatch.setattr(_prefix_search, "SMALL_PAIRS", small_pairs)
    for x, ref in zip(lps, reference):
        hyps = beam_search(x, vocab, beam_width=beam_width)
        assert [h[0] for h in hyps] == [h[0] for h in ref]
        np.testing.assert_allclose([h[1] for h in hyps], [h[1] for h in ref], atol=1e-9)


def test_skipped_frames_on_near_certain_frames_match_brute_force() -> None:
    """Runs of near-certain blank / character frames (applied as score shifts) against all V**T paths."""
    vocab = CharVocab("ab")
    rng = np.random.default_rng(21)
    for _ in range(25):
        T = int(rng.integers(3, 9))
        lp = random_log_probs(rng, T, 3, 0.5)
        for t in rng.choice(T, size=int(rng.integers(1, T + 1)), replace=False):  # certain frames, in runs
            p = np.full(3, 1e-7)
            p[int(rng.integers(0, 3))] = 1 - 2e-7
            lp[t] = np.log(p)
            if t + 1 < T and rng.random() < 0.5:
                lp[t + 1] = lp[t]
        ref = labelling_logprobs(lp, vocab.blank)
        hyps = beam_search(lp, vocab, beam_width=1000, beam_prune_logp=-1e9)  # token_min_logp=-12 prunes 1e-7
        best = max(ref, key=ref.get)
        assert hyps[0][0] == vocab.decode(best)
        assert hyps[0][1] == pytest.approx(ref[best], abs=1e-5)
        for text, score in hyps:  # a lower bound of the exact probability, close to it for likely texts
            exact = ref[tuple(vocab.encode(text))]
            assert score <= exact + 1e-9
            if exact > ref[best] - 3.0:
                assert score == pytest.approx(exact, abs=1e-4)


@pytest.mark.parametrize("beam_width", [8, 40])
def test_flat_posteriors_are_rescored_exactly(beam_width: int) -> None:
    """Every final hypothesis gets its exact score, so the best is the most probable text in the beam."""
    vocab = CharVocab()
    x, _ = synthetic_utterance(np.random.default_rng(4), vocab, "flat", 60, n_words=(2, 3))
    hyps = beam_search(x, vocab, beam_width=beam_width)
    assert len(hyps) == beam_width
    index = {c: i for i, c in enumerate(vocab.tokens) if i != vocab.blank}  # exact labellings, spaces kept
    for text, score in hyps:
        assert score == pytest.approx(ctc_log_likelihood(x, [index[c] for c in text], vocab.blank), abs=1e-9)
    assert [s for _, s in hyps] == sorted((s for _, s in hyps), reverse=True)


def test_exact_rescoring_forward_matches_ctc_log_likelihood() -> None:
    """The rescoring forward pass (rescaled only every few frames) against the log-space reference."""
    from kwslab.decoding.ctc_score import RESCALE_EVERY, ctc_log_likelihoods

    vocab = CharVocab()
    rng = np.random.default_rng(9)
    for kind, T in [("flat", 1), ("flat", 7), ("peaky", 40), ("flat", 3 * RESCALE_EVERY + 5), ("peaky", 300)]:
        x, _ = synthetic_utterance(rng, vocab, kind, max(T, 12), n_words=(1, 2))
        x = x[:T]
        if kind == "peaky":  # floored log-probs: the rescaling bound forces a rescale every frame or two
            x = np.maximum(x, -400.0)
        labellings = [[], [5, 5], [3, 3, 3, 4]] + [rng.integers(1, len(vocab), size=int(rng.integers(1, 25))).tolist()
                                                   for _ in range(5)]
        got = ctc_log_likelihoods(x, labellings, vocab.blank)
        ref = np.array([ctc_log_likelihood(x, y, vocab.blank) for y in labellings])
        assert np.array_equal(np.isinf(got), np.isinf(ref))  # labellings too long for T frames: -inf
        np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12, atol=1e-8)
