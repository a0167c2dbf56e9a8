"""The vectorised CTC prefix beam search loop behind :func:`kwslab.decoding.beam.beam_search`.

All beams of all utterances of a batch live in one set of arrays (grouped by utterance), so every
frame costs a fixed number of NumPy calls whatever the batch size. Per frame:

1. candidates ``(B, K + 1)``: column 0 keeps the prefix (blank stay into ``pb``, repeat stay into
   ``pnb``), column ``1 + k`` extends it by the utterance's ``k``-th candidate token;
2. an extension equal to a prefix already in the beam is merged into that prefix (``logaddexp``): the
   beam stores each prefix's hash and its parent's hash, so this is one sorted look-up;
3. per utterance the best ``beam_width`` candidates within ``-beam_prune_logp`` of the best survive.

Frames where no utterance has a candidate token (every non-blank below ``token_min_logp``) are applied
lazily: all mass moves to the blank score, summed over the whole run at the next active frame.
"""

from __future__ import annotations

import numpy as np

from kwslab.text import CharVocab

NEG_INF = -np.inf
HASH_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the rolling prefix hash (wraps mod 2**64)


def frame_tables(lps: list[np.ndarray], blank: int, token_min_logp: float, top_k: int | None):
    """Padded per-frame tables for a batch.

    Returns:
        ``lpm`` (Tmax, N, V + 1): log-probs with -inf for pruned non-blank tokens and the pad column V;
        ``cand`` (Tmax, N, Kmax): candidate tokens per utterance and frame, padded with V;
        ``kmax`` (Tmax,): candidates at the widest utterance per frame (0: a blank-only frame);
        ``blank_cum`` (N, Tmax + 1): cumulative blank log-probs (0 beyond an utterance's end).
    """
    N, V = len(lps), lps[0].shape[1]
    Tmax = max(x.shape[0] for x in lps)
    lp = np.full((Tmax, N, V + 1), NEG_INF)
    lp[:, :, blank] = 0.0  # frames past an utterance's end: blank with probability 1
    for n, x in enumerate(lps):
        lp[: x.shape[0], n, :V] = x
    T_idx, N_idx = np.indices((Tmax, N))
    argmax = lp.argmax(axis=2)
    keep = lp >= token_min_logp
    keep[T_idx, N_idx, argmax] = True
    if top_k is not None and top_k < V:
        top = np.zeros_like(keep)
        np.put_along_axis(top, np.argpartition(-lp, top_k - 1, axis=2)[:, :, :top_k], True, axis=2)
        top[T_idx, N_idx, argmax] = True
        keep &= top
    keep[:, :, blank] = False
    keep[:, :, V] = False
    counts = keep.sum(axis=2)  # (Tmax, N)
    kmax = counts.max(axis=1)
    t_i, n_i, v_i = keep.nonzero()  # sorted by (t, n, v)
    group = t_i * N + n_i
    start = np.zeros(Tmax * N + 1, dtype=np.int64)
    np.cumsum(counts.ravel(), out=start[1:])
    cand = np.full((Tmax, N, max(int(kmax.max(initial=0)), 1)), V, dtype=np.int64)
    cand[t_i, n_i, np.arange(t_i.size) - start[group]] = v_i
    lpm = np.where(keep, lp, NEG_INF)
    lpm[:, :, blank] = lp[:, :, blank]
    blank_cum = np.zeros((N, Tmax + 1))
    np.cumsum(lp[:, :, blank].T, axis=1, out=blank_cum[:, 1:])
    return lpm, cand, kmax, blank_cum


def prefix_search(lps, vocab: CharVocab, beam_width, token_min_logp, top_k, beam_prune_logp, fusion, n_best):
    """Decode a batch; returns one ``[(text, score), ...]`` list (best first) per utterance."""
    N, V, blank = len(lps), len(vocab), vocab.blank
    lpm, cand_all, kmax, blank_cum = frame_tables(lps, blank, token_min_logp, top_k)
    Tmax = lpm.shape[0]
    tok_code = np.arange(1, V + 2, dtype=np.uint64)  # token id -> hash increment
    # Beam state, one column per prefix, grouped by utterance.
    F = np.zeros((3, N))  # rows: pb (last frame blank), pnb (last frame = last token), fusion score
    F[1] = NEG_INF
    I = np.stack([np.full(N, -1), np.zeros(N, dtype=np.int64), np.arange(N)])  # last token, trie node, utterance
    # Prefix hash and parent hash; each utterance's root gets its own seed so prefixes never collide across it.
    U = np.stack([np.arange(N, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03) + np.uint64(12345),
                  np.zeros(N, dtype=np.uint64)])
    node_parent, node_tok, n_nodes = [np.array([-1])], [np.array([-1])], 1
    ar = np.arange(N * beam_width * (int(kmax.max(initial=0)) + 1))  # index helper
    if fusion is not None:
        fusion.start(N)
    t_done = 0
    for t in (kmax > 0).nonzero()[0].tolist():
        pb, pnb, last, utt, h = F[0], F[1], I[0], I[2], U[0]
        if t > t_done:  # run of blank-only frames
            F[0] = np.logaddexp(pb, pnb) + (blank_cum[:, t] - blank_cum[:, t_done])[utt]
            F[1] = NEG_INF
        t_done = t + 1
        K = int(kmax[t])
        nb = pb.size
        if N == 1:  # (1, ...) rows broadcast over the beams
            lpt = lpm[t]  # (1, V + 1)
            cand = cand_all[t, :, :K]  # (1, K)
            lpc = lpt[:, cand[0]]  # (1, K)
            rep_lp = lpt[0, last]
        else:
            lpt = lpm[t][utt]  # (B, V + 1): this frame's log-probs of each beam's utterance
            cand = cand_all[t, :, :K][utt]  # (B, K), padded with V (log-prob -inf)
            lpc = lpt[ar[:nb, None], cand]
            rep_lp = lpt[ar[:nb], last]
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
        sel = _select(S.ravel(), utt, K + 1, N, beam_width, beam_prune_logp)
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
            U[0, e] = hp * HASH_MUL + tok_code[et]
            I[0, e] = et
            node_parent.append(I[1, e])
            node_tok.append(et)
            I[1, e] = np.arange(n_nodes, n_nodes + e.size)
            n_nodes += e.size
    if t_done < Tmax:
        F[0] = np.logaddexp(F[0], F[1]) + (blank_cum[:, Tmax] - blank_cum[:, t_done])[I[2]]
        F[1] = NEG_INF
    final = np.logaddexp(F[0], F[1])
    if fusion is not None:
        final = final + F[2] + fusion.final_bonus()
    order = np.lexsort((-final, I[2]))
    texts = _read_texts(I[1, order], np.concatenate(node_parent), np.concatenate(node_tok), vocab)
    out: list[list[tuple[str, float]]] = [[] for _ in range(N)]
    for n, txt, sc in zip(I[2, order].tolist(), texts, final[order].tolist()):
        if n_best is None or len(out[n]) < n_best:
            out[n].append((txt, sc))
    return out


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


def _read_texts(nodes: np.ndarray, parent: np.ndarray, tok: np.ndarray, vocab: CharVocab) -> list[str]:
    """Text of each trie node, walking all of them up to the root together."""
    seqs: list[list[int]] = [[] for _ in range(nodes.size)]
    cur = nodes.copy()
    while True:
        live = (cur > 0).nonzero()[0]
        if not live.size:
            break
        for k, tk in zip(live.tolist(), tok[cur[live]].tolist()):
            seqs[k].append(tk)
        cur[live] = parent[cur[live]]
    return [vocab.decode(s[::-1]) for s in seqs]
