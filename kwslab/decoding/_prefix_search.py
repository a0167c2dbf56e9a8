"""The prefix beam search loop behind :func:`kwslab.decoding.beam.beam_search`.

Only the frames that :mod:`kwslab.decoding._plan` marks active get a step; the others are applied as
score shifts before the next step. Every step builds the same candidates: each beam's stay (blank into
``pb``, repeat of its last token into ``pnb``) and its extension by each tried token; an extension equal
to a prefix already in the beam is merged into that prefix (``logaddexp``; each beam stores its prefix's
hash and its parent's hash, so this is a hash comparison); then the best ``beam_width`` candidates
within ``-beam_prune_logp`` of the best survive. Three implementations, whose cost is mostly the number
of Python operations or NumPy calls they make per frame:

* plain Python (:mod:`kwslab.decoding._small_step`): frames with at most ``SMALL_PAIRS`` (beam,
  candidate) pairs, as a dict merge;
* one utterance, vectorised (:class:`_Beams`): larger frames without fusion. The frame's candidate
  columns (stay, tried tokens) come from tables built once per utterance, and the texts are kept as
  per-step back-pointers, read once at the end, so a step is about 35 NumPy calls;
* a batch in lockstep (:func:`_step`): with fusion, or a flat batch (more than ``FEW_TOKENS`` tried
  tokens per active frame) of at most ``LOCKSTEP_BEAMS`` beams: all beams of all utterances live in one
  set of arrays, so a step costs a fixed number of NumPy calls whatever the batch size. Step ``k`` runs
  each utterance's ``k``-th active frame; an utterance with fewer active frames gets no-op steps.

Otherwise utterances are decoded one by one (plain Python, switching to :class:`_Beams` for large frames
and back). On flat posteriors the final hypotheses are rescored exactly (:func:`_rescore`).
"""

from __future__ import annotations

import math

import numpy as np

from kwslab.decoding import _small_step as small
from kwslab.decoding._plan import NEG_INF, Plan, padded_candidates, plan_frames
from kwslab.decoding.ctc_score import ctc_log_likelihoods
from kwslab.text import CharVocab

HASH_MUL = np.uint64(small.HASH_MUL)  # odd multiplier of the rolling prefix hash (wraps mod 2**64)
ROOT_SEED, ROOT_MUL = 12345, 0xD1B54A32D192ED03  # utterance n's empty prefix hashes to n * ROOT_MUL + ROOT_SEED
SMALL_PAIRS = 192  # a frame with at most this many (beam, tried token + stay) pairs runs in plain Python
RESCORE_TOP, RESCORE_GAP = 128, 1e-3  # see _rescore
FEW_TOKENS = 4.0  # a batch (without fusion) trying at most this many tokens per frame on average is decoded
# utterance by utterance (mostly plain-Python steps); more, and with at most LOCKSTEP_BEAMS beams, in lockstep
LOCKSTEP_BEAMS = 16  # wider beams: one by one is faster (the lockstep step's per-candidate work is larger)


def prefix_search(lps, vocab: CharVocab, beam_width, token_min_logp, top_k, beam_prune_logp, fusion, n_best):
    """Decode a batch; returns one ``[(text, score), ...]`` list (best first) per utterance."""
    plan = plan_frames(lps, vocab.blank, token_min_logp, top_k, beam_prune_logp, relative=fusion is None)
    if fusion is not None:
        return _search_batch(plan, vocab, beam_width, beam_prune_logp, fusion, n_best)
    if len(lps) == 1:
        out = [_search_one(plan, vocab, beam_width, beam_prune_logp)]
        flat = [int(plan.ncand.sum()) > FEW_TOKENS * plan.ncand.size]
    else:
        cum = np.zeros(plan.ncand.size + 1, dtype=np.int64)
        np.cumsum(plan.ncand, out=cum[1:])
        flat = (cum[plan.act_off + plan.n_act] - cum[plan.act_off] > FEW_TOKENS * plan.n_act).tolist()  # (N,)
        if cum[-1] <= FEW_TOKENS * plan.ncand.size or beam_width > LOCKSTEP_BEAMS:
            out = [_search_one(_one(plan, n), vocab, beam_width, beam_prune_logp) for n in range(len(lps))]
        else:
            out = _search_batch(plan, vocab, beam_width, beam_prune_logp, None, None)
    return [(_rescore(x, hyps, vocab) if f else hyps)[:n_best] for x, hyps, f in zip(lps, out, flat)]


