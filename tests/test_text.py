"""CharVocab and normalize_text."""

import pytest

from kwslab.text import DEFAULT_CHARS, CharVocab, normalize_text


def test_default_vocab_layout_blank_first():
    v = CharVocab()
    assert v.blank == 0 and v.tokens[0] == ""
    assert len(v) == len(DEFAULT_CHARS) + 1 == 29
    assert v.tokens[1] == "a" and v.tokens[-1] == " "
    assert v.encode("a b") == [1, 28, 2]
    assert v.encode("ab ") == [1, 2]  # normalised: trailing space stripped


def test_blank_last():
    v = CharVocab("ab", blank_first=False)
    assert v.blank == 2 and v.tokens == ["a", "b", ""]
    assert v.encode("ba") == [1, 0]
    assert v.decode([1, 2, 0]) == "ba"


def test_roundtrip_and_normalisation():
    v = CharVocab()
    text = "  Don’t   STOP-now, café!  "
    ids = v.encode(text)
    assert v.blank not in ids
    assert v.decode(ids) == "don't stop now cafe"
    assert v.normalize(text) == "don't stop now cafe"


def test_decode_collapse_like_ctc_greedy():
    v = CharVocab("ab")
    # a a _ a b b  -> collapse repeats, drop blanks -> "aab"
    assert v.decode([1, 1, 0, 1, 2, 2], collapse=True) == "aab"
    assert v.decode([1, 1, 0, 1, 2, 2]) == "aaabb"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.decode([3])


def test_invalid_chars_are_reported_not_dropped():
    v = CharVocab()
    assert v.invalid_chars(v.normalize("Call 911 now")) == {"9", "1"}
    with pytest.raises(ValueError, match="'19'"):
        v.encode("Call 911")


def test_normalize_text_keeps_vocab_punctuation():
    assert normalize_text("a.b c", keep="abc. ") == "a.b c"
    assert normalize_text("a.b c") == "ab c"
    assert normalize_text("Hello\tWORLD\n") == "hello world"
    assert normalize_text("ÉCOLE", lower=False) == "ECOLE"


def test_uppercase_vocab_is_not_lowercased():
    v = CharVocab("ABC ")
    assert v.encode("AB C") == [1, 2, 4, 3]
    assert v.invalid_chars(v.normalize("ab")) == {"a", "b"}


def test_bad_chars_and_dict_roundtrip():
    with pytest.raises(ValueError, match="repeat"):
        CharVocab("aab")
    with pytest.raises(ValueError, match="non-empty"):
        CharVocab("")
    v = CharVocab("xyz", blank_first=False)
    assert CharVocab.from_dict(v.to_dict()) == v
    assert hash(CharVocab.from_dict(v.to_dict())) == hash(v)
    with pytest.raises(ValueError, match="unknown keys"):
        CharVocab.from_dict({"chars": "ab", "blnk": 0})


def test_vocab_from_tokens_round_trips_and_rejects_other_lists():
    from kwslab.text import CharVocab, vocab_from_tokens

    for vocab in (CharVocab(), CharVocab("abc ", blank_first=False)):
        rebuilt = vocab_from_tokens(vocab.tokens)
        assert rebuilt == vocab and rebuilt.blank == vocab.blank
    for bad in (["a", "b"], ["", "a", ""], ["a", "", "b"], ["", "ab"]):
        with pytest.raises(ValueError, match="token list"):
            vocab_from_tokens(bad)
