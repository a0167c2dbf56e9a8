"""Interpolated modified Kneser-Ney training (Chen & Goodman 1998), written out as a back-off ARPA model.

Counts: the highest order uses raw counts; lower orders use *continuation* counts (the number of distinct
tokens seen before the n-gram), except n-grams starting with ``<s>``, which keep raw counts (nothing can
precede ``<s>``), as KenLM's ``lmplz`` does. Per order ``k`` three discounts come from the
count-of-counts ``n1..n4`` of those adjusted counts::

    Y = n1 / (n1 + 2 n2);  D1 = 1 - 2Y n2/n1;  D2 = 2 - 3Y n3/n2;  D3+ = 3 - 4Y n4/n3

When a count-of-count is zero or a discount falls outside ``(0, c)`` (tiny corpora), that order falls back
to one absolute discount ``D = Y`` (or 0.5 when even ``Y`` is undefined) for every count class, i.e. plain
interpolated Kneser-Ney.

    p(w | h) = max(a(h w) - D(a), 0) / A(h) + gamma(h) p(w | h[1:]),
    gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / A(h)

with ``A(h)`` the sum of adjusted counts after ``h``; the unigram level interpolates with the uniform
distribution over the vocabulary (every token but ``<s>``, plus ``<unk>``). The ARPA file stores, for every
seen n-gram, the *interpolated* probability and, for every context, ``gamma`` as the back-off weight, so
back-off scoring reproduces the interpolated model exactly.

This module knows no file format and no tokenizer: :func:`kneser_ney_tables` takes token lists and the marker
tokens and returns the n-gram tables; :meth:`kwslab.decoding.lm.NGramLM.train` tokenizes and wraps them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable, Sequence

__all__ = ["kneser_ney_tables", "discounts"]

Tables = list[dict[tuple[str, ...], tuple[float, float]]]


def discounts(adjusted: Iterable[int]) -> tuple[float, float, float]:
    """Modified KN discounts ``(D1, D2, D3+)`` from adjusted counts (plain-KN fallback, see module doc)."""
    coc = Counter(min(c, 4) for c in adjusted)
    n1, n2, n3, n4 = (coc.get(i, 0) for i in (1, 2, 3, 4))
    y = min(max(n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5, 0.05), 0.95)
    if min(n1, n2, n3, n4) == 0:
        return y, y, y
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not (0 < d[0] < 1 and 0 < d[1] < 2 and 0 < d[2] < 3):
        return y, y, y
    return d


def kneser_ney_tables(sentences: Iterable[Sequence[str]], order: int, *, bos: str, eos: str, unk: str) -> Tables:
    """Train an interpolated modified Kneser-Ney n-gram model.

    Args:
        sentences: Training sentences, each a list of tokens (without the sentence markers).
        order: The n-gram order (>= 1).
        bos, eos, unk: The sentence-start, sentence-end and unknown-token markers.

    Returns:
        ``tables[k - 1]`` maps every seen k-gram (no pruning) to ``(log10 prob, log10 back-off)``, as
        :class:`kwslab.decoding.lm.NGramLM` takes them.

    Raises:
        ValueError: for ``order < 1`` or an empty corpus.
    """
    if int(order) < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    n_sent = 0
    for sent in sentences:
        toks = [bos, *sent, eos]
        n_sent += 1
        for k in range(1, order + 1):
            for i in range(len(toks) - k + 1):
                raw[k - 1][tuple(toks[i:i + k])] += 1
    if not n_sent:
        raise ValueError("cannot train a language model on an empty corpus")
    # Adjusted counts: raw at the top order and for n-grams starting with <s>, else continuation counts.
    adj: list[dict[tuple[str, ...], int]] = [dict() for _ in range(order)]
    adj[order - 1] = dict(raw[order - 1])
    for k in range(order - 1, 0, -1):  # k-grams from the (k+1)-gram types
        cont: Counter[tuple[str, ...]] = Counter(g[1:] for g in raw[k])
        adj[k - 1] = {g: (c if g[0] == bos else cont.get(g, 0)) for g, c in raw[k - 1].items()}
        adj[k - 1] = {g: c for g, c in adj[k - 1].items() if c > 0}
    adj[0].pop((bos,), None)  # <s> is never predicted
    vocab = {g[0] for g in raw[0]} - {bos} | {unk}
    probs: list[dict[tuple[str, ...], float]] = [dict() for _ in range(order)]
    gammas: list[dict[tuple[str, ...], float]] = [dict() for _ in range(order)]  # keyed by context
    for k in range(1, order + 1):
        d1, d2, d3 = discounts(adj[k - 1].values())
        by_ctx: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
        for g, c in adj[k - 1].items():
            by_ctx[g[:-1]].append((g[-1], c))
        for ctx, items in by_ctx.items():
            total = sum(c for _, c in items)
            n = Counter(min(c, 3) for _, c in items)
            gamma = (d1 * n[1] + d2 * n[2] + d3 * n[3]) / total
            gammas[k - 1][ctx] = gamma
            for w, c in items:
                disc = d1 if c == 1 else d2 if c == 2 else d3
                lower = 1.0 / len(vocab) if k == 1 else _interp(probs, gammas, ctx[1:], w, len(vocab))
                probs[k - 1][ctx + (w,)] = max(c - disc, 0.0) / total + gamma * lower
    # Tokens never seen as a unigram continuation (<unk>, or a token only ever after <s>) get the
    # uniform share only.
    uni_gamma = gammas[0].get((), 1.0)
    for w in vocab:
        probs[0].setdefault((w,), uni_gamma / len(vocab))
    tables: Tables = []
    for k in range(1, order + 1):
        table: dict[tuple[str, ...], tuple[float, float]] = {}
        if k == 1:
            table[(bos,)] = (-99.0, _log10(gammas[1].get((bos,), 1.0)) if order > 1 else 0.0)
        for g, p in sorted(probs[k - 1].items()):
            bo = gammas[k].get(g, 1.0) if k < order else 1.0
            table[g] = (_log10(p), _log10(bo))
        tables.append(table)
    # Every context that backs off must itself be listed (it is, except for <s>-prefixed ones of a lower order).
    for k in range(2, order):
        for ctx, gamma in gammas[k].items():
            if ctx not in tables[k - 1]:
                tables[k - 1][ctx] = (_log10(_interp(probs, gammas, ctx[:-1], ctx[-1], len(vocab))), _log10(gamma))
    return tables


def _interp(probs, gammas, ctx: tuple[str, ...], w: str, v: int) -> float:
    """Interpolated p(w | ctx) from the tables built so far (orders up to ``len(ctx) + 1``)."""
    p = probs[len(ctx)].get(ctx + (w,))
    if p is not None:
        return p
    if not ctx:
        return gammas[0].get((), 1.0) / v
    return gammas[len(ctx)].get(ctx, 1.0) * _interp(probs, gammas, ctx[1:], w, v)


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -99.0
