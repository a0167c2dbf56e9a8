"""Text side of CTC: the character vocabulary and transcript normalisation.

The CTC blank index is defined here and nowhere else: :attr:`CharVocab.blank` (index 0 by default,
``tokens[blank] == ""``). Everything that turns text into targets or ids back into text (datasets, the
CTC model, decoders, the exported model's metadata) goes through one :class:`CharVocab`, which is saved
with the checkpoint via :meth:`CharVocab.to_dict`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Mapping, Sequence

__all__ = ["DEFAULT_CHARS", "CharVocab", "normalize_text"]

DEFAULT_CHARS = "abcdefghijklmnopqrstuvwxyz' "

# Apostrophe look-alikes folded to "'" and word joiners folded to a space before anything is stripped,
# so "don’t" keeps its apostrophe and "left-right" stays two words.
_APOSTROPHES = {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"}
_JOINERS = {"-": " ", "_": " ", "/": " ", "\u2013": " ", "\u2014": " "}
_SPACE_RUN = re.compile(r"\s+")


def normalize_text(text: str, keep: Iterable[str] | None = None, *, lower: bool = True) -> str:
    """Normalise a transcript the same way for training, evaluation and decoding.

    Steps: Unicode NFKD with accents dropped (``"café"`` -> ``"cafe"``), curly apostrophes folded to
    ``'``, hyphens/underscores/slashes turned into spaces, lower-cased (when ``lower``), punctuation and
    symbols removed unless they are in ``keep``, whitespace collapsed and stripped.

    Letters and digits are never removed: a transcript with ``"3"`` or ``"ß"`` still fails
    :meth:`CharVocab.invalid_chars`, so bad data is reported instead of silently changed.

    Args:
        text: Raw transcript.
        keep: Characters that must survive (e.g. the vocabulary); ``None`` keeps only ``'``.
        lower: Lower-case the text (default True).

    Returns:
        The normalised text (may be ``""``).
    """
    keep_set = set("'") if keep is None else set(keep)
    text = unicodedata.normalize("NFKD", text)
    out: list[str] = []
    for ch in text:
        if unicodedata.combining(ch):
            continue  # accent left over from NFKD decomposition
        ch = _APOSTROPHES.get(ch, ch)
        if ch not in keep_set:
            ch = _JOINERS.get(ch, ch)
        if ch in keep_set or ch.isspace():
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat[0] in "PS":  # punctuation / symbols outside the vocabulary
            continue
        if cat[0] == "C":  # control / format characters
            continue
        out.append(ch)
    result = "".join(out)
    if lower:
        result = result.lower()
    return _SPACE_RUN.sub(" ", result).strip()


class CharVocab:
    """Character vocabulary with the CTC blank.

    ``tokens`` lists every output class: ``""`` at :attr:`blank` plus one token per character.
    With ``blank_first=True`` (default) the blank is index 0 and character ``chars[i]`` is ``i + 1``;
    with ``blank_first=False`` the blank is the last index.

    Args:
        chars: The characters, each used once (default: ``a``-``z``, apostrophe, space).
        blank_first: Put the blank at index 0 (True) or at the end (False).

    Raises:
        ValueError: if ``chars`` is empty or repeats a character.
    """

    def __init__(self, chars: str = DEFAULT_CHARS, blank_first: bool = True) -> None:
        if not isinstance(chars, str) or not chars:
            raise ValueError(f"CharVocab: chars must be a non-empty string, got {chars!r}")
        dupes = sorted({c for c in chars if chars.count(c) > 1})
        if dupes:
            raise ValueError(f"CharVocab: chars repeat {dupes!r}; give each character once")
        self.chars = chars
        self.blank_first = bool(blank_first)
        self.blank = 0 if self.blank_first else len(chars)
        if self.blank_first:
            self.tokens: list[str] = [""] + list(chars)
        else:
            self.tokens = list(chars) + [""]
        self._index = {c: i for i, c in enumerate(self.tokens) if i != self.blank}
        # Lower-case only when the vocabulary has no upper-case letters of its own.
        self._lower = not any(c.isupper() for c in chars)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CharVocab)
            and self.chars == other.chars
            and self.blank_first == other.blank_first
        )

    def __hash__(self) -> int:
        return hash((self.chars, self.blank_first))

    def __repr__(self) -> str:
        return f"CharVocab(chars={self.chars!r}, blank_first={self.blank_first})"

    def normalize(self, text: str) -> str:
        """Lower-case, fold accents, drop punctuation not in the vocabulary, collapse whitespace."""
        return normalize_text(text, keep=self.chars, lower=self._lower)

    def invalid_chars(self, text: str) -> set[str]:
        """Characters of ``text`` (as given, not normalised) that have no token."""
        return {c for c in text if c not in self._index}

    def encode(self, text: str) -> list[int]:
        """Normalise ``text`` and map it to token ids (never the blank).

        Raises:
            ValueError: naming the characters that are still outside the vocabulary after
                normalisation (e.g. digits).
        """
        norm = self.normalize(text)
        bad = self.invalid_chars(norm)
        if bad:
            raise ValueError(
                f"text {text!r} has characters outside the vocabulary: {''.join(sorted(bad))!r} "
                f"(vocabulary: {self.chars!r}); fix the transcript or extend the vocabulary"
            )
        return [self._index[c] for c in norm]

    def decode(self, ids: Iterable[int], *, collapse: bool = False) -> str:
        """Map ids back to text, dropping blanks.

        Args:
            ids: Token ids (ints or 0-d arrays/tensors).
            collapse: Also merge repeats first, as CTC greedy decoding does (default False: the ids are
                taken as a plain label sequence).

        Raises:
            ValueError: for an id outside ``[0, len(self))``.
        """
        out: list[str] = []
        prev: int | None = None
        n = len(self.tokens)
        for raw in ids:
            i = int(raw)
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is outside the vocabulary (size {n})")
            if collapse and i == prev:
                continue
            prev = i
            if i != self.blank:
                out.append(self.tokens[i])
        return "".join(out)

    def to_dict(self) -> dict[str, object]:
        """Plain-data form for checkpoints and exported metadata."""
        return {"chars": self.chars, "blank_first": self.blank_first}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> "CharVocab":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        unknown = sorted(set(d) - {"chars", "blank_first"})
        if unknown:
            raise ValueError(f"CharVocab.from_dict: unknown keys {unknown}")
        return cls(chars=str(d.get("chars", DEFAULT_CHARS)), blank_first=bool(d.get("blank_first", True)))


def vocab_from_tokens(tokens: Sequence[str]) -> CharVocab:
    """Rebuild a :class:`CharVocab` from its ``tokens`` list (as saved in checkpoints and ONNX metadata).

    Raises:
        ValueError: when the list is not a CharVocab token list (one ``""`` blank, first or last, single chars).
    """
    tokens = list(tokens)
    blanks = [i for i, t in enumerate(tokens) if t == ""]
    if len(blanks) != 1 or blanks[0] not in (0, len(tokens) - 1) or any(len(t) > 1 for t in tokens):
        raise ValueError(f"not a character vocabulary token list (one '' blank first or last, single "
                         f"characters): {tokens!r}")
    vocab = CharVocab("".join(tokens), blank_first=blanks[0] == 0)
    assert vocab.tokens == tokens
    return vocab
