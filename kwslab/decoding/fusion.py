"""Shallow fusion for the prefix beam search: n-gram LM (word or character) and hotword bonuses.

Scores are added to a hypothesis when its text grows, in natural-log units:

* word LM: when a word is completed (space emitted, or the end of the utterance)
  ``alpha * ln p_LM(word | previous words) + beta``, and at the end ``alpha * ln p_LM(</s> | ...)``;
  while a word is being spelled, a partial word that starts no LM word costs ``unk_score_offset``
  (taken back when the word ends; the completed out-of-vocabulary word is scored as ``<unk>``);
* character LM: every character (space = ``<sp>``) adds ``alpha * ln p_LM(char | previous chars)``,
  every completed word adds ``beta``, the end adds ``alpha * ln p_LM(</s> | ...)``;
* hotwords: see :mod:`kwslab.decoding.hotwords` (partial bonus while spelling, full bonus on completion).

Each beam keeps the hash of its partial word, the partial bonus it currently holds and an LM state id;
per frame the bonus of every (beam, candidate token) pair is one vectorised table look-up, and the
LM is queried (through a cache) only for beams that can complete a word at that frame.
"""

from __future__ import annotations

import numpy as np

from kwslab.decoding.hotwords import HashTable, Hotwords, word_hashes
from kwslab.decoding.lm import EOS, SPACE_TOKEN, UNK, NGramLM
from kwslab.text import CharVocab

_MUL = np.uint64(0x9E3779B97F4A7C15)


