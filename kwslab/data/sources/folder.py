"""Preparer for a folder per label: ``ROOT/yes/*.wav``, ``ROOT/no/*.wav``, ``ROOT/_silence_/*.wav``.

Every file is checked as :func:`~kwslab.data.read_manifest` will check it (:func:`kwslab.audio.check_wav`): files
that are unreadable, hold 0 samples (a row of duration 0.0 that reading the manifest would refuse) or NaN/Inf are
left out, counted in the summary and named in its notes, so the manifests written always read back.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from kwslab.audio import WavError, check_wav, wav_info
from kwslab.data.sources.common import PrepareResult, list_wavs, write_splits
from kwslab.data.sources.split import assign_splits, check_fractions, parse_speaker
from kwslab.text import normalize_text

__all__ = ["prepare_folder", "compile_speaker_regex", "DEFAULT_EXCLUDE"]

DEFAULT_EXCLUDE: tuple[str, ...] = ("_background_noise_",)


def compile_speaker_regex(pattern: str | None) -> re.Pattern[str] | None:
    """Compile a ``--speaker-regex`` value, or raise one ValueError line naming the flag and what is wrong."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"--speaker-regex {pattern!r} is not a valid regular expression: {e}; e.g. "
                         "'^(?P<speaker>[0-9a-f]+)_nohash_'") from None


def prepare_folder(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    speaker_regex: str | None = None,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    extensions: Sequence[str] = (".wav",),
    transcripts: bool = True,
) -> PrepareResult:
    """Build train/val/test manifests from a folder per label.

    Each sub-folder name of ``root`` is a keyword; files below it (recursively) are its examples. Files
    are split by a hash of their path relative to ``root`` (adding files never moves existing ones), or,
    when ``speaker_regex`` finds a speaker in a file name, by speaker so no speaker is in two splits.

    Args:
        root: Folder holding one sub-folder per label.
        out: Where ``train.csv``, ``val.csv`` and ``test.csv`` are written.
        val_fraction: Share of files (or speakers' files) for validation (default 0.1).
        test_fraction: Share for testing (default 0.1).
        seed: Changes which files/speakers land in which split.
        speaker_regex: Pattern searched in each file name; its group ``speaker`` (or group 1) is the
            speaker, e.g. ``r"^(?P<speaker>[0-9a-f]+)_nohash_"``.
        exclude: Sub-folder names that are not labels.
        extensions: Audio file suffixes to take.
        transcripts: Also write the label as the transcript (normalised: ``left_turn`` -> ``left turn``),
            except for labels starting with ``_``.

    Returns:
        The rows, manifest paths, and counts of unreadable files skipped.

    Raises:
        FileNotFoundError: if ``root`` is not a folder; ValueError: if it has no audio in label folders, or
        ``speaker_regex`` is not a valid regular expression.
    """
    check_fractions(val_fraction, test_fraction)
    speaker_rx = compile_speaker_regex(speaker_regex)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"folder preparer: root {root} is not a folder (expected ROOT/<label>/*.wav)")
    labels = sorted(p.name for p in root.iterdir()
                    if p.is_dir() and p.name not in exclude and not p.name.startswith("."))
    entries: list[tuple[str, Path, str]] = []  # (label, path, speaker)
    result = PrepareResult()
    bad: list[str] = []
    unusable: list[str] = []
    for label in labels:
        for path in list_wavs(root / label, tuple(extensions)):
            try:
                wav_info(path)
            except (WavError, OSError) as e:
                bad.append(str(e))
                continue
            try:
                info = check_wav(path)  # 0 samples, NaN/Inf in a float file
            except (WavError, OSError) as e:
                unusable.append(str(e))
                continue
            entries.append((label, path, parse_speaker(path.name, speaker_rx)))
            result.rows.append({
                "filename": str(path.absolute()),
                "keyword": label,
                "transcript": normalize_text(label) if transcripts and not label.startswith("_") else "",
                "speaker": entries[-1][2],
                "duration": info.duration,
            })
    if not entries:
        raise ValueError(f"folder preparer: no {'/'.join(extensions)} files found in label folders under {root} "
                         f"(found folders: {labels or 'none'}; expected ROOT/<label>/*.wav)")
    keys = [path.relative_to(root).as_posix() for _, path, _ in entries]
    splits = assign_splits(zip(keys, (spk for _, _, spk in entries)), val_fraction, test_fraction, seed)
    for row, key in zip(result.rows, keys):
        row["split"] = splits[key]
    if bad:
        result.skipped["unreadable audio files"] = len(bad)
        result.notes.extend(f"  unreadable: {b}" for b in bad[:10])
    if unusable:
        result.skipped["empty or corrupt audio files (0 samples, NaN/Inf)"] = len(unusable)
        result.notes.extend(f"  left out: {b}" for b in unusable[:10])
    n_spk = len({spk for _, _, spk in entries if spk})
    if speaker_regex is not None:
        no_spk = sum(1 for _, _, spk in entries if not spk)
        result.notes.append(f"{n_spk} speakers split speaker-disjointly"
                            + (f"; {no_spk} files without a speaker split per file" if no_spk else ""))
    result.manifests = write_splits(out, result.rows)
    return result
