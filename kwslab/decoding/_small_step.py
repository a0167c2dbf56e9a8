"""The prefix beam search step in plain Python, for frames with few (beam, token) pairs.

On peaky CTC output most stepped frames hold a handful of prefixes and one or two tried tokens; there a
dict merge of a few dozen entries (about 0.4 us each) costs less than the fixed overhead of the ~35
NumPy calls of a vectorised step (:mod:`kwslab.decoding._prefix_search`), which takes over when a frame
has more pairs. Both apply the same rules to the same state (up to float rounding).

Extensions of two different prefixes never coincide, so only the current beams are looked up (by hash)
for merges; a new prefix's score is its ``pnb``, and after a blank run (``collapse``) every ``pnb`` is
``-inf``, which spares most ``logaddexp``.

A beam is a list ``[pb, pnb, last, h, ph, text, ptext]``: the two CTC scores, the last token (-1 for
the empty prefix), the prefix hash and its parent's hash (as in the vectorised step), the text, and
(only while a new extension awaits selection, with ``text = None``) its parent's text.
"""

from __future__ import annotations

from math import exp, inf, log1p

NEG_INF = -inf
HASH_MUL = 0x9E3779B97F4A7C15  # equals _prefix_search.HASH_MUL
MASK = (1 << 64) - 1


def logaddexp(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` for Python floats (``-inf`` allowed)."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + log1p(exp(b - a))


def step(beams: list[list], row: list[float], cands: list[int], shift_c: float, shift_b: float, collapse: bool,
         blank: int, beam_width: int, prune: float, chars: list[str]) -> list[list]:
    """The skipped frames before a frame (see :mod:`kwslab.decoding._plan`), then the frame itself.

    Args:
        beams: The current beams (see the module docstring); they are updated in place and reused.
        row: The frame's ``V`` log-probs, ``-inf`` for untried tokens.
        cands: The tried non-blank tokens.
        shift_c, shift_b, collapse: The skipped frames' effect.
        blank: The blank index.
        beam_width: Beams kept.
        prune: ``beam_prune_logp`` (<= 0).
        chars: Token id -> text.

    Returns:
        The new beams, in no particular order.
    """
    lb = row[blank]
    lcs = [(c, row[c]) for c in cands]
    by_hash = {}
    exts = []
    for b in beams:  # stays: blank into pb, repeat of the last token into pnb (the root's pnb is -inf)
        pb, pnb = b[0] + shift_c, b[1] + shift_c
        if collapse:  # a blank run moved every alignment into pb
            if pnb != NEG_INF:
                pb = pb + log1p(exp(pnb - pb)) if pb >= pnb else pnb + log1p(exp(pb - pnb))
            pb += shift_b
            tot = pb
            b[1] = NEG_INF
        else:
            if pnb == NEG_INF:
                tot = pb
            elif pb >= pnb:
                tot = pb + log1p(exp(pnb - pb))
            else:
                tot = pnb + log1p(exp(pb - pnb)) if pb != NEG_INF else pnb
            b[1] = pnb + row[b[2]]
        b[0] = tot + lb
        by_hash[b[3]] = b
        last, h, text = b[2], b[3], b[5]
        hm = h * HASH_MUL + 1
        for c, lc in lcs:  # extensions (repeating the last token needs a blank in between)
            exts.append([NEG_INF, (pb if c == last else tot) + lc, c, (hm + c) & MASK, h, None, text])
    ents = []
    for x in exts:
        old = by_hash.get(x[3])
        if old is None:
            ents.append(x)
        elif x[1] != NEG_INF:  # the extension is a prefix already in the beam: add to its repeat stay
            a, e = old[1], x[1]
            if a < e:
                a, e = e, a
            old[1] = a + log1p(exp(e - a)) if e != NEG_INF else a
    scores = [x[1] for x in ents]  # a new prefix has only pnb
    for x in beams:
        a, e = x[0], x[1]
        if a < e:
            a, e = e, a
        scores.append(a + log1p(exp(e - a)) if e != NEG_INF else a)
    ents += beams
    lim = max(scores) + prune
    if len(ents) > beam_width:
        order = sorted(range(len(ents)), key=scores.__getitem__, reverse=True)[:beam_width]
        ents = [ents[i] for i in order if scores[i] >= lim]
    else:
        ents = [x for x, s in zip(ents, scores) if s >= lim]
    for x in ents:
        if x[5] is None:  # a new prefix survived
            x[5] = x[6] + chars[x[2]]
    return ents


def finish(beams: list[list], shift_c: float, shift_b: float, collapse: bool) -> list[tuple[float, str]]:
    """``(score, text)`` of every beam after the utterance's tail frames, best first."""
    out = []
    for b in beams:
        pb, pnb = b[0] + shift_c, b[1] + shift_c
        s = logaddexp(pb, pnb) + (shift_b if collapse else 0.0)
        out.append((s, b[5]))
    out.sort(key=lambda p: -p[0])
    return out


def read_texts(nodes: list[int], parents: list[int], toks: list[int], chars: list[str],
               base: dict[int, str]) -> list[str]:
    """Text of each trie node, walking up to a node of known text (``base``), sharing common prefixes."""
    memo = dict(base)
    out = []
    for n in nodes:
        path = []
        while n not in memo:
            path.append(n)
            n = parents[n]
        text = memo[n]
        for m in reversed(path):
            text += chars[toks[m]]
            memo[m] = text
        out.append(text)
    return out
