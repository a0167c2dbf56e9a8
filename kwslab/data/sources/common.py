"""What every preparer returns and how its manifests are written and summarised."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from kwslab.data.manifest import SPLITS, write_manifest

__all__ = ["PrepareResult", "write_splits", "count_table", "list_wavs"]


@dataclass
class PrepareResult:
    """Output of a preparer.

    Attributes:
        rows: Every manifest row written (dicts with the manifest columns; ``split`` always set).
        manifests: Split name -> path of the CSV written (``train``/``val``/``test``).
        skipped: Reason -> count of inputs left out (e.g. list entries naming absent files).
        notes: Human-readable remarks printed under the summary table.
    """

    rows: list[dict[str, object]] = field(default_factory=list)
    manifests: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def by_split(self) -> dict[str, list[dict[str, object]]]:
        """Rows grouped by split (every split in :data:`SPLITS` present, maybe empty)."""
        out: dict[str, list[dict[str, object]]] = {s: [] for s in SPLITS}
        for r in self.rows:
            out.setdefault(str(r["split"]), []).append(r)
        return out

    def summary(self) -> str:
        """Counts per split and label as a text table, then skipped counts and notes."""
        lines = [self.table()]
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"skipped {n}: {reason}")
        lines.extend(self.notes)
        for split, p in self.manifests.items():
            lines.append(f"{split:5s} -> {p}")
        return "\n".join(lines)


    def table(self) -> str:
        """The counts table of :meth:`summary` (per keyword)."""
        return count_table(self.rows)


def write_splits(out: str | os.PathLike[str], rows: Iterable[Mapping[str, object]]) -> dict[str, Path]:
    """Write ``train.csv``, ``val.csv`` and ``test.csv`` under ``out`` (header-only when a split is empty)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grouped: dict[str, list[Mapping[str, object]]] = {s: [] for s in SPLITS}
    for r in rows:
        split = str(r.get("split", ""))
        if split not in grouped:
            raise ValueError(f"row {r.get('filename')!r} has split {split!r}; expected one of {SPLITS}")
        grouped[split].append(r)
    paths: dict[str, Path] = {}
    for split, split_rows in grouped.items():
        paths[split] = out / f"{split}.csv"
        write_manifest(paths[split], split_rows)
    return paths


def count_table(
    rows: Iterable[Mapping[str, object]],
    label_key: str = "keyword",
    label_fn: Callable[[Mapping[str, object]], str] | None = None,
) -> str:
    """Text table of row counts: one line per label, one column per split, plus totals.

    The label is ``row[label_key]`` or ``label_fn(row)`` when given; empty labels count as ``(none)``.
    """
    counts: Counter[tuple[str, str]] = Counter()
    labels: set[str] = set()
    for r in rows:
        label = str((label_fn(r) if label_fn else r.get(label_key)) or "(none)")
        labels.add(label)
        counts[(label, str(r.get("split", "")))] += 1
    splits = list(SPLITS) + sorted({s for _, s in counts} - set(SPLITS))
    width = max([len(label_key)] + [len(lab) for lab in labels]) + 2
    head = f"{label_key:<{width}}" + "".join(f"{s:>8}" for s in splits) + f"{'total':>8}"
    lines = [head, "-" * len(head)]
    for lab in sorted(labels):
        cells = [counts[(lab, s)] for s in splits]
        lines.append(f"{lab:<{width}}" + "".join(f"{c:>8}" for c in cells) + f"{sum(cells):>8}")
    totals = [sum(counts[(lab, s)] for lab in labels) for s in splits]
    lines.append("-" * len(head))
    lines.append(f"{'total':<{width}}" + "".join(f"{c:>8}" for c in totals) + f"{sum(totals):>8}")
    return "\n".join(lines)


def list_wavs(folder: Path, extensions: tuple[str, ...] = (".wav",)) -> list[Path]:
    """Audio files under ``folder`` (recursive, hidden files skipped), sorted."""
    exts = tuple(e.lower() for e in extensions)
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in exts
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
