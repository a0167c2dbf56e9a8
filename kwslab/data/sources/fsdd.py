"""Preparer for the Free Spoken Digit Dataset (FSDD).

Layout: ``recordings/{digit}_{speaker}_{index}.wav`` (8 kHz mono). Keywords and transcripts are the
English words (``"zero"`` ... ``"nine"``) so FSDD, Speech Commands and TTS data share labels.

Splits:

* ``"official"``: as FSDD defines it, index 0-4 of every digit and speaker is the test set. We carve
  validation out of the rest as index 5-9, train is index 10 and up (with 50 takes per digit and speaker:
  10 % test, 10 % val, 80 % train). Every speaker is in every split, by FSDD's design.
* ``"speaker"`` (default, no speaker leakage): whole speakers go to test / val / train, chosen with
  ``test_speakers`` / ``val_speakers`` or deterministically from ``seed``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from kwslab.audio import WavError, check_wav
from kwslab.data.manifest import SPLITS
from kwslab.data.sources.common import PrepareResult, write_splits
from kwslab.data.sources.download import download as download_file
from kwslab.data.sources.download import extract_archive
from kwslab.data.sources.split import split_groups

__all__ = [
    "DIGIT_WORDS",
    "WORD_TO_DIGIT",
    "FSDD_URL",
    "parse_fsdd_name",
    "find_recordings",
    "download_fsdd",
    "prepare_fsdd",
]

DIGIT_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORD_TO_DIGIT: dict[str, int] = {w: i for i, w in enumerate(DIGIT_WORDS)}
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.tar.gz"
OFFICIAL_TEST_INDICES = range(0, 5)  # FSDD's own definition
OFFICIAL_VAL_INDICES = range(5, 10)  # ours: carved from FSDD's training part

_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$", re.IGNORECASE)


def parse_fsdd_name(name: str) -> tuple[int, str, int] | None:
    """``"3_george_17.wav"`` -> ``(3, "george", 17)``; None for a name outside the FSDD pattern."""
    m = _NAME.match(name)
    if not m:
        return None
    return int(m.group(1)), m.group(2), int(m.group(3))


def find_recordings(root: str | os.PathLike[str]) -> Path:
    """The folder holding the FSDD WAVs: ``root`` itself, ``root/recordings`` or ``root/*/recordings``.

    Raises:
        FileNotFoundError: with a hint to use ``--download`` when none is found.
    """
    root = Path(root)
    candidates = [root, root / "recordings", *sorted(root.glob("*/recordings"))]
    for c in candidates:
        if c.is_dir() and any(parse_fsdd_name(p.name) for p in c.glob("*.wav")):
            return c
    raise FileNotFoundError(f"no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) found in {root}, "
                            f"{root / 'recordings'} or {root}/*/recordings; pass --download to fetch them")


def download_fsdd(root: str | os.PathLike[str], *, url: str = FSDD_URL, sha256: str | None = None) -> Path:
    """Fetch the FSDD repository archive into ``root``, unpack it once, and return the recordings folder.

    The archive is kept as ``root/<archive name>``; a marker file makes later calls skip the unpacking.
    """
    root = Path(root)
    name = url.rstrip("/").rsplit("/", 1)[-1] or "fsdd.tar.gz"
    if not name.endswith((".zip", ".tar.gz", ".tgz", ".tar")):
        name += ".tar.gz"
    archive = download_file(url, root / f"fsdd-{name}", sha256=sha256, progress=True)
    marker = root / f".extracted-{archive.name}"
    if not marker.exists():
        extract_archive(archive, root)
        marker.write_text(url + "\n")
    return find_recordings(root)


