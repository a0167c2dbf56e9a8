"""Preparer for Google Speech Commands v1/v2.

Layout: ``ROOT/<word>/<speakerhash>_nohash_<n>.wav``, ``validation_list.txt``, ``testing_list.txt`` and
``_background_noise_/*.wav``. Splits come from the two lists (which are speaker-disjoint by
construction); files in neither list are train. List entries naming absent files are counted and
skipped, so a partial copy of the corpus works. Without the lists, speakers are split with
:func:`~kwslab.data.sources.split.split_groups`.

Tasks:

* ``35``: every word folder is a class (30 words in v1, 35 in v2).
* ``12``: the ten :data:`COMMAND_WORDS`, ``_unknown_`` (clips of the other words sampled per split, seeded;
  ``unknown_fraction`` times the split's command-word count, as in TensorFlow's recipe) and ``_silence_``
  (``silence_fraction`` times that count of 1-s clips cut from ``_background_noise_`` at random gains, or
  synthesised white/pink/brown noise at random levels when that folder is absent). Silence clips are
  written as WAVs under ``OUT/_silence_``; the noise files are cut into disjoint train/val/test regions so
  no audio is shared between splits.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from kwslab.audio import WavError, check_wav, load_audio, write_wav
from kwslab.data.manifest import SILENCE_LABEL, SPLITS, UNKNOWN_LABEL
from kwslab.data.sources.common import PrepareResult, write_splits
from kwslab.data.sources.download import download as download_file
from kwslab.data.sources.download import extract_archive, remove_stale_temp_files
from kwslab.data.sources.split import split_groups
from kwslab.dsp.waveform import NOISE_COLORS, colored_noise

__all__ = ["COMMAND_WORDS", "SC_URLS", "SC_SHA256", "download_speech_commands", "prepare_speech_commands"]

COMMAND_WORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SC_URLS = {
    1: "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
    2: "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
}
# Published SHA-256 of the official archives (the same values torchaudio and TFDS check against).
SC_SHA256 = {
    1: "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
    2: "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
}
NOISE_FOLDER = "_background_noise_"
SAMPLE_RATE = 16000
_NAME = re.compile(r"^(?P<speaker>[0-9A-Za-z]+)_nohash_(?P<n>\d+)\.wav$")
# Share of each background-noise file reserved for each split (contiguous regions: train, val, test).
_NOISE_REGIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


def download_speech_commands(
    root: str | os.PathLike[str], *, version: int = 2, url: str | None = None, sha256: str | None = None
) -> Path:
    """Download (resumably) and unpack the official archive into ``root``; returns ``root``.

    The checksum is ``sha256`` when given, else the published one for ``version``. Unpacking happens
    once (a marker file records it) and refuses unsafe archive members.
    """
    if version not in SC_URLS:
        raise ValueError(f"speech-commands: version must be 1 or 2, got {version}")
    root = Path(root)
    url = url or SC_URLS[version]
    archive = download_file(url, root / f"speech_commands_v0.0{version}.tar.gz",
                            sha256=sha256 or SC_SHA256[version], progress=True)
    marker = root / f".extracted-{archive.name}"
    if not marker.exists():
        extract_archive(archive, root)
        marker.write_text(url + "\n")
    return root


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [ln.strip().replace("\\", "/") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _silence_clips(noise_files: list[Path], split: str, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` 1-s clips from the split's region of the noise recordings, or synthetic noise."""
    lo_f, hi_f = _NOISE_REGIONS[split]
    sources: list[np.ndarray] = []
    for p in noise_files:
        x = load_audio(p, SAMPLE_RATE)
        region = x[int(lo_f * len(x)) : int(hi_f * len(x))]
        if len(region) >= SAMPLE_RATE:
            sources.append(region)
    clips = []
    for _ in range(count):
        if sources:
            src = sources[int(rng.integers(len(sources)))]
            start = int(rng.integers(len(src) - SAMPLE_RATE + 1))
            gain = float(np.exp(rng.uniform(np.log(0.1), 0.0)))  # log-uniform in [0.1, 1]
            clip = src[start : start + SAMPLE_RATE] * gain
        else:
            color = sorted(NOISE_COLORS)[int(rng.integers(len(NOISE_COLORS)))]
            level_db = float(rng.uniform(-60.0, -20.0))  # RMS in dB full scale
            clip = colored_noise(SAMPLE_RATE, color, rng) * 10.0 ** (level_db / 20.0)
        clips.append(np.clip(clip, -1.0, 1.0).astype(np.float32))
    return clips