class Fusion:
    """Per-batch fusion state used by :func:`kwslab.decoding._prefix_search.prefix_search`."""

    def __init__(self, vocab: CharVocab, lm: NGramLM | None, alpha: float, beta: float, hotwords: object | None,
                 hotword_weight: float, unk_score_offset: float) -> None:
        if lm is not None and not isinstance(lm, NGramLM):
            raise TypeError(f"lm must be a kwslab.decoding.lm.NGramLM, got {type(lm).__name__}")
        V = len(vocab)
        self.lm, self.alpha, self.beta = lm, float(alpha), float(beta)
        self.word_lm = lm is not None and lm.unit == "word"
        self.char_lm = lm is not None and lm.unit == "char"
        self.space = vocab.tokens.index(" ") if " " in vocab.chars else -2
        self.tok_code = np.arange(1, V + 2, dtype=np.uint64)
        hot = hotwords if isinstance(hotwords, Hotwords) or hotwords is None else Hotwords(hotwords, vocab, hotword_weight)
        self.hot_full = dict(zip(hot.full.keys.tolist(), hot.full.values.tolist())) if hot else {}
        items: dict[int, float] = {}
        self.word_of_hash: dict[int, str] = {}
        if self.word_lm:
            for w in lm.words:  # type: ignore[union-attr]
                if vocab.normalize(w) != w or vocab.invalid_chars(w) or " " in w:
                    continue  # the decoder can never spell it
                hs = word_hashes(vocab.encode(w))
                self.word_of_hash[hs[-1]] = w
                items.update(dict.fromkeys(hs, 0.0))
        if hot:
            items.update(zip(hot.partial.keys.tolist(), hot.partial.values.tolist()))
        self.partial_table = HashTable(items, default=float(unk_score_offset) if self.word_lm else 0.0)
        self.use_partial = bool(items) or self.word_lm
        # LM states (word or char contexts) by id, and caches.
        self.states: list[tuple[str, ...]] = []
        self.state_ids: dict[tuple[str, ...], int] = {}
        self.word_cache: dict[tuple[int, int], tuple[float, int]] = {}
        self.char_next: dict[tuple[int, int], int] = {}
        self.char_token = [SPACE_TOKEN if t == " " else t for t in vocab.tokens]
        self.blank, self.V = vocab.blank, V
        self.rows = np.zeros((0, V + 1))  # char LM: alpha * ln p(token | state) per state

    # -- states ----------------------------------------------------------------------------------
    def _sid(self, state: tuple[str, ...]) -> int:
        sid = self.state_ids.get(state)
        if sid is None:
            sid = self.state_ids[state] = len(self.states)
            self.states.append(state)
            if self.char_lm:
                if sid >= self.rows.shape[0]:
                    self.rows = np.concatenate([self.rows, np.zeros((max(16, sid), self.V + 1))])
                row = self.rows[sid]
                for v, tok in enumerate(self.char_token):
                    if v != self.blank:
                        row[v] = self.alpha * self.lm.logprob(tok, state)  # type: ignore[union-attr]
        return sid

    def _word_end(self, sid: int, wh: int) -> tuple[float, int]:
        """(bonus for completing the partial word with hash ``wh``, new word-LM state id)."""
        if wh == 0:
            return 0.0, sid
        hit = self.word_cache.get((sid, wh))
        if hit is None:
            score, new = self.hot_full.get(wh, 0.0), sid
            if self.word_lm:
                state, lp = self.lm.advance(self.states[sid], self.word_of_hash.get(wh, UNK))  # type: ignore[union-attr]
                score += self.alpha * lp + self.beta
                new = self._sid(state)
            elif self.char_lm:
                score += self.beta
            hit = self.word_cache[(sid, wh)] = (score, new)
        return hit

    # -- the search's hooks ------------------------------------------------------------------------
    def start(self, n: int) -> None:
        """One empty hypothesis per utterance."""
        self.wh = np.zeros(n, dtype=np.uint64)
        self.partial = np.zeros(n)
        start = self._sid(self.lm.start_state()) if self.lm is not None else self._sid(())
        self.sid = np.full(n, start, dtype=np.int64)

    def extension_bonus(self, cand: np.ndarray, last: np.ndarray) -> np.ndarray:
        """``(B, K)`` score change for extending beam ``b`` by token ``cand[b, k]`` (pad tokens: anything)."""
        cand = np.broadcast_to(cand, (self.wh.size, cand.shape[1]))  # (1, K) rows are shared by all beams
        new_wh = self.wh[:, None] * _MUL + self.tok_code[cand]
        if self.use_partial:
            new_partial = self.partial_table.lookup(new_wh)
        else:
            new_partial = np.zeros(cand.shape)
        delta = new_partial - self.partial[:, None]
        if self.char_lm:
            delta += np.take_along_axis(self.rows[self.sid], cand, axis=1)
        rs, cs = (cand == self.space).nonzero()
        self._space_sid = self.sid.copy()
        if rs.size:
            wh, sid = self.wh[rs].tolist(), self.sid[rs].tolist()
            bonus = np.empty(rs.size)
            for k in range(rs.size):
                bonus[k], self._space_sid[rs[k]] = self._word_end(sid[k], wh[k])
            delta[rs, cs] += bonus - new_partial[rs, cs]  # net: word bonus - partial bonus held
            new_wh[rs, cs] = 0
            new_partial[rs, cs] = 0.0
        self._new_wh, self._new_partial = new_wh, new_partial
        return delta

    def select(self, rows: np.ndarray, e: np.ndarray, cols: np.ndarray, tokens: np.ndarray) -> None:
        """Keep beams ``rows``; beams ``e`` extend ``rows[e]`` by ``tokens`` (candidate columns ``cols``)."""
        space_sid = self._space_sid[rows]
        self.wh, self.partial, self.sid = self.wh[rows], self.partial[rows], self.sid[rows]
        if not e.size:
            return
        r = rows[e]
        self.wh[e] = self._new_wh[r, cols]
        self.partial[e] = self._new_partial[r, cols]
        if self.word_lm:
            sp = tokens == self.space
            self.sid[e[sp]] = space_sid[e[sp]]
        elif self.char_lm:
            for k, (s, tok) in enumerate(zip(self.sid[e].tolist(), tokens.tolist())):
                nxt = self.char_next.get((s, tok))
                if nxt is None:
                    nxt = self.char_next[(s, tok)] = self._sid(self.lm.advance(self.states[s], self.char_token[tok])[0])  # type: ignore[union-attr]
                self.sid[e[k]] = nxt

    def final_bonus(self) -> np.ndarray:
        """``(B,)`` end-of-utterance score: the last word completed, then ``</s>``."""
        out = np.empty(self.wh.size)
        for b, (wh, sid) in enumerate(zip(self.wh.tolist(), self.sid.tolist())):
            score, sid = self._word_end(sid, wh)
            score -= self.partial[b]
            if self.lm is not None:
                score += self.alpha * self.lm.logprob(EOS, self.states[sid])
            out[b] = score
        return out