def _rescore(x: np.ndarray, hyps: list[tuple[str, float]], vocab: CharVocab) -> list[tuple[str, float]]:
    """Exact CTC scores for the best hypotheses when the beams lost enough mass to misorder them.

    Called for flat posteriors (more than ``FEW_TOKENS`` tried tokens per active frame), where the
    search drops much of each hypothesis's mass; on peaky ones the beam scores are all but exact and
    the forward passes would cost more than the search. Each beam score is a lower bound of its
    text's CTC probability, and all of them together miss ``lost = 1 - sum(exp(score))``, so the best
    beam is within ``lost`` (in probability) of the most probable text. When ``lost`` exceeds
    ``RESCORE_GAP`` times the best beam's probability, the hypotheses (at most ``RESCORE_TOP``, best
    first) get their exact forward score and are re-sorted. All of them, not only the best few: on flat
    posteriors the lower bounds are loose by several nats and the exact best can be anywhere in the
    beam (with 100 beams it was ranked up to 94th). That costs ``O(beams * T * len(text))``, less than
    the search up to a few hundred frames.
    """
    if not hyps:
        return hyps
    scores = np.array([s for _, s in hyps])
    captured = float(np.logaddexp.reduce(scores))
    lost = -math.expm1(captured) if captured < 0 else 0.0
    if lost <= RESCORE_GAP * math.exp(hyps[0][1]):
        return hyps
    k = min(len(hyps), RESCORE_TOP)
    index = {ch: i for i, ch in enumerate(vocab.tokens) if i != vocab.blank}
    exact = ctc_log_likelihoods(x, [[index[c] for c in t] for t, _ in hyps[:k]], vocab.blank).tolist()
    out = [(t, max(e, s)) for (t, s), e in zip(hyps[:k], exact)] + hyps[k:]
    out.sort(key=lambda p: -p[1])
    return out


def _one(plan: Plan, n: int) -> Plan:
    """Utterance ``n``'s part of a batch plan."""
    if plan.n_act.size == 1:
        return plan
    a0, a1 = int(plan.act_off[n]), int(plan.act_off[n] + plan.n_act[n])
    c0, c1 = int(plan.ncand[:a0].sum()), int(plan.ncand[:a1].sum())
    b = slice(a0 + n, a1 + n + 1)
    return Plan(plan.lpm[a0:a1], plan.cand_tok[c0:c1], plan.ncand[a0:a1], plan.n_act[n: n + 1],
                np.zeros(1, dtype=np.int64), plan.shift_c[b], plan.shift_b[b], plan.collapse[b])


def _search_one(plan, vocab: CharVocab, beam_width: int, prune: float) -> list[tuple[str, float]]:
    """One utterance without fusion: plain-Python steps on small frames, :class:`_Beams` steps on large."""
    blank, lpm, chars = vocab.blank, plan.lpm, vocab.tokens
    tokens, ncand = plan.cand_tok.tolist(), plan.ncand.tolist()
    sc, sb, col = plan.shift_c.tolist(), plan.shift_b.tolist(), plan.collapse.tolist()
    beams: list[list] = [[0.0, NEG_INF, -1, ROOT_SEED, 0, "", None]]
    arrays = None  # a _Beams while the vectorised step owns the state
    tables = None  # the frames' column tables, built on the first vectorised step
    off = 0
    for a, k in enumerate(ncand):
        nb = len(beams) if arrays is None else arrays.size
        if nb * (k + 1) <= SMALL_PAIRS:
            if arrays is not None:
                beams, arrays = arrays.to_lists(chars), None
            beams = small.step(beams, lpm[a].tolist(), tokens[off: off + k], sc[a], sb[a], col[a], blank,
                               beam_width, prune, chars)
        else:
            if tables is None:
                tables = _column_tables(plan, len(vocab), blank)
            if arrays is None:
                arrays = _Beams(beams)
            if sc[a] or col[a]:
                _shift(arrays.F, sc[a], sb[a], col[a])
            lc, co, tok, toku = tables
            arrays.step(lc[a, : k + 2], co[a], tok[a], toku[a], beam_width, prune)
        off += k
    if arrays is not None:
        beams = arrays.to_lists(chars)
    return [(t, s) for s, t in small.finish(beams, sc[-1], sb[-1], col[-1])]


