"""The embedded defaults' datamodules: keyword data and connected digits made offline with espeak-ng when missing.

See :mod:`kwslab.tts.corpus` for what is built and how it is split. (Configs written before these classes moved
here name them ``kwslab.data.synthetic.*``, which re-exports them.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kwslab.data.datamodules import CTCDataModule, KeywordDataModule
from kwslab.data.manifest import SILENCE_LABEL, UNKNOWN_LABEL
from kwslab.dsp import FeatureConfig
from kwslab.tts.corpus import DEFAULT_UNKNOWN_WORDS
from kwslab.tts.neighbours import near_words as neighbours


def run_corpus_build(root: Path, *args: str) -> None:
    """Run ``python -m kwslab.tts.corpus`` in a fresh process (light imports, fast espeak workers) that dies with
    this one: a killed ``fit`` leaves no corpus build running (a re-run resumes it)."""
    cmd = [sys.executable, "-m", "kwslab.tts.corpus", "--root", str(root), *args]
    if subprocess.run([*cmd, "--parent-pid", str(os.getpid())]).returncode != 0:
        raise RuntimeError(f"building the synthetic corpus in {root} failed (see the error above); re-run to "
                           f"resume, or run: {' '.join(cmd)}")


class SyntheticKeywordDataModule(KeywordDataModule):
    """:class:`KeywordDataModule` over the espeak-made corpus in ``root``, built by ``prepare_data`` if missing.

    Args:
        root: corpus folder (train/val/test.csv inside). Default ``data/synthetic_keywords``; None: a folder of its
            own per keyword list, ``data/tts_keywords/<kw1>-<kw2>...``. A folder holding a corpus of other keywords
            is refused (one message naming both lists), never mixed into.
        keywords: the keywords to spot; the classes are these plus ``_silence_`` and ``_unknown_``.
        unknown_words: words said for the ``_unknown_`` class (a keyword among them is dropped from it).
        near_words: per keyword, this many spelling neighbours (``kwslab.tts.neighbours``: "marvin" -> "harvin",
            "mervin", "marv") added to the ``_unknown_`` words: hard negatives. Default 0.
        voices: espeak voices (``default`` = 8 English accents x 8 variants).
        per_voice: clips per keyword per voice.
        tts_seed: seed of the voice parameter draws and the split.
        Others: as :class:`KeywordDataModule`.
    """

    def __init__(self, root: str | None = "data/synthetic_keywords", keywords: list[str] = ["yes", "no"],  # noqa: B006
                 unknown_words: list[str] | None = None, voices: list[str] = ["default"],  # noqa: B006
                 per_voice: int = 4, tts_seed: int = 0, near_words: int = 0,
                 features: FeatureConfig | dict | None = None,
                 batch_size: int = 64, num_workers: int = 0, pin_memory: bool | None = None,
                 augment: dict | None = None, spec_augment: dict | None = None, cache_dir: str | None = None,
                 seed: int = 0) -> None:
        if len(set(keywords)) != len(keywords) or {SILENCE_LABEL, UNKNOWN_LABEL} & set(keywords):
            raise ValueError(f"keywords must be distinct words, not {SILENCE_LABEL}/{UNKNOWN_LABEL}: {keywords!r}")
        self.root = Path(root) if root is not None else Path("data/tts_keywords") / "-".join(keywords)
        unknown = [w for w in (unknown_words or DEFAULT_UNKNOWN_WORDS) if w not in keywords]
        unknown += [w for w in neighbours(keywords, near_words, tts_seed) if w not in unknown]
        self.build_args = dict(keywords=list(keywords), voices=list(voices), per_voice=per_voice, seed=tts_seed,
                               unknown_words=unknown)
        super().__init__(str(self.root / "train.csv"), str(self.root / "val.csv"), str(self.root / "test.csv"),
                         features=features, labels=sorted([*keywords, SILENCE_LABEL, UNKNOWN_LABEL]),
                         batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, augment=augment,
                         spec_augment=spec_augment, cache_dir=cache_dir, seed=seed)

    def prepare_data(self) -> None:
        """Build the corpus with espeak-ng when ``root/train.csv`` is missing."""
        self._check_corpus_keywords()
        if not (self.root / "test.csv").exists():
            print(f"Building the synthetic keyword corpus in {self.root} with espeak-ng (offline, one time)...")
            a = self.build_args
            run_corpus_build(self.root, "--keywords", *a["keywords"], "--unknown-words", *a["unknown_words"],
                             "--voices", *a["voices"], "--per-voice", str(a["per_voice"]), "--seed", str(a["seed"]),
                             "--sample-rate", str(self.feature_config.sample_rate))


    def _check_corpus_keywords(self) -> None:
        """A finished corpus of other keywords in ``root`` is an error, not a silent mix."""
        from kwslab.data.manifest import ManifestError, read_manifest

        if not (self.root / "train.csv").is_file():
            return
        try:
            have = {r.keyword for r in read_manifest(self.root / "train.csv", check_audio=False)}
        except ManifestError:
            return  # a broken manifest is reported, with its row, when the data is read
        have -= {SILENCE_LABEL, UNKNOWN_LABEL}
        want = set(self.build_args["keywords"])
        if have != want:
            raise ValueError(f"data.init_args.root {self.root} holds a corpus of the keywords {sorted(have)}, not "
                             f"{sorted(want)}; set data.init_args.root to another folder (or null: one folder per "
                             "keyword list), or delete that folder to rebuild it")


class SyntheticDigitsCTCDataModule(CTCDataModule):
    """:class:`CTCDataModule` over connected digit strings made with espeak-ng (built by ``prepare_data``).

    Args:
        root: corpus folder (train/val/test.csv inside). Default ``data/synthetic_digit_sequences``.
        voices: espeak voices (``default`` = 64). per_voice: clips of each digit word per voice.
        count: utterances to compose (2-5 digits each). tts_seed: seed of the build and composition.
        Others: as :class:`CTCDataModule`.
    """

    def __init__(self, root: str = "data/synthetic_digit_sequences", voices: list[str] = ["default"],  # noqa: B006
                 per_voice: int = 2, count: int = 3000, tts_seed: int = 0,
                 features: FeatureConfig | dict | None = None, batch_size: int = 32, num_workers: int = 0,
                 pin_memory: bool | None = None, augment: dict | None = None, spec_augment: dict | None = None,
                 num_buckets: int = 10, cache_dir: str | None = None, seed: int = 0) -> None:
        self.root = Path(root)
        self.build_args = ["--task", "digit-sequences", "--voices", *voices, "--per-voice", str(per_voice),
                           "--count", str(count), "--seed", str(tts_seed)]
        super().__init__(str(self.root / "train.csv"), str(self.root / "val.csv"), str(self.root / "test.csv"),
                         features=features, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory,
                         augment=augment, spec_augment=spec_augment, num_buckets=num_buckets, cache_dir=cache_dir,
                         seed=seed)

    def prepare_data(self) -> None:
        """Build the digit-string corpus with espeak-ng when ``root/test.csv`` is missing."""
        if not (self.root / "test.csv").exists():
            print(f"Building connected-digit CTC data in {self.root} with espeak-ng (offline, one time)...")
            run_corpus_build(self.root, *self.build_args, "--sample-rate", str(self.feature_config.sample_rate))
