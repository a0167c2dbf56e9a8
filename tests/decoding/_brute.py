"""Brute-force CTC references for tiny inputs: enumerate all V**T frame paths."""

from __future__ import annotations

import itertools

import numpy as np


def collapse(path: tuple[int, ...], blank: int) -> tuple[int, ...]:
    out: list[int] = []
    prev = None
    for p in path:
        if p != prev and p != blank:
            out.append(p)
        prev = p
    return tuple(out)


def labelling_logprobs(log_probs: np.ndarray, blank: int) -> dict[tuple[int, ...], float]:
    """Natural-log probability of every labelling reachable in T frames (sum over its alignments)."""
    T, V = log_probs.shape
    acc: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        lp = float(log_probs[np.arange(T), list(path)].sum())
        key = collapse(path, blank)
        acc[key] = np.logaddexp(acc[key], lp) if key in acc else lp
    return acc


def random_log_probs(rng: np.random.Generator, T: int, V: int, concentration: float = 1.0) -> np.ndarray:
    return np.log(rng.dirichlet(np.full(V, concentration), size=T))