def _column_tables(plan: Plan, V: int, blank: int) -> tuple[np.ndarray, ...]:
    """The candidate columns of every active frame, for :meth:`_Beams.step`.

    A frame with ``K`` tried non-blank tokens has ``K + 2`` columns: 0 the stay, ``1..K`` the tokens and
    ``K + 1`` a padding column whose log-prob is ``-inf`` (untried tokens point there).

    Returns:
        ``lc (A, Kmax + 2)`` the columns' log-probs (column 0: the blank's), ``co (A, V + 1)`` each token's
        column (index ``V``, i.e. ``-1``, the empty prefix's "last token", is untried), ``tok (A, Kmax + 2)``
        each column's token (-1 for the stay and padding) and ``toku = tok + 1`` as ``uint64`` (for hashes).
    """
    A = plan.ncand.size
    cand = padded_candidates(plan, V)  # (A, Kc), padded with V
    Kc = cand.shape[1]
    tok = np.full((A, Kc + 2), -1, dtype=np.int64)
    tok[:, 1: Kc + 1] = np.where(cand < V, cand, -1)
    lpx = np.full((A, V + 1), NEG_INF)  # column V: -inf, the padding token
    lpx[:, :V] = plan.lpm
    lc = np.take_along_axis(lpx, np.where(tok >= 0, tok, V), axis=1)
    lc[:, 0] = plan.lpm[:, blank]
    co = np.repeat((plan.ncand + 1)[:, None], V + 1, axis=1)  # untried: the padding column
    a_i, k_i = (tok[:, 1:] >= 0).nonzero()
    co[a_i, tok[a_i, k_i + 1]] = k_i + 1
    return lc, co, tok, (tok + 1).astype(np.uint64)


