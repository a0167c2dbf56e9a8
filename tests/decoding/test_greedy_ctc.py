"""Greedy decoding and the exact CTC forward score (against brute force and torch's ctc_loss)."""

from __future__ import annotations

import numpy as np
import pytest

from kwslab.decoding import ctc_log_likelihood, greedy, greedy_ids
from kwslab.text import CharVocab

from ._brute import labelling_logprobs, random_log_probs


def _onehot_log_probs(vocab: CharVocab, frames: list[str]) -> np.ndarray:
    """Frames given as tokens ("" = blank), each with probability 0.9 on its token."""
    V = len(vocab)
    out = np.full((len(frames), V), 0.1 / (V - 1))
    for t, tok in enumerate(frames):
        out[t, vocab.blank if tok == "" else vocab.tokens.index(tok)] = 0.9
    return np.log(out)


@pytest.mark.parametrize("blank_first", [True, False])
def test_greedy_collapses_repeats_and_drops_blank(blank_first: bool) -> None:
    vocab = CharVocab("abc ", blank_first=blank_first)
    lp = _onehot_log_probs(vocab, ["", "a", "a", "", "a", "b", "b", " ", "", "c", "c", ""])
    assert greedy(lp, vocab) == "aab c"
    assert greedy_ids(lp, vocab.blank) == vocab.encode("aab c")


def test_greedy_uses_vocab_blank_not_index_zero() -> None:
    vocab = CharVocab("ab", blank_first=False)  # tokens: a=0, b=1, blank=2
    lp = _onehot_log_probs(vocab, ["a", "", "a", "b"])
    assert greedy(lp, vocab) == "aab"


def test_greedy_rejects_wrong_width_and_unnormalised_rows() -> None:
    vocab = CharVocab("ab")
    with pytest.raises(ValueError, match="vocabulary has 3"):
        greedy(np.zeros((4, 5)), vocab)
    with pytest.raises(ValueError, match="not normalised"):
        greedy(np.zeros((4, 3)), vocab)


@pytest.mark.parametrize("blank", [0, 2])
def test_ctc_forward_matches_brute_force(blank: int) -> None:
    rng = np.random.default_rng(0)
    for T in (1, 3, 5):
        lp = random_log_probs(rng, T, 3)
        ref = labelling_logprobs(lp, blank)
        # every reachable labelling, plus one that is too long to fit
        for lab, want in ref.items():
            assert ctc_log_likelihood(lp, lab, blank) == pytest.approx(want, abs=1e-10)
        nonblank = [v for v in range(3) if v != blank]
        assert ctc_log_likelihood(lp, [nonblank[0]] * (T + 1), blank) == -np.inf
    # total probability over all labellings is 1
    assert np.logaddexp.reduce(list(ref.values())) == pytest.approx(0.0, abs=1e-10)


def test_ctc_forward_matches_torch_ctc_loss() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    for T, U, V, blank in [(30, 5, 6, 0), (50, 12, 29, 0), (40, 8, 10, 9), (12, 6, 4, 0)]:
        lp = np.log(rng.dirichlet(np.ones(V), size=T))
        ids = rng.choice([v for v in range(V) if v != blank], size=U).tolist()
        if U > 2:
            ids[2] = ids[1]  # a repeated label needs a blank between
        ref = -torch.nn.functional.ctc_loss(
            torch.tensor(lp)[:, None, :], torch.tensor([ids]), torch.tensor([T]), torch.tensor([U]),
            blank=blank, reduction="sum", zero_infinity=False,
        ).item()
        assert ctc_log_likelihood(lp, ids, blank) == pytest.approx(ref, rel=1e-9, abs=1e-8)


def test_ctc_forward_rejects_blank_in_labels() -> None:
    with pytest.raises(ValueError, match="non-blank"):
        ctc_log_likelihood(np.log(np.full((4, 3), 1 / 3)), [1, 0], blank=0)


def test_many_labellings_at_once_match_one_at_a_time() -> None:
    from kwslab.decoding.ctc_score import ctc_log_likelihoods

    rng = np.random.default_rng(5)
    for T, V, blank in [(30, 6, 0), (6, 4, 3), (1, 3, 0), (4, 3, 1)]:
        lp = np.log(rng.dirichlet(np.ones(V), size=T))
        nb = [v for v in range(V) if v != blank]
        seqs = [[], [nb[0]], [nb[0], nb[0]], rng.choice(nb, size=3).tolist(), [nb[1]] * (T + 1), [nb[1], nb[0], nb[0]]]
        got = ctc_log_likelihoods(lp, seqs, blank)
        np.testing.assert_allclose(got, [ctc_log_likelihood(lp, s, blank) for s in seqs], rtol=1e-12, atol=1e-12)
    assert ctc_log_likelihoods(np.zeros((0, 3)), [[], [1]], 0).tolist() == [0.0, -np.inf]
