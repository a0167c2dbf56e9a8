"""The prefix beam search loop behind :func:`kwslab.decoding.beam.beam_search`.

Only the frames that :mod:`kwslab.decoding._plan` marks active get a step; the others are applied as
score shifts before the next step. Two implementations of a step share one beam state:

* vectorised (this module): all beams of all utterances of a batch live in one set of arrays, grouped
  by utterance, so a step costs a fixed number of NumPy calls whatever the batch size. Utterances are
  independent, so step ``k`` runs each utterance's ``k``-th active frame (not a common frame index);
  an utterance with fewer active frames gets no-op steps. Per step:

  1. candidates ``(B, K + 1)``: column 0 keeps the prefix (blank stay into ``pb``, repeat stay into
     ``pnb``), column ``1 + k`` extends it by the utterance's ``k``-th tried token;
  2. an extension equal to a prefix already in the beam is merged into that prefix (``logaddexp``): the
     beam stores each prefix's hash and its parent's hash, so this is one sorted look-up;
  3. per utterance the best ``beam_width`` candidates within ``-beam_prune_logp`` of the best survive;

* plain Python (:mod:`kwslab.decoding._small_step`): without fusion, utterances are decoded one by one
  (unless a batch is flat: more than ``FEW_TOKENS`` tried tokens per active frame), and frames with at
  most ``SMALL_PAIRS`` (beam, token) pairs run as a dict merge, which beats the NumPy calls' fixed cost.
"""

from __future__ import annotations

import math

import numpy as np

from kwslab.decoding import _small_step as small
from kwslab.decoding.ctc_score import ctc_log_likelihoods
from kwslab.decoding._plan import NEG_INF, Plan, padded_candidates, plan_frames
from kwslab.text import CharVocab

HASH_MUL = np.uint64(small.HASH_MUL)  # odd multiplier of the rolling prefix hash (wraps mod 2**64)
ROOT_SEED, ROOT_MUL = 12345, 0xD1B54A32D192ED03  # utterance n's empty prefix hashes to n * ROOT_MUL + ROOT_SEED
SMALL_PAIRS = 96  # a frame with at most this many (beam, tried token + stay) pairs runs in plain Python
RESCORE_TOP, RESCORE_MARGIN, RESCORE_GAP = 16, 1.0, 1e-3  # see _rescore
FEW_TOKENS = 4.0  # a batch (without fusion) trying at most this many tokens per frame on average is decoded
# utterance by utterance (mostly plain-Python steps); more, and the vectorised step runs all at once


def prefix_search(lps, vocab: CharVocab, beam_width, token_min_logp, top_k, beam_prune_logp, fusion, n_best):
    """Decode a batch; returns one ``[(text, score), ...]`` list (best first) per utterance."""
    plan = plan_frames(lps, vocab.blank, token_min_logp, top_k, beam_prune_logp, relative=fusion is None)
    if fusion is not None:
        return _search_batch(plan, vocab, beam_width, beam_prune_logp, fusion, n_best)
    cum = np.zeros(plan.ncand.size + 1, dtype=np.int64)
    np.cumsum(plan.ncand, out=cum[1:])
    flat = (cum[plan.act_off + plan.n_act] - cum[plan.act_off] > FEW_TOKENS * plan.n_act).tolist()  # (N,)
    if len(lps) == 1 or cum[-1] <= FEW_TOKENS * plan.ncand.size:
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
    ``RESCORE_GAP`` times the best beam's probability, the hypotheses within ``RESCORE_MARGIN`` of the
    best beam score (at most ``RESCORE_TOP``) get their exact forward score and are re-sorted.
    """
    if not hyps:
        return hyps
    scores = np.array([s for _, s in hyps])
    captured = float(np.logaddexp.reduce(scores))
    lost = -math.expm1(captured) if captured < 0 else 0.0
    if lost <= RESCORE_GAP * math.exp(hyps[0][1]):
        return hyps
    k = min(len(hyps), RESCORE_TOP, int(np.count_nonzero(scores >= hyps[0][1] - RESCORE_MARGIN)))
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
    """One utterance without fusion: plain-Python steps on small frames, vectorised ones on large."""
    blank, lpm, cand_tok, chars = vocab.blank, plan.lpm, plan.cand_tok, vocab.tokens
    rows, tokens, ncand = lpm.tolist(), cand_tok.tolist(), plan.ncand.tolist()
    sc, sb, col = plan.shift_c.tolist(), plan.shift_b.tolist(), plan.collapse.tolist()
    beams: list[list] = [[0.0, NEG_INF, -1, ROOT_SEED, 0, "", None]]
    arrays = None  # (F, I, U, trie) while the vectorised step owns the state
    off = 0
    for a, k in enumerate(ncand):
        nb = len(beams) if arrays is None else arrays[0].shape[1]
        if nb * (k + 1) <= SMALL_PAIRS:
            if arrays is not None:
                beams, arrays = _to_lists(*arrays, chars), None
            beams = small.step(beams, rows[a], tokens[off: off + k], sc[a], sb[a], col[a], blank, beam_width,
                               prune, chars)
        else:
            if arrays is None:
                arrays = _to_arrays(beams)
            F, I, U, trie = arrays
            if sc[a] or col[a]:
                _shift(F, sc[a], sb[a], col[a])
            arrays = (*_step(F, I, U, lpm[a: a + 1], cand_tok[None, off: off + k], 1, blank, beam_width, prune,
                             None, trie), trie)
        off += k
    if arrays is not None:
        beams = _to_lists(*arrays, chars)
    return [(t, s) for s, t in small.finish(beams, sc[-1], sb[-1], col[-1])]


def _to_arrays(beams: list[list]):
    """Plain-Python beams -> (F, I, U, trie); their texts become base nodes of a new trie."""
    pb, pnb, last, h, ph, text, _ = zip(*beams)
    nb = len(beams)
    F = np.array([pb, pnb, np.zeros(nb)])
    I = np.array([last, np.arange(nb), np.zeros(nb)], dtype=np.int64)
    U = np.array([h, ph], dtype=np.uint64)
    return F, I, U, ([-1] * nb, [-1] * nb, dict(enumerate(text)))


def _to_lists(F, I, U, trie, chars) -> list[list]:
    texts = small.read_texts(I[1].tolist(), trie[0], trie[1], chars, trie[2])
    return [[*b, None] for b in zip(*F[:2].tolist(), I[0].tolist(), *U.tolist(), texts)]


def _shift(F: np.ndarray, sc, sb, col) -> None:
    """Vectorised :func:`kwslab.decoding._small_step.shift`; ``sc, sb, col`` are per beam or scalars."""
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