def prepare_speech_commands(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    task: int = 12,
    unknown_fraction: float = 0.1,
    silence_fraction: float = 0.1,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    download: bool = False,
    version: int = 2,
    url: str | None = None,
    sha256: str | None = None,
    exclude_words: Sequence[str] = (),
) -> PrepareResult:
    """Write Speech Commands train/val/test manifests for the 12- or 35-class task.

    Args:
        root: Corpus folder (``ROOT/<word>/*.wav`` plus the list files); the download target.
        out: Output folder for the CSVs (and ``_silence_`` WAVs for task 12).
        task: 12 (ten commands + ``_unknown_`` + ``_silence_``) or 35 (every word).
        unknown_fraction: Task 12: ``_unknown_`` clips per split = ceil(fraction * command clips in split).
        silence_fraction: Task 12: ``_silence_`` clips per split, same rule.
        val_fraction: Only without list files: share of speakers' clips for val.
        test_fraction: Only without list files: share for test.
        seed: Seeds unknown sampling, silence clips and the list-less speaker split.
        download: Fetch and unpack the official archive first.
        version: 1 or 2 (archive to download).
        url: Archive URL override (mirrors, tests).
        sha256: Archive checksum override (default: the published one for ``version``).
        exclude_words: Words whose clips are left out of every split (e.g. the words a pretrained model must never
            hear). They are dropped after the split is decided, so the other clips land in the same splits as
            without them.

    Returns:
        The rows, manifest paths, and skipped counts (absent list entries, unreadable or misnamed files).
    """
    if task not in (12, 35):
        raise ValueError(f"speech-commands: task must be 12 or 35, got {task}")
    for name, f in (("unknown_fraction", unknown_fraction), ("silence_fraction", silence_fraction)):
        if not 0.0 <= f <= 10.0:
            raise ValueError(f"speech-commands: {name} must be in [0, 10], got {f}")
    root = Path(root)
    # A killed earlier run (extraction, _silence_ clips, manifests) leaves hidden .tmp files: remove them first.
    leftovers = remove_stale_temp_files(root) + remove_stale_temp_files(out)
    if download:
        download_speech_commands(root, version=version, url=url, sha256=sha256)
    if not root.is_dir():
        raise FileNotFoundError(f"speech-commands: {root} is not a folder; pass --download to fetch the corpus")
    result = PrepareResult()
    words = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and p.name != NOISE_FOLDER and not p.name.startswith((".", "_")))
    files: dict[str, tuple[str, str, float]] = {}  # "word/name.wav" -> (word, speaker, duration)
    misnamed = unreadable = 0
    for word in words:
        for p in sorted((root / word).glob("*.wav")):
            m = _NAME.match(p.name)
            if not m:
                misnamed += 1
                continue
            try:
                duration = check_wav(p).duration  # 0 samples or NaN: left out
            except (WavError, OSError):
                unreadable += 1
                continue
            files[f"{word}/{p.name}"] = (word, m.group("speaker"), duration)
    if not files:
        raise ValueError(f"speech-commands: no <word>/<speaker>_nohash_<n>.wav files under {root}; "
                         "pass --download to fetch the corpus")
    # Split assignment: the official lists, else a speaker-disjoint split.
    split_of = {key: "train" for key in files}
    lists = {"val": root / "validation_list.txt", "test": root / "testing_list.txt"}
    if any(p.is_file() for p in lists.values()):
        absent = 0
        for split, p in lists.items():
            if not p.is_file():
                result.notes.append(f"{p.name} missing: {split} split is empty")
            for entry in _read_list(p):
                if entry in split_of:
                    split_of[entry] = split
                else:
                    absent += 1
        if absent:
            result.skipped["list entries naming files that are not present"] = absent
    else:
        sizes: dict[str, int] = {}
        for _, spk, _ in files.values():
            sizes[spk] = sizes.get(spk, 0) + 1
        by_spk = split_groups(sizes, val_fraction, test_fraction, seed)
        split_of = {key: by_spk[spk] for key, (_, spk, _) in files.items()}
        result.notes.append(f"no validation/testing lists: split {len(sizes)} speakers speaker-disjointly")
    if misnamed:
        result.skipped["files not named <speaker>_nohash_<n>.wav"] = misnamed
    if unreadable:
        result.skipped["unreadable audio files"] = unreadable

    def row(key: str, keyword: str) -> dict[str, object]:
        word, spk, duration = files[key]
        return {"filename": str((root / key).absolute()), "keyword": keyword, "transcript": word,
                "speaker": spk, "duration": duration, "split": split_of[key]}

    excluded = set(exclude_words)
    unknown_words = sorted(excluded - {w for w, _, _ in files.values()})
    if unknown_words:
        raise ValueError(f"speech-commands: exclude_words {', '.join(unknown_words)} are not words of {root}")
    if excluded:
        kept = {k: v for k, v in files.items() if v[0] not in excluded}
        result.skipped[f"clips of excluded words ({', '.join(sorted(excluded))})"] = len(files) - len(kept)
        files = kept
    if task == 35:
        result.rows = [row(k, files[k][0]) for k in files]
    else:
        noise_dir = root / NOISE_FOLDER
        noise_files = sorted(noise_dir.glob("*.wav")) if noise_dir.is_dir() else []
        if not noise_files:
            result.notes.append(f"no {NOISE_FOLDER} WAVs: _silence_ clips are synthesised white/pink/brown noise")
        silence_dir = Path(out) / SILENCE_LABEL
        kept: set[Path] = set()
        for si, split in enumerate(SPLITS):
            keys = [k for k in files if split_of[k] == split]
            known = [k for k in keys if files[k][0] in COMMAND_WORDS]
            others = [k for k in keys if files[k][0] not in COMMAND_WORDS]
            result.rows.extend(row(k, files[k][0]) for k in known)
            n_unknown = min(len(others), math.ceil(unknown_fraction * len(known)))
            rng_u = np.random.default_rng([seed, si, 1])
            picked = sorted(rng_u.choice(len(others), size=n_unknown, replace=False)) if n_unknown else []
            result.rows.extend(row(others[i], UNKNOWN_LABEL) for i in picked)
            n_silence = math.ceil(silence_fraction * len(known))
            clips = _silence_clips(noise_files, split, n_silence, np.random.default_rng([seed, si, 2]))
            for i, clip in enumerate(clips):
                path = silence_dir / f"{split}_{i:05d}.wav"
                write_wav(path, clip, SAMPLE_RATE)
                kept.add(path)
                result.rows.append({"filename": str(path.absolute()), "keyword": SILENCE_LABEL, "transcript": "",
                                    "duration": 1.0, "split": split})
        for stale in silence_dir.glob("*.wav") if silence_dir.is_dir() else []:
            if stale not in kept:
                stale.unlink()  # from an earlier run with larger counts
    if leftovers:
        result.notes.append(f"removed {len(leftovers)} temp file(s) left by an interrupted run (e.g. {leftovers[0]})")
    result.manifests = write_splits(out, result.rows)
    return result
