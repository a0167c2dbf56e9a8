"""Compose connected-word utterances for CTC training from an isolated-word manifest.

Example: FSDD digits -> ``"three one four"``. Each utterance takes all its clips from one speaker of one
split (so the input's speaker-disjoint split carries over), trims each clip's leading/trailing silence
lightly (optional), joins them with random gaps, optionally adds noise at a given SNR, and is written as
a WAV with the transcript (words joined by spaces). Word timings go to ``segments.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from kwslab.audio import load_audio, wav_info, write_wav
from kwslab.data.manifest import SPLITS, ManifestRow, atomic_write_text, read_manifest
from kwslab.data.sources.common import PrepareResult, count_table, write_splits
from kwslab.data.sources.split import assign_splits
from kwslab.dsp.waveform import NOISE_COLORS, colored_noise, mix_at_snr, trim_silence
from kwslab.text import normalize_text

__all__ = ["SequenceResult", "load_word_clips", "compose_sequences", "read_segments",
           "word_errors_by_source"]


@dataclass
class SequenceResult(PrepareResult):
    """:class:`PrepareResult` plus, per row, the word segments: dicts with ``word``, ``start``, ``end``
    (seconds in the composed file) and ``source`` (input clip path)."""

    segments: list[list[dict[str, object]]] = field(default_factory=list)
    sample_rate: int = 0

    def table(self) -> str:
        """Utterance counts per split and number of words."""
        return count_table(self.rows, "words", lambda r: f"{len(str(r['transcript']).split())} words")


def _manifest_paths(manifests: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    items = [manifests] if isinstance(manifests, (str, os.PathLike)) else list(manifests)
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = [p / f"{s}.csv" for s in SPLITS if (p / f"{s}.csv").is_file()]
            if not found:
                raise FileNotFoundError(f"sequences: folder {p} has no train.csv/val.csv/test.csv")
            paths.extend(found)
        else:
            paths.append(p)
    return paths


def load_word_clips(
    manifests: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[list[tuple[ManifestRow, str, str]], int]:
    """Read isolated-word manifests into ``(row, word, split)`` triples.

    The word is the normalised transcript, else the keyword; rows with neither (or a ``_silence_``-style
    keyword and no transcript) are skipped. The split is the row's ``split``, else the manifest's file
    stem when it is ``train``/``val``/``test``, else assigned speaker-disjointly.

    Returns:
        The triples and the number of rows skipped.
    """
    entries: list[tuple[ManifestRow, str, str]] = []
    skipped = 0
    for path in _manifest_paths(manifests):
        stem_split = path.stem if path.stem in SPLITS else ""
        for r in read_manifest(path):
            word = normalize_text(r.transcript) if r.transcript else ("" if r.keyword.startswith("_") else r.keyword)
            if not word:
                skipped += 1
                continue
            entries.append((r, word, r.split or stem_split))
    missing = [(str(r.path), r.speaker) for r, _, s in entries if not s]
    if missing:
        assigned = assign_splits(missing, val_fraction, test_fraction, seed)
        entries = [(r, w, s or assigned[str(r.path)]) for r, w, s in entries]
    return entries, skipped


def _select_words(entries: list[tuple[ManifestRow, str, str]], words: Sequence[str] | None,
                  holdout_words: Sequence[str]) -> tuple[list[tuple[ManifestRow, str, str]], dict[str, int]]:
    """Keep the clips of ``words`` (all when None); drop ``holdout_words`` clips from the train split."""
    dropped: dict[str, int] = {}
    present = {w for _, w, _ in entries}
    if words is not None:
        wanted = {normalize_text(w) for w in words} - {""}
        if not wanted:
            raise ValueError("sequences: words is empty")
        absent = sorted(wanted - present)
        if absent:
            raise ValueError(f"sequences: no input clip says {', '.join(absent)} "
                             f"(the input's words: {', '.join(sorted(present))})")
        kept = [e for e in entries if e[1] in wanted]
        if len(kept) < len(entries):
            dropped["input clips of other words"] = len(entries) - len(kept)
        entries = kept
    held = {normalize_text(w) for w in holdout_words} - {""}
    absent = sorted(held - {w for _, w, _ in entries})
    if absent:
        raise ValueError(f"sequences: holdout word(s) {', '.join(absent)} are not among the words composed")
    if held:
        kept = [e for e in entries if not (e[2] == "train" and e[1] in held)]
        dropped["train clips of held-out words"] = len(entries) - len(kept)
        entries = kept
    return entries, dropped


def _parse_range(value: float | tuple[float, float] | None, name: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if np.isscalar(value):
        lo = hi = float(value)  # type: ignore[arg-type]
    else:
        lo, hi = float(value[0]), float(value[1])  # type: ignore[index]
    if hi < lo:
        raise ValueError(f"sequences: {name} range ({lo}, {hi}) has max < min")
    return lo, hi


def _allocate(count: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split ``count`` over splits in proportion to ``sizes`` (largest remainder; empty splits get 0)."""
    total = sum(sizes.values())
    if total == 0:
        return {s: 0 for s in sizes}
    raw = {s: count * n / total for s, n in sizes.items()}
    out = {s: int(v) for s, v in raw.items()}
    for s in sorted(raw, key=lambda s: (out[s] - raw[s], SPLITS.index(s)))[: count - sum(out.values())]:
        out[s] += 1
    return out


