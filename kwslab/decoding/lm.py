"""N-gram language models in the standard ARPA format (KenLM/SRILM models load too), word or character.

An :class:`NGramLM` holds, per n-gram, its log10 probability and log10 back-off weight and scores with the
usual back-off rule: ``p(w | h) = p*(h, w)`` when the n-gram ``h w`` is listed, else
``bo(h) * p(w | h[1:])`` (a missing back-off weight is 1). Words outside the unigrams score as ``<unk>``.

``unit="char"`` makes a character LM: its "words" are single characters and the space is the token
``<sp>`` (ARPA tokens cannot contain whitespace). Training (interpolated modified Kneser-Ney) is in
:mod:`kwslab.decoding.kneser_ney`; ``python -m kwslab.decoding.lm build --text corpus.txt --order 3
--out lm.arpa`` trains and saves one.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from kwslab.decoding.kneser_ney import kneser_ney_tables
from kwslab.files import atomic_write_text

__all__ = ["NGramLM", "ArpaError", "SPACE_TOKEN", "LN10"]

LN10 = math.log(10.0)
SPACE_TOKEN = "<sp>"
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_MISSING_UNK_LOG10 = -100.0  # KenLM's convention when a model lists no <unk>


class ArpaError(ValueError):
    """A malformed ARPA file; the message names the file and line."""


class NGramLM:
    """A back-off n-gram LM.

    Args:
        ngrams: ``ngrams[k - 1]`` maps each k-gram (tuple of tokens) to ``(log10 prob, log10 backoff)``.
        unit: ``"word"`` (tokens are words) or ``"char"`` (tokens are characters, space = ``<sp>``).
    """

    def __init__(self, ngrams: Sequence[dict[tuple[str, ...], tuple[float, float]]], unit: str = "word") -> None:
        _check_unit(unit)
        if not ngrams or not ngrams[0]:
            raise ValueError("an n-gram LM needs at least one unigram")
        self.ngrams = [dict(t) for t in ngrams]
        self.unit = unit
        self.order = len(self.ngrams)
        self._cache: dict[tuple[tuple[str, ...], str], float] = {}

    # -- scoring -------------------------------------------------------------------------------
    @property
    def words(self) -> list[str]:
        """The unigram tokens other than ``<s>``, ``</s>``, ``<unk>``."""
        return [g[0] for g in self.ngrams[0] if g[0] not in (BOS, EOS, UNK)]

    def log10_prob(self, token: str, context: Sequence[str] = ()) -> float:
        """log10 p(token | context) with back-off; only the last ``order - 1`` context tokens count."""
        ctx = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        key = (ctx, token)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if (token,) not in self.ngrams[0]:
            token = UNK
        total = 0.0
        for start in range(len(ctx) + 1):  # longest context first
            h = ctx[start:]
            entry = self.ngrams[len(h)].get(h + (token,)) if len(h) < self.order else None
            if entry is not None:
                total += entry[0]
                break
            if h:
                bo = self.ngrams[len(h) - 1].get(h)
                total += bo[1] if bo is not None else 0.0
        else:
            total += _MISSING_UNK_LOG10
        self._cache[key] = total
        return total

    def logprob(self, token: str, context: Sequence[str] = ()) -> float:
        """Natural-log p(token | context)."""
        return self.log10_prob(token, context) * LN10

    def start_state(self) -> tuple[str, ...]:
        """Context at the start of an utterance: ``("<s>",)`` (empty for a unigram model)."""
        return (BOS,) if self.order > 1 else ()

    def advance(self, state: tuple[str, ...], token: str) -> tuple[tuple[str, ...], float]:
        """``(new_state, ln p(token | state))`` for one more token."""
        lp = self.logprob(token, state)
        new = (state + (token,))[-(self.order - 1):] if self.order > 1 else ()
        return new, lp

    def sentence_logprob(self, text: str) -> float:
        """Natural-log probability of a whole sentence, ``</s>`` included."""
        state, total = self.start_state(), 0.0
        for tok in self.tokenize(text) + [EOS]:
            state, lp = self.advance(state, tok)
            total += lp
        return total

    def tokenize(self, text: str) -> list[str]:
        """Words, or characters with ``<sp>`` between words for ``unit="char"``."""
        return tokenize(text, self.unit)

    # -- ARPA ----------------------------------------------------------------------------------
    @classmethod
    def load_arpa(cls, path: str | os.PathLike, unit: str = "word") -> "NGramLM":
        """Read an ARPA file (``\\data\\``, ``ngram k=count``, ``\\k-grams:`` sections, ``\\end\\``).

        Raises:
            ArpaError: naming the file and line of the first problem (never quoting the file: it may not be an LM).
        """
        path = Path(path)
        if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read forever
            raise ArpaError(f"{path}: not a regular file; pass the .arpa file of --lm")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ArpaError(f"{path}: not an ARPA file (not UTF-8 text); pass the .arpa file of --lm") from None
        except OSError as exc:
            raise ArpaError(f"{path}: cannot read ARPA file ({exc.strerror or type(exc).__name__})") from None
        counts: dict[int, int] = {}
        ngrams: list[dict[tuple[str, ...], tuple[float, float]]] = []
        section, seen_data = 0, False
        for no, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line:
                continue
            where = f"{path}:{no}"
            if line == "\\data\\":
                seen_data = True
                continue
            if line == "\\end\\":
                break
            if not seen_data:
                continue  # header text before \data\ is allowed
            if line.startswith("ngram ") and section == 0:
                try:
                    k, n = line[6:].split("=")
                    counts[int(k)] = int(n)
                except ValueError:
                    raise ArpaError(f"{where}: bad count line (expected 'ngram K=COUNT')") from None
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                try:
                    section = int(line[1:-7])
                except ValueError:
                    raise ArpaError(f"{where}: bad section header (expected '\\K-grams:')") from None
                if section != len(ngrams) + 1 or section not in counts:
                    raise ArpaError(f"{where}: section \\{section}-grams: out of order or not declared in \\data\\")
                ngrams.append({})
                continue
            if section == 0:
                raise ArpaError(f"{where}: unexpected line before the first n-gram section")
            parts = line.split()
            if len(parts) not in (section + 1, section + 2):
                raise ArpaError(f"{where}: expected 'log10prob {section} token(s) [backoff]', got {len(parts)} fields")
            try:
                prob = float(parts[0])
                bo = float(parts[section + 1]) if len(parts) == section + 2 else 0.0
            except ValueError:
                raise ArpaError(f"{where}: probability/back-off is not a number") from None
            ngrams[-1][tuple(parts[1:section + 1])] = (prob, bo)
        else:
            if seen_data:
                raise ArpaError(f"{path}: missing \\end\\ (truncated file?)")
        if not seen_data or not ngrams:
            raise ArpaError(f"{path}: not an ARPA file (no \\data\\ header or no n-gram sections)")
        for k, table in enumerate(ngrams, start=1):
            if counts.get(k) != len(table):
                raise ArpaError(f"{path}: \\data\\ declares {counts.get(k)} {k}-grams but {len(table)} are listed")
        return cls(ngrams, unit=unit)

    def save_arpa(self, path: str | os.PathLike) -> None:
        """Write the model as ARPA (atomically: temp file in the same folder, then rename)."""
        path = Path(path)
        out = ["\\data\\"] + [f"ngram {k}={len(t)}" for k, t in enumerate(self.ngrams, start=1)] + [""]
        for k, table in enumerate(self.ngrams, start=1):
            out.append(f"\\{k}-grams:")
            for gram, (prob, bo) in table.items():
                row = f"{prob:.7g}\t{' '.join(gram)}"
                if k < self.order and bo != 0.0:
                    row += f"\t{bo:.7g}"
                out.append(row)
            out.append("")
        out.append("\\end\\")
        atomic_write_text(path, "\n".join(out) + "\n")

    @classmethod
    def train(cls, sentences: Iterable[str], order: int = 3, unit: str = "word") -> "NGramLM":
        """Train an interpolated modified Kneser-Ney model (see :mod:`kwslab.decoding.kneser_ney`).

        Args:
            sentences: Training text, one sentence per item (already normalised; tokens split on whitespace,
                or characters for ``unit="char"``).
            order: The n-gram order (>= 1).
            unit: ``"word"`` or ``"char"``.

        Returns:
            The model (every seen n-gram, no pruning).

        Raises:
            ValueError: for a bad ``unit``, ``order < 1`` or an empty corpus.
        """
        _check_unit(unit)
        tables = kneser_ney_tables((tokenize(s, unit) for s in sentences), order, bos=BOS, eos=EOS, unk=UNK)
        return cls(tables, unit=unit)


def tokenize(text: str, unit: str) -> list[str]:
    """Words, or characters with ``<sp>`` between words for ``unit="char"``."""
    if unit == "word":
        return text.split()
    return [SPACE_TOKEN if c == " " else c for c in " ".join(text.split())]


def _check_unit(unit: str) -> None:
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m kwslab.decoding.lm build|score ...``."""
    ap = argparse.ArgumentParser(prog="python -m kwslab.decoding.lm", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train an interpolated modified Kneser-Ney LM and save it as ARPA")
    b.add_argument("--text", required=True, help="training text, one sentence per line")
    b.add_argument("--order", type=int, default=3)
    b.add_argument("--unit", choices=["word", "char"], default="word")
    b.add_argument("--out", required=True, help="output .arpa path")
    b.add_argument("--no-normalize", action="store_true", help="keep lines as they are (default: CharVocab.normalize)")
    s = sub.add_parser("score", help="print the natural-log probability of each line of a text under an ARPA LM")
    s.add_argument("--arpa", required=True)
    s.add_argument("--unit", choices=["word", "char"], default="word")
    s.add_argument("--text", required=True)
    args = ap.parse_args(argv)
    from kwslab.text import CharVocab  # noqa: PLC0415

    norm = CharVocab().normalize
    try:
        lines = Path(args.text).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"error: cannot read {args.text}: {exc}") from None
    if args.cmd == "build":
        sents = [ln if args.no_normalize else norm(ln) for ln in lines]
        sents = [x for x in sents if x.strip()]
        if not sents:
            raise SystemExit(f"error: {args.text} has no non-empty lines")
        lm = NGramLM.train(sents, order=args.order, unit=args.unit)
        lm.save_arpa(args.out)
        print(f"wrote {args.out}: order {lm.order}, " + ", ".join(f"{len(t)} {k}-grams" for k, t in enumerate(lm.ngrams, 1)))
    else:
        try:
            lm = NGramLM.load_arpa(args.arpa, unit=args.unit)
        except ArpaError as exc:
            raise SystemExit(f"error: {exc}") from None
        for ln in lines:
            print(f"{lm.sentence_logprob(norm(ln)):.4f}\t{ln}")


if __name__ == "__main__":
    main()
