"""``python -m kwslab.prepare SOURCE ...``: write ``train.csv``, ``val.csv`` and ``test.csv`` into ``--out``.

Sources:
  folder           a folder per label (ROOT/yes/*.wav, ROOT/no/*.wav, ROOT/_silence_/*.wav)
  fsdd             Free Spoken Digit Dataset (optionally downloaded from GitHub)
  speech-commands  Google Speech Commands v1/v2, 12- or 35-class task (optionally downloaded)
  sequences        connected-word utterances composed from an isolated-word manifest (for CTC)

Every preparer prints a table of counts per split and label. Splits are speaker-disjoint whenever
speakers are known, unless a source's official split says otherwise (``fsdd --split official``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from kwslab.data.manifest import ManifestError
from kwslab.data.sources.common import PrepareResult
from kwslab.data.sources.download import DownloadError

__all__ = ["build_parser", "main"]


def _csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _range(value: str) -> tuple[float, float]:
    """``"50,300"`` or ``"50:300"`` -> (50.0, 300.0); ``"10"`` -> (10.0, 10.0)."""
    parts = [p for p in value.replace(":", ",").split(",") if p.strip()]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a range like 50,300, got {value!r}") from None
    if len(nums) == 1:
        return nums[0], nums[0]
    if len(nums) != 2 or nums[1] < nums[0]:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX with MIN <= MAX, got {value!r}")
    return nums[0], nums[1]


def _speaker_regex(value: str) -> str:
    """Check a ``--speaker-regex`` value here, so a bad pattern is one usage line, not a traceback."""
    from kwslab.data.sources.folder import compile_speaker_regex

    try:
        compile_speaker_regex(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace(f"--speaker-regex {value!r} is", f"{value!r} is")) from None
    return value


def _add_common(p: argparse.ArgumentParser, fractions: bool = True) -> None:
    p.add_argument("--out", required=True, help="output folder for train.csv, val.csv, test.csv")
    p.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    if fractions:
        p.add_argument("--val-fraction", type=float, default=0.1, help="share for validation (default 0.1)")
        p.add_argument("--test-fraction", type=float, default=0.1, help="share for testing (default 0.1)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-command per source."""
    parser = argparse.ArgumentParser(prog="python -m kwslab.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")

    p = sub.add_parser("folder", help="a folder per label")
    p.add_argument("--root", required=True, help="folder with one sub-folder per label")
    p.add_argument("--speaker-regex", type=_speaker_regex, default=None,
                   help="regex on file names giving the speaker (group 'speaker' or group 1); "
                        "splits become speaker-disjoint, e.g. '^(?P<speaker>[0-9a-f]+)_nohash_'")
    p.add_argument("--exclude", type=_csv_list, default=["_background_noise_"],
                   help="comma-separated sub-folders that are not labels (default _background_noise_)")
    _add_common(p)

    p = sub.add_parser("fsdd", help="Free Spoken Digit Dataset")
    p.add_argument("--root", required=True, help="FSDD folder (recordings/, its parent, or a download target)")
    p.add_argument("--split", choices=("speaker", "official"), default="speaker",
                   help="speaker: no speaker in two splits (default); official: index 0-4 test, 5-9 val, rest train")
    p.add_argument("--test-speakers", type=_csv_list, default=None, help="comma-separated test speakers")
    p.add_argument("--val-speakers", type=_csv_list, default=None, help="comma-separated val speakers")
    p.add_argument("--download", action="store_true", help="fetch the dataset archive from GitHub first")
    p.add_argument("--url", default=None, help="archive URL (mirror); default: GitHub master tar.gz")
    p.add_argument("--sha256", default=None, help="expected archive SHA-256")
    _add_common(p)

    p = sub.add_parser("speech-commands", help="Google Speech Commands v1/v2")
    p.add_argument("--root", required=True, help="corpus folder (ROOT/<word>/*.wav, list files)")
    p.add_argument("--task", type=int, choices=(12, 35), default=12, help="12 or 35 classes (default 12)")
    p.add_argument("--unknown-fraction", type=float, default=0.1,
                   help="task 12: _unknown_ clips per split as a share of the command-word clips (default 0.1)")
    p.add_argument("--silence-fraction", type=float, default=0.1,
                   help="task 12: _silence_ clips per split as a share of the command-word clips (default 0.1)")
    p.add_argument("--download", action="store_true", help="fetch and unpack the official archive first")
    p.add_argument("--version", type=int, choices=(1, 2), default=2, help="corpus version to download (default 2)")
    p.add_argument("--exclude-words", type=_csv_list, default=[],
                   help="comma-separated words left out of every split (decided after the speaker split, so the "
                        "other clips keep their splits)")
    p.add_argument("--url", default=None, help="archive URL override (mirror)")
    p.add_argument("--sha256", default=None, help="archive SHA-256 override (default: the published one)")
    _add_common(p)

    p = sub.add_parser("sequences", help="compose connected-word utterances from an isolated-word manifest")
    p.add_argument("--manifest", required=True, action="append",
                   help="input manifest CSV or folder with train/val/test.csv (repeatable)")
    p.add_argument("--count", type=int, required=True, help="number of utterances (shared among splits)")
    p.add_argument("--min-words", type=int, default=2, help="fewest words per utterance (default 2)")
    p.add_argument("--max-words", type=int, default=6, help="most words per utterance (default 6)")
    p.add_argument("--gap-ms", type=_range, default=(50.0, 300.0), help="gap range in ms (default 50,300)")
    p.add_argument("--noise-snr", type=_range, default=None, help="add noise at this SNR in dB, or MIN,MAX")
    p.add_argument("--noise-dir", default=None, help="folder of noise WAVs (default: synthetic coloured noise)")
    p.add_argument("--sample-rate", type=int, default=None, help="output rate (default: the input's)")
    p.add_argument("--no-trim", dest="trim", action="store_false", help="keep each clip's leading/trailing silence")
    p.add_argument("--trim-floor-db", type=float, default=None,
                   help="also trim what is less than this many dB above each clip's noise floor (noisy recordings, "
                        "e.g. 10 for Speech Commands; default: off)")
    p.add_argument("--words", type=_csv_list, default=None,
                   help="comma-separated words to compose from (default: every word of the input)")
    p.add_argument("--holdout-words", type=_csv_list, default=[],
                   help="comma-separated words kept out of the training utterances (still in val/test): a word the "
                        "model can spell but never heard")
    p.add_argument("--distinct", action="store_true",
                   help="use every recording about equally often and never twice in one utterance (speakers drawn "
                        "in proportion to their clips)")
    p.add_argument("--lm-order", type=int, default=0,
                   help="also write OUT/lm.arpa, a word n-gram LM of this order from the training transcripts "
                        "(default 0: none)")
    _add_common(p)
    return parser