class _Beams:
    """One utterance's beams as arrays, for frames with many (beam, token) pairs.

    ``F (2, B)``: ``pb``, ``pnb``; ``last (B,)``: the last token (-1 for the empty prefix); ``U (2, B)``: the
    prefix hash and its parent's hash (as in the plain-Python step, so the state converts both ways). A
    beam's text is the text of the beam it started from (``base``) plus the tokens its steps appended,
    read back once through the per-step back-pointers in ``trace`` (no per-step bookkeeping).
    """

    def __init__(self, beams: list[list]) -> None:
        pb, pnb, last, h, ph, text, _ = zip(*beams)
        self.F = np.array([pb, pnb])
        self.last = np.array(last, dtype=np.int64)
        self.U = np.array([h, ph], dtype=np.uint64)
        self.base = list(text)
        self.trace: list[tuple[np.ndarray, np.ndarray]] = []  # per step: (parent beam, token appended or -1)

    @property
    def size(self) -> int:
        return self.last.size

    def step(self, lc: np.ndarray, co: np.ndarray, tok: np.ndarray, toku: np.ndarray, beam_width: int,
             prune: float) -> None:
        """One frame; ``lc, co, tok, toku`` are its rows of :func:`_column_tables` (``lc`` cut to ``K + 2``)."""
        (pb, pnb), last, U = self.F, self.last, self.U
        nb, W = last.size, lc.size
        S = np.add.outer(np.logaddexp(pb, pnb), lc)  # (B, W): column 0 the blank stay's pb, c > 0 extensions' pnb
        lcol = co[last]  # the column of each beam's last token
        rl = lc[lcol]
        stay = np.empty((2, nb))  # (pb, pnb) of the stays
        stay[0] = S[:, 0]
        np.add(pnb, rl, out=stay[1])  # repeat stay
        S[np.arange(nb), lcol] = pb + rl  # extending by the last token again needs a blank in between
        j, i = _children(U[0], U[1])  # beam j = beam i + j's last token: merge into j's stay
        if j.size:
            c = lcol[j]
            stay[1, j] = np.logaddexp(stay[1, j], S[i, c])
            S[i, c] = NEG_INF
        np.logaddexp(stay[0], stay[1], out=S[:, 0])
        sel, sc = _best(S.ravel(), beam_width, prune)
        rows, cols = np.divmod(sel, W)
        e = cols.nonzero()[0]  # the extensions (their pb is -inf, their pnb their score)
        F = stay[:, rows]
        F[0, e] = NEG_INF
        F[1, e] = sc[e]
        app = tok[cols]
        last = last[rows]
        last[e] = app[e]
        U = U[:, rows]
        hp = U[0, e]
        U[1, e] = hp
        U[0, e] = hp * HASH_MUL + toku[cols[e]]
        self.F, self.last, self.U = F, last, U
        self.trace.append((rows, app))

    def texts(self, chars: list[str]) -> list[str]:
        """Each beam's text, following the back-pointers from the last step to the first."""
        idx = np.arange(self.size)
        apps = []
        for rows, app in reversed(self.trace):
            apps.append(app[idx])
            idx = rows[idx]
        base = [self.base[i] for i in idx.tolist()]
        if not apps:
            return base
        strs = np.array([*chars, ""])[np.array(apps[::-1]).T]  # (B, steps); index -1 (nothing appended): ""
        return [b + "".join(s) for b, s in zip(base, strs.tolist())]

    def to_lists(self, chars: list[str]) -> list[list]:
        """The plain-Python beams (see :mod:`kwslab.decoding._small_step`)."""
        return [[*b, None] for b in zip(*self.F.tolist(), self.last.tolist(), *self.U.tolist(), self.texts(chars))]


