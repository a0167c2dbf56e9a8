"""The embedded default: a keyword dataset made offline with espeak-ng, so training needs no data and no network.

``build_keyword_corpus`` (also ``python -m kwslab.tts.corpus --root DIR``) writes, under ``root``:

- ``tts/``: each keyword said by every voice (``per_voice`` times, with seeded rate/pitch/range), and the
  ``unknown_words`` said by the same voices (the ``_unknown_`` class, subsampled to ``unknown_ratio`` (2) times
  one keyword's size);
- ``silence/``: 1-s clips of synthesised noise (white/pink/brown, random level; the ``_silence_`` class);
- ``train.csv``, ``val.csv``, ``test.csv``: split by voice, so no voice is in two splits.

``build_digit_sequences`` (``--task digit-sequences``) makes connected digit strings for CTC.

This module imports no torch: :class:`kwslab.tts.datamodules.SyntheticKeywordDataModule` runs it in a fresh
process, so espeak's worker processes start fast instead of re-importing the training program. That process is
started with ``--parent-pid`` and dies with the training process; a re-run after a kill resumes, and removes the
temp files the killed run left. Two builds into one ``root`` at once are refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import argparse
import json
import sys

import numpy as np

from kwslab.audio import write_wav
from kwslab.data.manifest import SILENCE_LABEL, UNKNOWN_LABEL, ManifestRow, read_manifest, write_manifest
from kwslab.dsp.waveform import colored_noise
from kwslab.tts.builder import build_dataset, exclusive_folder, remove_stale_temps
from kwslab.tts.espeak import resolve_voices
from kwslab.tts.lifetime import die_with_parent
from kwslab.tts.plan import BuildConfig

# Near misses ("nose", "noon", "yet", "yeah") on purpose; never homophones of a keyword ("know" is "no").
DEFAULT_UNKNOWN_WORDS = (
    "up", "down", "left", "right", "on", "off", "stop", "go", "cat", "dog", "bird", "bed", "house", "tree", "wow",
    "happy", "marvin", "sheila", "learn", "follow", "forward", "backward", "visual", "one", "two", "three", "four",
    "five", "six", "seven", "eight", "nine", "zero", "yellow", "nose", "noon", "yet", "yam", "note", "yeah",
)


def write_silence_clips(folder: Path, count: int, sample_rate: int, seed: int) -> list[dict[str, Any]]:
    """``count`` 1-s noise clips at -70..-25 dBFS RMS, some with mains hum; returns manifest rows."""
    rows = []
    for i in range(count):
        rng = np.random.default_rng([seed, 7, i])
        color = ("white", "pink", "brown")[i % 3]
        y = colored_noise(sample_rate, color, rng, keep_dc=True, dtype=np.float64) * 10 ** (rng.uniform(-70, -25) / 20)
        if rng.random() < 0.3:
            t = np.arange(sample_rate) / sample_rate
            y += 10 ** (rng.uniform(-60, -35) / 20) * np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t)
        path = folder / f"{color}_{i:04d}.wav"
        if not path.exists():
            write_wav(path, np.clip(y, -1, 1), sample_rate)
        rows.append({"filename": str(path), "keyword": SILENCE_LABEL, "speaker": f"noise-{i % 10}", "duration": 1.0})
    return rows


def split_by_speaker(speakers: Sequence[str], fractions: tuple[float, float], seed: int) -> dict[str, str]:
    """Assign each distinct speaker to ``train``/``val``/``test`` (``fractions`` = val, test), seeded."""
    names = sorted(set(speakers))
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = max(1, round(fractions[0] * len(names)))
    n_test = max(1, round(fractions[1] * len(names)))
    split = {}
    for rank, i in enumerate(order):
        split[names[i]] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return split


def build_keyword_corpus(root: str | Path, keywords: Sequence[str] = ("yes", "no"),
                         unknown_words: Sequence[str] = DEFAULT_UNKNOWN_WORDS, voices: Sequence[str] = ("default",),
                         per_voice: int = 4, unknown_per_voice: int = 2, unknown_ratio: float = 2.0,
                         silence_count: int | None = None,
                         sample_rate: int = 16000, seed: int = 0, fractions: tuple[float, float] = (0.1, 0.1),
                         progress: bool = True) -> dict[str, Path]:
    """Make the synthetic keyword corpus (see module docstring); returns the three manifest paths."""
    root = Path(root).resolve()  # absolute: manifest rows must not be read relative to the manifest twice
    voice_names = resolve_voices(list(voices))
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_folder(root, "--root"):
        _remove_corpus_temps(root, "silence")
        return _build_keyword_corpus(root, keywords, unknown_words, voice_names, per_voice, unknown_per_voice,
                                     unknown_ratio, silence_count, sample_rate, seed, fractions, progress)


def _remove_corpus_temps(root: Path, *subfolders: str) -> None:
    for tmp in root.glob(".*.tmp"):  # the split manifests'; the TTS builds clean their own folders
        tmp.unlink(missing_ok=True)
    remove_stale_temps(*(root / name for name in subfolders))


def _build_keyword_corpus(root: Path, keywords: Sequence[str], unknown_words: Sequence[str], voice_names: list[str],
                          per_voice: int, unknown_per_voice: int, unknown_ratio: float, silence_count: int | None,
                          sample_rate: int, seed: int, fractions: tuple[float, float],
                          progress: bool) -> dict[str, Path]:
    common = dict(sample_rate=sample_rate, seed=seed, progress=progress)
    # Keywords: every voice. Unknown words: in groups, each group said by a slice of the voices, so the class gets
    # every word and every voice while costing about as many clips as one keyword.
    groups = max(1, min(4, len(unknown_words), len(voice_names)))
    builds = [("keywords", list(keywords), voice_names, per_voice)]
    builds += [(f"unknown/{g}", list(unknown_words[g::groups]), voice_names[g::groups], unknown_per_voice)
               for g in range(groups)]
    kw_rows: list[ManifestRow] = []
    unknown: list[ManifestRow] = []
    for name, words, group_voices, n in builds:
        summary = build_dataset(BuildConfig(out=str(root / "tts" / name), keywords=words, voices=group_voices,
                                            per_voice=n, **common))
        if summary.failed:
            raise RuntimeError(f"espeak build of {root / 'tts' / name} failed for {len(summary.failed)} clips: "
                               f"{summary.failed[0][1]}")
        made = read_manifest(root / "tts" / name / "manifest.csv", need_keyword=True)
        (kw_rows if name == "keywords" else unknown).extend(made)
    per_class = len(kw_rows) // max(len(keywords), 1)
    # More _unknown_ than any keyword: in always-on use most speech is not a keyword, and the confusable words
    # ("know", "nose", "yet", ...) are what causes false alarms.
    pick = np.random.default_rng([seed, 3]).permutation(len(unknown))[:int(unknown_ratio * per_class)]
    rows: list[dict[str, Any]] = [_as_dict(r) for r in kw_rows]
    rows += [{**_as_dict(unknown[i]), "keyword": UNKNOWN_LABEL, "transcript": unknown[i].keyword}
             for i in sorted(pick)]
    split = split_by_speaker([r["speaker"] for r in rows], fractions, seed)
    silence = write_silence_clips(root / "silence", silence_count or per_class, sample_rate, seed)
    noise_split = split_by_speaker([r["speaker"] for r in silence], fractions, seed)
    paths = {}
    for name in ("train", "val", "test"):
        chosen = [{**r, "split": name} for r in rows if split[r["speaker"]] == name]
        chosen += [{**r, "split": name} for r in silence if noise_split[r["speaker"]] == name]
        paths[name] = root / f"{name}.csv"
        write_manifest(paths[name], chosen)
    return paths


def build_digit_sequences(root: str | Path, voices: Sequence[str] = ("default",), per_voice: int = 2,
                          count: int = 3000, min_words: int = 2, max_words: int = 5, sample_rate: int = 16000,
                          seed: int = 0, progress: bool = True) -> dict[str, Path]:
    """Connected digit strings for CTC: espeak says ``zero`` ... ``nine`` in every voice, then
    :func:`~kwslab.data.sources.sequences.compose_sequences` strings one voice's words together with random gaps
    and light noise. Voices are split between train/val/test (no voice in two splits). Returns the manifests."""
    from kwslab.data.sources.fsdd import DIGIT_WORDS
    from kwslab.data.sources.sequences import compose_sequences

    root = Path(root).resolve()
    words = root / "words"
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_folder(root, "--root"):
        _remove_corpus_temps(root, "audio")
        summary = build_dataset(BuildConfig(out=str(words), keywords=list(DIGIT_WORDS), voices=list(voices),
                                            per_voice=per_voice, sample_rate=sample_rate, seed=seed,
                                            progress=progress))
        if summary.failed:
            raise RuntimeError(f"espeak build of {words} failed for {len(summary.failed)} clips: "
                               f"{summary.failed[0][1]}")
        result = compose_sequences(words / "manifest.csv", root, count=count, min_words=min_words,
                                   max_words=max_words, noise_snr=(15.0, 40.0), sample_rate=sample_rate, seed=seed)
    return {k: Path(v) for k, v in result.manifests.items()}


def _as_dict(row: ManifestRow) -> dict[str, Any]:
    d = row.to_dict()
    d["filename"] = str(row.path)
    return d




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.tts.corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["keywords", "digit-sequences"], default="keywords",
                        help="keywords: the keyword classes + _unknown_ + _silence_; digit-sequences: CTC data")
    parser.add_argument("--root", required=True, help="output folder")
    parser.add_argument("--count", type=int, default=3000, help="digit-sequences: utterances to compose")
    parser.add_argument("--keywords", nargs="+", default=["yes", "no"])
    parser.add_argument("--unknown-words", nargs="+", default=list(DEFAULT_UNKNOWN_WORDS))
    parser.add_argument("--voices", nargs="+", default=["default"])
    parser.add_argument("--per-voice", type=int, default=4)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, metavar="PID",
                        help="exit when this process (the one that started the build, e.g. fit) exits")
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    try:
        if args.task == "keywords":
            paths = build_keyword_corpus(args.root, args.keywords, args.unknown_words, args.voices, args.per_voice,
                                         sample_rate=args.sample_rate, seed=args.seed)
        else:
            paths = build_digit_sequences(args.root, args.voices, args.per_voice, args.count,
                                          sample_rate=args.sample_rate, seed=args.seed)
    except (ValueError, RuntimeError) as exc:  # a BuildError (folder in use) is a RuntimeError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