def run(args: argparse.Namespace) -> PrepareResult:
    """Dispatch parsed arguments to the preparer function and return its result."""
    from kwslab.data import sources as src

    if args.source == "folder":
        return src.prepare_folder(args.root, args.out, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                                  seed=args.seed, speaker_regex=args.speaker_regex, exclude=tuple(args.exclude))
    if args.source == "fsdd":
        from kwslab.data.sources.fsdd import FSDD_URL

        return src.prepare_fsdd(args.root, args.out, split=args.split, val_fraction=args.val_fraction,
                                test_fraction=args.test_fraction, test_speakers=args.test_speakers,
                                val_speakers=args.val_speakers, seed=args.seed, download=args.download,
                                url=args.url or FSDD_URL, sha256=args.sha256)
    if args.source == "speech-commands":
        return src.prepare_speech_commands(
            args.root, args.out, task=args.task, unknown_fraction=args.unknown_fraction,
            silence_fraction=args.silence_fraction, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
            seed=args.seed, download=args.download, version=args.version, url=args.url, sha256=args.sha256,
            exclude_words=args.exclude_words)
    if args.lm_order < 0:
        raise ValueError(f"--lm-order must be >= 0, got {args.lm_order}")
    result = src.compose_sequences(
        args.manifest, args.out, count=args.count, min_words=args.min_words, max_words=args.max_words,
        gap_ms=args.gap_ms, noise_snr=args.noise_snr, noise_dir=args.noise_dir, sample_rate=args.sample_rate,
        trim=args.trim, trim_floor_db=args.trim_floor_db, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, seed=args.seed, words=args.words, holdout_words=args.holdout_words,
        distinct=args.distinct)
    if args.lm_order:
        from kwslab.decoding.lm import NGramLM

        text = [str(r["transcript"]) for r in result.rows if r["split"] == "train"]
        if not text:
            raise ValueError("--lm-order: no training utterances to build the LM from")
        lm_path = Path(args.out) / "lm.arpa"
        NGramLM.train(text, order=args.lm_order).save_arpa(lm_path)
        result.notes.append(f"word {args.lm_order}-gram LM of {len(text)} training transcripts: {lm_path}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prepare, print the summary table; errors print one message and return 2."""
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except (ManifestError, DownloadError, OSError, ValueError) as e:
        print(f"kwslab.prepare {args.source}: error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