def compose_sequences(
    manifests: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    count: int = 1000,
    min_words: int = 2,
    max_words: int = 6,
    gap_ms: tuple[float, float] = (50.0, 300.0),
    noise_snr: float | tuple[float, float] | None = None,
    noise_dir: str | os.PathLike[str] | None = None,
    sample_rate: int | None = None,
    trim: bool = True,
    trim_db: float = 40.0,
    trim_floor_db: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    words: Sequence[str] | None = None,
    holdout_words: Sequence[str] = (),
    distinct: bool = False,
) -> SequenceResult:
    """Compose ``count`` connected-word utterances and write them with train/val/test manifests.

    Args:
        manifests: Isolated-word manifest(s), or a folder with ``train.csv``/``val.csv``/``test.csv``.
        out: Output folder: WAVs under ``out/audio/<split>/``, the CSVs and ``segments.jsonl``.
        count: Total utterances, shared among splits in proportion to their clip counts.
        min_words: Fewest words per utterance (default 2).
        max_words: Most words per utterance (default 6).
        gap_ms: Range of the silent gap between words and at both ends, in ms (default 50-300).
        noise_snr: Add noise at this SNR in dB, or at one drawn uniformly from a ``(lo, hi)`` range; the
            speech power is measured over the words only. None (default): no noise.
        noise_dir: WAVs to take noise from (random file and offset); default: synthetic white/pink/brown.
        sample_rate: Output rate; default: the rate of the first input clip. Clips are resampled to it.
        trim: Trim each clip's leading/trailing silence (energy below ``trim_db`` under its peak).
        trim_db: Trim threshold in dB (default 40).
        trim_floor_db: Also trim what is less than this many dB above the clip's noise floor (recordings with
            room noise, such as Speech Commands; see :func:`kwslab.dsp.waveform.trim_silence`). None (default): off.
        val_fraction: For input rows without a split: share of speakers for val.
        test_fraction: For input rows without a split: share for test.
        seed: Everything random derives from it (utterance ``i`` of a split uses its own generator).
        words: Compose from these words only (normalised like transcripts); None: every word of the input. A
            word no input clip says is an error.
        holdout_words: Words left out of the training utterances (their clips are dropped from the train split
            only), so a model trained on them knows the letters but has never heard the word; validation and test
            utterances still contain them.
        distinct: Pick speakers in proportion to their number of clips, and draw an utterance's clips without
            replacement when the speaker has enough of them, so every recording is used about equally often and
            no utterance repeats one recording. False (default): speakers uniformly, clips with replacement (what
            the FSDD recipes were measured with).

    Returns:
        A :class:`SequenceResult` (rows, manifests, per-row word segments, sample rate).
    """
    if not 1 <= min_words <= max_words:
        raise ValueError(f"sequences: need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    if count < 0:
        raise ValueError(f"sequences: count must be >= 0, got {count}")
    gap = _parse_range(gap_ms, "gap_ms")
    assert gap is not None
    if gap[0] < 0:
        raise ValueError(f"sequences: gap_ms must be >= 0, got {gap_ms}")
    snr = _parse_range(noise_snr, "noise_snr")
    entries, skipped = load_word_clips(manifests, val_fraction, test_fraction, seed)
    if not entries:
        raise ValueError(f"sequences: no clips with a word (transcript or keyword) in {manifests}")
    entries, dropped = _select_words(entries, words, holdout_words)
    sr = int(sample_rate or wav_info(entries[0][0].path).sample_rate)
    noise_files = sorted(Path(noise_dir).glob("*.wav")) if noise_dir is not None else []
    if noise_dir is not None and not noise_files:
        raise FileNotFoundError(f"sequences: no WAV files in noise folder {noise_dir}")
    noises = [load_audio(p, sr) for p in noise_files]

    cache: OrderedDict[Path, np.ndarray] = OrderedDict()

    def clip(path: Path) -> np.ndarray:
        if path not in cache:
            x = load_audio(path, sr)
            cache[path] = trim_silence(x, sr, trim_db, pad=0.005, floor_db=trim_floor_db) if trim else x
            if len(cache) > 4096:
                cache.popitem(last=False)
        return cache[path]

    # split -> speaker -> clips; speakers sorted so the result does not depend on manifest order details.
    pools: dict[str, dict[str, list[tuple[ManifestRow, str]]]] = {s: {} for s in SPLITS}
    for r, word, split in entries:
        pools[split].setdefault(r.speaker, []).append((r, word))
    if any("" in pools[s] for s in SPLITS):
        result_note = "some input rows have no speaker: their clips are mixed within each split"
    else:
        result_note = ""
    quota = _allocate(count, {s: sum(len(v) for v in pools[s].values()) for s in SPLITS})
    result = SequenceResult(sample_rate=sr)
    if result_note:
        result.notes.append(result_note)
    if skipped:
        result.skipped["input rows without a word"] = skipped
    for why, n in dropped.items():
        result.skipped[why] = n
    if holdout_words:
        result.notes.append(f"held out of the training utterances: {', '.join(sorted(set(holdout_words)))}")
    out = Path(out)
    written: set[Path] = set()
    for si, split in enumerate(SPLITS):
        speakers = sorted(pools[split])
        weights = np.array([len(pools[split][k]) for k in speakers], float) if speakers else np.zeros(0)
        for i in range(quota[split]):
            rng = np.random.default_rng([seed, si, i])
            if distinct:
                spk = speakers[int(rng.choice(len(speakers), p=weights / weights.sum()))]
            else:
                spk = speakers[int(rng.integers(len(speakers)))]
            pool = pools[split][spk]
            n_words = int(rng.integers(min_words, max_words + 1))
            if distinct and len(pool) >= n_words:
                picks = [pool[int(j)] for j in rng.choice(len(pool), size=n_words, replace=False)]
            else:
                picks = [pool[int(j)] for j in rng.integers(len(pool), size=n_words)]
            pieces: list[np.ndarray] = []
            segments: list[dict[str, object]] = []
            pos = 0
            for r, word in picks:  # gap, word, gap, word, ..., then a closing gap
                g = int(round(rng.uniform(*gap) * sr / 1000.0))
                x = clip(r.path)
                pieces += [np.zeros(g, np.float32), x]
                segments.append({"word": word, "start": (pos + g) / sr, "end": (pos + g + len(x)) / sr,
                                 "source": str(r.path)})
                pos += g + len(x)
            pieces.append(np.zeros(int(round(rng.uniform(*gap) * sr / 1000.0)), np.float32))
            y = np.concatenate(pieces).astype(np.float32)
            if snr is not None:
                speech = np.concatenate([p for k, p in enumerate(pieces) if k % 2 == 1])
                power = float(np.mean(np.square(speech, dtype=np.float64))) if speech.size else 0.0
                if noises:
                    src = noises[int(rng.integers(len(noises)))]
                    reps = int(np.ceil(len(y) / max(len(src), 1))) + 1
                    tiled = np.tile(src, reps)
                    start = int(rng.integers(len(tiled) - len(y) + 1))
                    noise = tiled[start : start + len(y)]
                else:
                    noise = colored_noise(len(y), sorted(NOISE_COLORS)[int(rng.integers(len(NOISE_COLORS)))], rng)
                y = mix_at_snr(y, noise, float(rng.uniform(*snr)), signal_power=power)
            peak = float(np.max(np.abs(y))) if y.size else 0.0
            if peak > 0.99:
                y = (y * (0.99 / peak)).astype(np.float32)
            path = out / "audio" / split / f"{split}_{i:06d}.wav"
            write_wav(path, y, sr)
            written.add(path)
            voices = {r.voice for r, _ in picks}
            result.rows.append({
                "filename": str(path.absolute()), "keyword": "", "transcript": " ".join(w for _, w in picks),
                "speaker": spk, "voice": voices.pop() if len(voices) == 1 else "", "duration": len(y) / sr,
                "split": split,
            })
            result.segments.append(segments)
    for stale in (out / "audio").glob("*/*.wav") if (out / "audio").is_dir() else []:
        if stale not in written:
            stale.unlink()  # left from an earlier run with a larger count
    result.manifests = write_splits(out, result.rows)
    lines = [json.dumps({"filename": Path(str(r["filename"])).relative_to(out.absolute()).as_posix(),
                         "segments": s}) for r, s in zip(result.rows, result.segments)]
    atomic_write_text(out / "segments.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    result.notes.append(f"{len(result.rows)} utterances at {sr} Hz; word timings in {out / 'segments.jsonl'}")
    return result


def read_segments(manifest: str | os.PathLike[str]) -> dict[Path, list[dict[str, object]]]:
    """The word segments of a composed manifest's utterances, from the ``segments.jsonl`` beside it.

    Returns ``{absolute utterance path: [{"word", "start", "end", "source"}, ...]}``. Raises ValueError naming the
    file when there is no ``segments.jsonl`` (only :func:`compose_sequences` writes one) or a line is malformed.
    """
    folder = Path(manifest).parent
    path = folder / "segments.jsonl"
    if not path.is_file():
        raise ValueError(f"{manifest}: no segments.jsonl beside it (written when the utterances were composed, e.g. "
                         "by python -m kwslab.prepare sequences or scripts/prepare_ctc_fsdd.py)")
    out: dict[Path, list[dict[str, object]]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            out[(folder / item["filename"]).resolve()] = list(item["segments"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not a segments record ({exc}); rebuild the data") from None
    return out


def word_errors_by_source(utterances: Sequence[str | os.PathLike[str]], hypotheses: Sequence[str],
                          segments: dict[Path, list[dict[str, object]]]
                          ) -> tuple[dict[str, list[int]], dict[tuple[str, str], int], int]:
    """Attribute the word errors of composed utterances to the clips their words came from.

    A hypothesis with as many words as the utterance's segments is compared position by position; others are
    skipped (counted in the third return value), since their words cannot be matched to clips. Returns
    ``({source clip: [errors, words]}, {(reference, hypothesis): count}, skipped)``. Raises ValueError when an
    utterance has no segments.
    """
    per_source: dict[str, list[int]] = {}
    confusions: dict[tuple[str, str], int] = {}
    skipped = 0
    for utterance, hyp in zip(utterances, hypotheses, strict=True):
        segs = segments.get(Path(utterance).resolve())
        if segs is None:
            raise ValueError(f"{utterance}: no word segments for this utterance in segments.jsonl")
        words = hyp.split()
        if len(words) != len(segs):
            skipped += 1
            continue
        for word, seg in zip(words, segs):
            count = per_source.setdefault(str(seg["source"]), [0, 0])
            count[1] += 1
            if word != seg["word"]:
                count[0] += 1
                key = (str(seg["word"]), word)
                confusions[key] = confusions.get(key, 0) + 1
    return per_source, confusions, skipped

