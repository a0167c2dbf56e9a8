"""Deterministic train/val/test assignment shared by every preparer.

Two rules, both driven by a SHA-256 hash of ``(seed, key)`` rather than a shuffled list, so the result
depends only on the seed and the keys themselves:

* :func:`hash_split` (per file): a file lands in a split by where its hash falls in ``[0, 1)``. Adding or
  removing other files never moves an existing file to another split.
* :func:`split_groups` (per speaker): groups are ordered by hash and cut into contiguous test / val /
  train runs so that the *number of items* (not groups) approaches the requested fractions, with at
  least one group in every requested split when there are enough groups. No group is ever in two
  splits, so there is no speaker leakage.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Mapping

__all__ = ["hash_unit", "hash_split", "split_groups", "assign_splits", "check_fractions", "parse_speaker"]


def hash_unit(key: str, seed: int = 0) -> float:
    """Map ``(seed, key)`` to a stable float in ``[0, 1)`` (same in every process and platform)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ``ValueError`` unless both fractions are in ``[0, 1)`` and sum to less than 1."""
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 (got {val_fraction} + {test_fraction}); "
            "nothing would be left for training"
        )


def hash_split(key: str, val_fraction: float, test_fraction: float, seed: int = 0) -> str:
    """Split of one item by its hash: ``"test"`` below ``test_fraction``, then ``"val"``, else ``"train"``."""
    check_fractions(val_fraction, test_fraction)
    u = hash_unit(key, seed)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def split_groups(
    sizes: Mapping[str, int], val_fraction: float, test_fraction: float, seed: int = 0
) -> dict[str, str]:
    """Assign whole groups (e.g. speakers) to splits.

    Args:
        sizes: Group name -> number of items in it.
        val_fraction: Target share of items in ``val``.
        test_fraction: Target share of items in ``test``.
        seed: Changes the hash order, hence which groups go where.

    Returns:
        Group name -> ``"train"``/``"val"``/``"test"``. With ``k`` groups and ``m`` requested non-train
        splits, each requested split gets at least one group when ``k > m``; train always gets one.
    """
    check_fractions(val_fraction, test_fraction)
    order = sorted(sizes, key=lambda g: (hash_unit(g, seed), g))
    total = sum(max(int(sizes[g]), 0) for g in order)
    k = len(order)
    if k == 0:
        return {}
    # A group goes to the split containing the midpoint of its run of items.
    n_test = n_val = 0
    cum = 0.0
    for g in order:
        mid = (cum + max(sizes[g], 0) / 2.0) / max(total, 1)
        cum += max(sizes[g], 0)
        if mid < test_fraction:
            n_test += 1
        elif mid < test_fraction + val_fraction:
            n_val += 1
    n_val = min(n_val, k - n_test)
    # At least one group per requested split, keeping at least one for training.
    if test_fraction > 0 and n_test == 0 and k - n_val >= 2:
        n_test = 1
    if val_fraction > 0 and n_val == 0 and k - n_test >= 2:
        n_val = 1
    while n_test + n_val >= k and (n_test + n_val) > 0:
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    out: dict[str, str] = {}
    for i, g in enumerate(order):
        out[g] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def parse_speaker(name: str, pattern: str | re.Pattern[str] | None) -> str:
    """Extract a speaker id from a file name with ``pattern`` (``re.search``).

    The named group ``speaker`` is used when present, else group 1, else the whole match. Returns ``""``
    when ``pattern`` is None or does not match.
    """
    if pattern is None:
        return ""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    m = rx.search(name)
    if not m:
        return ""
    if "speaker" in rx.groupindex:
        return m.group("speaker") or ""
    return (m.group(1) if rx.groups else m.group(0)) or ""


def assign_splits(
    items: Iterable[tuple[str, str]], val_fraction: float, test_fraction: float, seed: int = 0
) -> dict[str, str]:
    """Split ``(key, speaker)`` pairs: speaker-disjoint for items with a speaker, per-file hash otherwise.

    Returns:
        key -> split name.
    """
    items = list(items)
    sizes: dict[str, int] = {}
    for _, spk in items:
        if spk:
            sizes[spk] = sizes.get(spk, 0) + 1
    by_speaker = split_groups(sizes, val_fraction, test_fraction, seed)
    return {
        key: by_speaker[spk] if spk else hash_split(key, val_fraction, test_fraction, seed)
        for key, spk in items
    }