def _children(h: np.ndarray, ph: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(j, i)`` with ``ph[j] == h[i]``: beam ``j`` is beam ``i`` plus one token."""
    if h.size <= 64:  # one (B, B) comparison
        return (ph[:, None] == h).nonzero()
    order = np.argsort(h)
    i = order[np.minimum(np.searchsorted(h, ph, sorter=order), h.size - 1)]
    j = (h[i] == ph).nonzero()[0]
    return j, i[j]


def _best(flat: np.ndarray, beam_width: int, prune: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``beam_width`` best entries of ``flat`` within ``prune`` of the best."""
    n = flat.size
    if n > beam_width:
        sel = flat.argpartition((n - beam_width, n - 1))[n - beam_width:]  # sel[0]: the worst kept, sel[-1]: the best
        sc = flat[sel]
        if sc[0] >= sc[-1] + prune:
            return sel, sc
        keep = sc >= sc[-1] + prune
    else:
        sel, sc = np.arange(n), flat
        keep = sc >= sc.max() + prune
    return sel[keep], sc[keep]


def _shift(F: np.ndarray, sc, sb, col) -> None:
    """The skipped frames before a step (see :mod:`kwslab.decoding._plan`) on ``F``'s ``pb, pnb`` rows, in
    place; ``sc, sb, col`` (``shift_c, shift_b, collapse``) are per beam or scalars."""
    F[:2] += sc
    if np.ndim(col):
        F[0] = np.where(col, np.logaddexp(F[0], F[1]) + sb, F[0])
        F[1, col] = NEG_INF
    elif col:
        F[0] = np.logaddexp(F[0], F[1]) + sb
        F[1] = NEG_INF


def _search_batch(plan, vocab: CharVocab, beam_width: int, prune: float, fusion, n_best: int | None):
    N, V, A = plan.n_act.size, len(vocab), plan.lpm.shape[0]
    lpm = np.full((A + 1, V + 1), NEG_INF)  # column V: the padding token; row A: a no-op step
    lpm[:A, :V] = plan.lpm
    lpm[A, vocab.blank] = 0.0  # blank with probability 1
    cand = padded_candidates(plan, V)
    cand = np.concatenate([cand, np.full((1, cand.shape[1]), V)])
    ncand = np.append(plan.ncand, 0)
    S = int(plan.n_act.max(initial=0))
    ks = np.arange(S + 1)[:, None]
    step_rows = np.where(ks[:S] < plan.n_act, plan.act_off + ks[:S], A)  # (S, N) rows of lpm
    bnd = np.where(ks <= plan.n_act, plan.act_off + np.arange(N) + ks, A + N)  # (S + 1, N) boundary of each step
    sc, sb = np.append(plan.shift_c, 0.0)[bnd], np.append(plan.shift_b, 0.0)[bnd]
    col = np.append(plan.collapse, False)[bnd]
    any_shift = (sc != 0).any(axis=1) | col.any(axis=1)
    kmax = ncand[step_rows].max(axis=1, initial=0)
    F = np.zeros((3, N))  # rows: pb (last frame blank), pnb (last frame = last token), fusion score
    F[1] = NEG_INF
    I = np.stack([np.full(N, -1), np.zeros(N, dtype=np.int64), np.arange(N)])  # last token, trie node, utterance
    # Prefix hash and parent hash; each utterance's root gets its own seed so prefixes never collide across it.
    U = np.stack([np.arange(N, dtype=np.uint64) * np.uint64(ROOT_MUL) + np.uint64(ROOT_SEED),
                  np.zeros(N, dtype=np.uint64)])
    trie = ([-1], [-1], {0: ""})  # node -> parent, node -> token, nodes of known text
    if fusion is not None:
        fusion.start(N)
    for k in range(S + 1):
        if any_shift[k] and N > 1:
            _shift(F, sc[k][I[2]], sb[k][I[2]], col[k][I[2]])
        elif any_shift[k]:
            _shift(F, sc[k, 0], sb[k, 0], col[k, 0])
        if k < S:
            r = step_rows[k]
            F, I, U = _step(F, I, U, lpm[r], cand[r, : kmax[k]], N, vocab.blank, beam_width, prune, fusion,
                            trie)
    final = np.logaddexp(F[0], F[1])
    if fusion is not None:
        final = final + F[2] + fusion.final_bonus()
    order = np.lexsort((-final, I[2]))
    texts = small.read_texts(I[1, order].tolist(), trie[0], trie[1], vocab.tokens, trie[2])
    out: list[list[tuple[str, float]]] = [[] for _ in range(N)]
    for n, txt, s in zip(I[2, order].tolist(), texts, final[order].tolist()):
        if n_best is None or len(out[n]) < n_best:
            out[n].append((txt, s))
    return out


def _step(F, I, U, lpt, cand, N, blank, beam_width, prune, fusion, trie):
    """One vectorised step. ``lpt`` (N, V + 1) and ``cand`` (N, K) are each utterance's frame."""
    pb, pnb, last, utt, h = F[0], F[1], I[0], I[2], U[0]
    K, nb = cand.shape[1], pb.size
    if N == 1:  # (1, ...) rows broadcast over the beams
        lpc = lpt[:, cand[0]]  # (1, K)
        rep_lp = lpt[0, last]
    else:
        lpt = lpt[utt]  # (B, V + 1): this frame's log-probs of each beam's utterance
        cand = cand[utt]  # (B, K), padded with V (log-prob -inf)
        lpc = np.take_along_axis(lpt, cand, axis=1)
        rep_lp = lpt[np.arange(nb), last]
    tot = np.logaddexp(pb, pnb)
    C = np.empty((2, nb, K + 1))  # (pb, pnb) of every candidate
    np.add(tot, lpt[:, blank], out=C[0, :, 0])
    C[0, :, 1:] = NEG_INF
    np.add(pnb, rep_lp, out=C[1, :, 0])
    ext = C[1, :, 1:]
    np.add(tot[:, None], lpc, out=ext)
    jj, cc = (cand == last[:, None]).nonzero()  # beams whose last token is a candidate, and its column
    if jj.size:
        ext[jj, cc] = pb[jj] + lpc[jj if N > 1 else 0, cc]  # repeating the last token needs a blank in between
        if nb > 1:  # prefix_i + c == prefix_j already in the beam: merge into j
            order = np.argsort(h)
            par = order[np.minimum(np.searchsorted(h, U[1, jj], sorter=order), nb - 1)]
            ok = (h[par] == U[1, jj]).nonzero()[0]
            if ok.size:
                j, i, cj = jj[ok], par[ok], cc[ok]
                C[1, j, 0] = np.logaddexp(C[1, j, 0], ext[i, cj])
                ext[i, cj] = NEG_INF
    S = np.logaddexp(C[0], C[1])  # (B, K + 1)
    delta = None
    if fusion is not None:
        delta = fusion.extension_bonus(cand, last)  # (B, K)
        S += F[2][:, None]
        S[:, 1:] += delta
    sel = _select(S.ravel(), utt, K + 1, N, beam_width, prune)
    rows = sel // (K + 1)
    cols = sel - rows * (K + 1)
    e = (cols > 0).nonzero()[0]  # new beams extending their parent
    F = np.concatenate([C.reshape(2, -1)[:, sel], F[2:, rows]])
    I = I[:, rows]
    U = U[:, rows]
    et = cand[rows[e] if N > 1 else 0, cols[e] - 1]
    if delta is not None:
        F[2, e] += delta[rows[e], cols[e] - 1]
        fusion.select(rows, e, cols[e] - 1, et)
    if e.size:
        hp = U[0, e]
        U[1, e] = hp
        U[0, e] = hp * HASH_MUL + (et + 1).astype(np.uint64)
        I[0, e] = et
        parents, toks = trie[0], trie[1]
        parents.extend(I[1, e].tolist())  # the parents' nodes
        toks.extend(et.tolist())
        I[1, e] = np.arange(len(parents) - e.size, len(parents))
    return F, I, U


def _select(flat: np.ndarray, utt: np.ndarray, width: int, N: int, beam_width: int, prune: float) -> np.ndarray:
    """Flat indices of the surviving candidates: per utterance the ``beam_width`` best within ``prune``."""
    if N == 1:
        if flat.size > beam_width:
            sel = np.argpartition(flat, -beam_width)[-beam_width:]
            sc = flat[sel]
            return sel[sc >= sc.max() + prune]
        return (flat >= flat.max() + prune).nonzero()[0]
    # Several utterances: scatter each one's candidates into a row of an (N, L) matrix, then per row
    # argpartition (linear time) and the pruning threshold.
    counts = np.bincount(utt, minlength=N) * width  # candidates per utterance (grouped, ascending)
    starts = np.zeros(N, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    L = int(counts.max())
    seg = np.repeat(np.arange(N), counts)
    M = np.full((N, L), NEG_INF)
    M[seg, np.arange(flat.size) - starts[seg]] = flat
    if L > beam_width:
        part = np.argpartition(M, L - beam_width, axis=1)[:, L - beam_width:]
        vals = np.take_along_axis(M, part, axis=1)
    else:
        part = np.broadcast_to(np.arange(L), (N, L))
        vals = M
    keep_n, keep_k = (vals >= vals.max(axis=1, keepdims=True) + prune).nonzero()  # row-major: grouped
    return starts[keep_n] + part[keep_n, keep_k]
