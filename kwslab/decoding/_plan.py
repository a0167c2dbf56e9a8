"""Frame planning for the prefix beam search: which tokens each frame tries, and which frames need no step.

Token pruning (per frame): a token is tried when its log-prob is at least ``token_min_logp`` and (without
fusion) at least ``max_lp + beam_prune_logp - log 2``; the frame's argmax always is, and with ``top_k``
only the ``top_k`` best are. The blank is pruned like any other token. The relative bound is safe: the
best hypothesis after the frame scores at least ``best_before + max_lp - log 2``, so a token below it
cannot start a hypothesis that survives beam pruning (it could only add less than ``exp(beam_prune_logp)
/ 2`` of the best hypothesis's mass to a merge, which is dropped).

Frames that need no search step (all vectorised here, once per batch):

* a frame whose only tried token is the blank: every prefix moves to its blank score
  (``pb = logaddexp(pb, pnb) + lp[blank]``, ``pnb = -inf``);
* a frame whose only tried token is the character ``c`` when the frame before also tried only ``c``:
  after the first such frame every prefix ends in ``c`` with ``pb = -inf``, so the frame only adds
  ``lp[c]`` to every ``pnb`` (runs of one certain character cost nothing).

The skipped frames between two stepped frames are always a (possibly empty) run of the previous stepped
frame's single character followed by a (possibly empty) run of blank-only frames, so their effect is
three numbers per step: ``shift_c`` (added to ``pnb``), then, when ``collapse``, the blank move with
``shift_b``. The same holds for the frames after an utterance's last stepped frame (its "tail").
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

NEG_INF = -np.inf
LOG2 = math.log(2.0)


class Plan(NamedTuple):
    """The stepped ("active") frames of a batch and the shifts between them.

    ``A`` active frames in all, utterance-major; boundaries are each utterance's active frames plus one
    tail entry, so utterance ``n``'s boundary ``k`` is at ``act_off[n] + n + k``.
    """

    lpm: np.ndarray  # (A, V): log-probs of the tried tokens, -inf elsewhere
    cand_tok: np.ndarray  # (sum of ncand,): tried non-blank tokens of the active frames, frame-major
    ncand: np.ndarray  # (A,): number of tried non-blank tokens
    n_act: np.ndarray  # (N,): active frames per utterance
    act_off: np.ndarray  # (N,): index of each utterance's first active frame
    shift_c: np.ndarray  # (A + N,): added to pnb (and pb) before the boundary
    shift_b: np.ndarray  # (A + N,): blank-run log-prob applied when collapse
    collapse: np.ndarray  # (A + N,) bool: a blank-only frame precedes the boundary


def plan_frames(lps: list[np.ndarray], blank: int, token_min_logp: float, top_k: int | None,
                beam_prune_logp: float, relative: bool) -> Plan:
    """Plan a batch of ``(T_n, V)`` log-prob arrays (see the module docstring)."""
    N = len(lps)
    X = lps[0] if N == 1 else np.concatenate(lps)  # (R, V), R = sum of lengths
    R, V = X.shape
    am = X.argmax(axis=1)
    mx = X.ravel()[np.arange(0, R * V, V) + am]  # (R,): each frame's best log-prob
    if relative:
        thr = np.maximum(mx + (beam_prune_logp - LOG2), token_min_logp)
    else:
        thr = np.full(R, token_min_logp)
    keep = X >= np.minimum(thr, mx, out=thr)[:, None]  # the argmax is always tried
    if top_k is not None and top_k < V:
        top = np.zeros_like(keep)
        np.put_along_axis(top, np.argpartition(-X, top_k - 1, axis=1)[:, :top_k], True, axis=1)
        np.put_along_axis(top, am[:, None], True, axis=1)
        keep &= top
    one = keep @ np.ones(V) == 1  # a matrix-vector product counts short rows fastest
    single = np.where(one, am, -1)  # the only tried token, or -1
    skip = single == blank
    rep = single[1:] == single[:-1]
    rep &= one[1:]
    skip[1:] |= rep
    if N > 1:
        ends = np.cumsum([x.shape[0] for x in lps])
        first = ends[:-1][ends[:-1] < R]
        skip[first] = single[first] == blank  # an utterance's first frame repeats nothing
    act = (~skip).nonzero()[0]
    # Boundaries: per utterance its active rows, then its end (the tail). The frames skipped before a
    # boundary are rows [lo, row): a run of one character, then a run of blank-only frames.
    if N == 1:
        n_act = np.array([act.size])
        rows = np.concatenate((act, [R]))
        lo = np.concatenate(([0], act + 1))
    else:
        n_act = np.diff(np.searchsorted(act, ends), prepend=0)
        keys = np.concatenate([act * 2 + 1, ends * 2])  # an utterance's end sorts before the next one's rows
        keys.sort(kind="stable")
        rows = keys >> 1
        lo = np.zeros(rows.size, dtype=np.int64)
        lo[1:] = rows[:-1] + (keys[:-1] & 1)
    cum_v = np.zeros(R + 1)  # prefix sums of the skipped frames' log-probs (mx is finite)
    np.add.accumulate(skip * mx, out=cum_v[1:])
    cum_b = np.zeros(R + 1, dtype=np.int64)  # prefix counts of blank-only frames
    np.add.accumulate(single == blank, out=cum_b[1:], dtype=np.int64)
    nb = cum_b[rows] - cum_b[lo]
    mid = rows - nb  # the blank-only run is [mid, row)
    shift_b = cum_v[rows] - cum_v[mid]
    shift_c = cum_v[mid] - cum_v[lo]
    act_off = np.zeros(1, dtype=np.int64) if N == 1 else np.cumsum(n_act) - n_act
    keep_a = keep[act]
    lpm = np.where(keep_a, X[act], NEG_INF)
    keep_a[:, blank] = False
    return Plan(lpm, keep_a.nonzero()[1], keep_a.sum(axis=1), n_act, act_off, shift_c, shift_b, nb > 0)


def padded_candidates(plan: Plan, pad: int) -> np.ndarray:
    """``(A, Kc)`` tried non-blank tokens of each active frame, padded with ``pad``."""
    A = plan.ncand.size
    first = np.cumsum(plan.ncand) - plan.ncand
    cand = np.full((A, max(int(plan.ncand.max(initial=0)), 1)), pad, dtype=np.int64)
    a_i = np.repeat(np.arange(A), plan.ncand)
    cand[a_i, np.arange(a_i.size) - first[a_i]] = plan.cand_tok
    return cand