def _speaker_splits(
    speakers: dict[str, int],
    test_speakers: Sequence[str] | None,
    val_speakers: Sequence[str] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, str]:
    chosen = list(test_speakers or []) + list(val_speakers or [])
    unknown = sorted(set(chosen) - set(speakers))
    if unknown:
        raise ValueError(f"fsdd: unknown speaker(s) {unknown}; speakers present: {sorted(speakers)}")
    both = sorted(set(test_speakers or []) & set(val_speakers or []))
    if both:
        raise ValueError(f"fsdd: speaker(s) {both} given for both test and val; a speaker belongs to one split")
    if not chosen:
        return split_groups(speakers, val_fraction, test_fraction, seed)
    out = {s: "test" for s in test_speakers or []}
    out.update({s: "val" for s in val_speakers or []})
    rest = {s: n for s, n in speakers.items() if s not in out}
    if test_speakers and val_speakers is None:
        out.update(split_groups(rest, val_fraction, 0.0, seed))
    elif val_speakers and test_speakers is None:
        out.update(split_groups(rest, 0.0, test_fraction, seed))
    else:
        out.update({s: "train" for s in rest})
    return out


def prepare_fsdd(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "speaker",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    test_speakers: Sequence[str] | None = None,
    val_speakers: Sequence[str] | None = None,
    seed: int = 0,
    download: bool = False,
    url: str = FSDD_URL,
    sha256: str | None = None,
) -> PrepareResult:
    """Write FSDD train/val/test manifests (keyword and transcript = digit word, speaker, duration).

    Args:
        root: FSDD folder (the ``recordings`` folder, the repository checkout, or a download target).
        out: Output folder for ``train.csv``/``val.csv``/``test.csv``.
        split: ``"speaker"`` (default; no speaker in two splits) or ``"official"`` (index 0-4 test,
            5-9 val, the rest train).
        val_fraction: Speaker split only: share of files for val when speakers are not given (default 0.1;
            at least one speaker when there are three or more).
        test_fraction: Speaker split only: share for test (default 0.1).
        test_speakers: Speaker split only: these speakers form the test set.
        val_speakers: Speaker split only: these form the val set.
        seed: Picks the speakers when they are not given.
        download: Fetch the archive from ``url`` into ``root`` first.
        url: Archive URL (default: the GitHub master branch, tar.gz).
        sha256: Expected archive checksum (the master branch moves, so none is built in).

    Returns:
        The rows, manifest paths, and counts of files skipped (unparseable names, unreadable WAVs).
    """
    if split not in ("speaker", "official"):
        raise ValueError(f"fsdd: split must be 'speaker' or 'official', got {split!r}")
    if split == "official" and (test_speakers or val_speakers):
        raise ValueError("fsdd: --test-speakers/--val-speakers only apply to --split speaker")
    recordings = download_fsdd(root, url=url, sha256=sha256) if download else find_recordings(root)
    result = PrepareResult()
    parsed: list[tuple[Path, int, str, int, float]] = []
    bad_names = bad_audio = 0
    for path in sorted(recordings.glob("*.wav")):
        meta = parse_fsdd_name(path.name)
        if meta is None:
            bad_names += 1
            continue
        try:
            duration = check_wav(path).duration  # 0 samples or NaN: left out
        except (WavError, OSError) as e:
            bad_audio += 1
            result.notes.append(f"  unreadable: {path}: {e}")
            continue
        parsed.append((path, *meta, duration))
    if not parsed:
        raise ValueError(f"fsdd: no readable FSDD recordings in {recordings}")
    speakers: dict[str, int] = {}
    for _, _, spk, _, _ in parsed:
        speakers[spk] = speakers.get(spk, 0) + 1
    if split == "speaker":
        by_speaker = _speaker_splits(speakers, test_speakers, val_speakers, val_fraction, test_fraction, seed)
        names = {s: ", ".join(sorted(k for k, v in by_speaker.items() if v == s)) or "-" for s in SPLITS}
        result.notes.append("speakers: " + "; ".join(f"{s}: {n}" for s, n in names.items()))
    for path, digit, spk, index, duration in parsed:
        if split == "official":
            part = "test" if index in OFFICIAL_TEST_INDICES else "val" if index in OFFICIAL_VAL_INDICES else "train"
        else:
            part = by_speaker[spk]
        word = DIGIT_WORDS[digit]
        result.rows.append({"filename": str(path.absolute()), "keyword": word, "transcript": word,
                            "speaker": spk, "duration": duration, "split": part})
    if bad_names:
        result.skipped["files not named {digit}_{speaker}_{index}.wav"] = bad_names
    if bad_audio:
        result.skipped["unreadable audio files"] = bad_audio
    result.manifests = write_splits(out, result.rows)
    return result
