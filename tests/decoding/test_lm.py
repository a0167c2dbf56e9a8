"""ARPA n-gram LM: hand-computed back-off scores, Kneser-Ney sanity, round trip, errors, CLI, fusion."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kwslab.decoding import ArpaError, NGramLM, beam_search, tune_alpha_beta
from kwslab.decoding.lm import main as lm_main
from kwslab.text import CharVocab

from ._ambiguous import ambiguous

ARPA = """Some header text written by a toolkit

\\data\\
ngram 1=5
ngram 2=3
ngram 3=1

\\1-grams:
-1.0\t<s>\t-0.5
-0.5\t</s>
-2.0\t<unk>
-0.7\ta\t-0.3
-0.9\tb\t-0.2

\\2-grams:
-0.2\t<s> a\t-0.25
-0.4\ta b
-0.6\tb a

\\3-grams:
-0.1\t<s> a b

\\end\\
"""


@pytest.fixture
def hand_lm(tmp_path: Path) -> NGramLM:
    path = tmp_path / "hand.arpa"
    path.write_text(ARPA)
    return NGramLM.load_arpa(path)


def test_hand_written_arpa_scores(hand_lm: NGramLM) -> None:
    lm = hand_lm
    assert lm.order == 3 and sorted(lm.words) == ["a", "b"]
    assert lm.log10_prob("a", ["<s>"]) == pytest.approx(-0.2)
    assert lm.log10_prob("b", ["<s>", "a"]) == pytest.approx(-0.1)  # trigram hit
    assert lm.log10_prob("b", ["<s>"]) == pytest.approx(-0.5 - 0.9)  # bo(<s>) + p(b)
    assert lm.log10_prob("a", ["<s>", "a"]) == pytest.approx(-0.25 - 0.3 - 0.7)  # bo(<s> a) + bo(a) + p(a)
    assert lm.log10_prob("a", ["a", "b"]) == pytest.approx(-0.6)  # bo(a b) missing = 0, bigram "b a"
    assert lm.log10_prob("</s>", ["a", "b"]) == pytest.approx(-0.2 - 0.5)
    assert lm.log10_prob("zebra", ["a"]) == pytest.approx(-0.3 - 2.0)  # OOV scores as <unk>
    # "a b": p(a|<s>) p(b|<s> a) p(</s>|a b)
    assert lm.sentence_logprob("a b") == pytest.approx((-0.2 - 0.1 - 0.7) * math.log(10))


def test_kneser_ney_distributions_sum_to_one_and_use_continuation_counts() -> None:
    corpus = ["san francisco"] * 5 + ["red glasses", "blue glasses", "green glasses", "the cat sat on the mat",
                                      "the dog sat on the log", "a cat and a dog"]
    for order in (1, 2, 3, 4):
        lm = NGramLM.train(corpus, order=order)
        vocab = [g[0] for g in lm.ngrams[0] if g[0] != "<s>"]
        assert "<unk>" in vocab and "</s>" in vocab
        for ctx in [(), ("<s>",), ("the",), ("<s>", "the"), ("sat", "on"), ("unseen", "words"), ("san",)]:
            total = sum(10 ** lm.log10_prob(w, ctx) for w in vocab)
            assert total == pytest.approx(1.0, abs=1e-9), (order, ctx)
    lm = NGramLM.train(corpus, order=3)
    # francisco is frequent but follows only "san": its back-off (continuation) probability is lower.
    assert lm.log10_prob("francisco", ["the"]) < lm.log10_prob("glasses", ["the"])
    assert lm.log10_prob("francisco", ["san"]) > lm.log10_prob("glasses", ["san"])
    assert lm.sentence_logprob("the cat sat") > lm.sentence_logprob("sat cat the")


def test_arpa_round_trip_and_kenlm_style_file(tmp_path: Path, hand_lm: NGramLM) -> None:
    lm = NGramLM.train(["the cat sat", "the cat ran", "a dog ran"], order=3)
    path = tmp_path / "lm.arpa"
    lm.save_arpa(path)
    back = NGramLM.load_arpa(path)
    assert [len(t) for t in back.ngrams] == [len(t) for t in lm.ngrams]
    for a, b in zip(lm.ngrams, back.ngrams):
        for gram, (p, bo) in a.items():
            assert b[gram][0] == pytest.approx(p, abs=1e-6) and b[gram][1] == pytest.approx(bo, abs=1e-6)
    for s in ["the cat sat", "a cat", "zebra dog"]:
        assert back.sentence_logprob(s) == pytest.approx(lm.sentence_logprob(s), abs=1e-5)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file
    hand_lm.save_arpa(tmp_path / "hand2.arpa")
    assert NGramLM.load_arpa(tmp_path / "hand2.arpa").sentence_logprob("a b") == pytest.approx(hand_lm.sentence_logprob("a b"))


@pytest.mark.parametrize("mutate,match", [
    (lambda s: s.replace("\\end\\\n", ""), "missing"),
    (lambda s: s.replace("ngram 2=3", "ngram 2=4"), "declares 4 2-grams"),
    (lambda s: s.replace("-0.4\ta b", "x\ta b"), r"hand\.arpa:\d+: probability"),
    (lambda s: s.replace("-0.4\ta b", "-0.4\ta b c d"), r"hand\.arpa:\d+: expected"),
    (lambda s: "just text\n", "not an ARPA file"),
])
def test_broken_arpa_files_raise_one_clear_error(tmp_path: Path, mutate, match: str) -> None:
    path = tmp_path / "hand.arpa"
    path.write_text(mutate(ARPA))
    with pytest.raises(ArpaError, match=match):
        NGramLM.load_arpa(path)


def test_cli_build_and_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("The cat sat.\n\nthe cat ran!\nA dog ran\n")
    out = tmp_path / "lm.arpa"
    lm_main(["build", "--text", str(text), "--order", "2", "--out", str(out)])
    lm = NGramLM.load_arpa(out)
    assert lm.order == 2 and {"the", "cat", "dog"} <= set(lm.words)
    lm_main(["score", "--arpa", str(out), "--text", str(text)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and float(lines[-1].split("\t")[0]) < 0


def test_char_lm_tokens_and_normalisation() -> None:
    lm = NGramLM.train(["the cat", "the hat"], order=4, unit="char")
    assert lm.tokenize("a  b") == ["a", "<sp>", "b"]
    vocab = [g[0] for g in lm.ngrams[0] if g[0] != "<s>"]
    assert sum(10 ** lm.log10_prob(w, ["t", "h"]) for w in vocab) == pytest.approx(1.0)
    assert lm.log10_prob("e", ["t", "h"]) > lm.log10_prob("a", ["t", "h"])


@pytest.mark.parametrize("unit,order", [("word", 3), ("char", 5)])
def test_lm_fusion_moves_decode_towards_the_lm(unit: str, order: int) -> None:
    vocab = CharVocab()
    lp = ambiguous(vocab, "the cat sat", pos=6, rival="p")  # acoustics prefer "the cap sat"
    assert beam_search(lp, vocab, 16)[0][0] == "the cap sat"
    lm = NGramLM.train(["the cat sat", "the cat sat on the mat", "a cat sat"], order=order, unit=unit)
    assert beam_search(lp, vocab, 16, lm=lm, alpha=0.8, beta=0.5)[0][0] == "the cat sat"
    assert beam_search(lp, vocab, 16, lm=lm, alpha=0.0, beta=0.0)[0][0] == "the cap sat"


def test_tune_alpha_beta_reports_wer_per_pair() -> None:
    vocab = CharVocab()
    lps = [ambiguous(vocab, "the cat sat", 6, "p", seed=s) for s in range(3)]
    lm = NGramLM.train(["the cat sat", "a cat sat"], order=2)
    res = tune_alpha_beta(lps, ["the cat sat"] * 3, vocab, lm, alphas=[0.0, 1.0], betas=[0.0, 0.5], beam_width=8)
    assert len(res) == 4 and res[0]["wer"] == 0.0 and res[0]["alpha"] == 1.0
    assert max(r["wer"] for r in res if r["alpha"] == 0.0) == pytest.approx(1 / 3)


def test_a_malformed_arpa_file_is_named_with_its_line_but_never_quoted(tmp_path: Path) -> None:
    """--lm pointing at the wrong file (a .env, say) must not copy its lines into the error."""
    path = tmp_path / "env.arpa"
    path.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nOPENAI_API_KEY=sk-test-123 a b c\n\\end\\\n")
    with pytest.raises(ArpaError) as exc:
        NGramLM.load_arpa(path)
    assert str(exc.value).startswith(f"{path}:5:") and "sk-test" not in str(exc.value)
    (tmp_path / "bin.arpa").write_bytes(b"\xff\xfe\x00secret")
    with pytest.raises(ArpaError, match=r"bin\.arpa: not an ARPA file \(not UTF-8 text\)"):
        NGramLM.load_arpa(tmp_path / "bin.arpa")
    with pytest.raises(ArpaError, match="not a regular file"):
        NGramLM.load_arpa(tmp_path)
