"""Connected-digit CTC data from FSDD, with one speaker held out for testing, and a word LM from the training text.

    python scripts/prepare_ctc_fsdd.py --root ../shared/data/fsdd/recordings --out data/fsdd_ctc \
        [--test-speaker george] [--count 4000] [--synthetic 1500 [--synthetic-words data/tts_digits/manifest.csv]]

Isolated clips: the test speaker's recordings -> test; the other speakers' index 0-4 recordings -> val, the rest ->
train (so validation never sees the test speaker either). Each split's clips are composed into 2-6 digit strings by
``kwslab.prepare sequences`` (one speaker per utterance, random gaps, light noise). A trigram word LM is trained on
the training transcripts (``lm.arpa``), for beam + LM decoding and ``scripts/tune_lm.py``.

``--synthetic N`` adds N connected-digit utterances spoken by espeak-ng voices (built offline with
``kwslab.tts.corpus --task digit-sequences``) to the training set only: three real speakers are too few
to generalise to a fourth, and synthetic voices add speaker variety. ``train_fsdd.csv`` keeps the real-only set.
``--synthetic-words M`` composes those utterances from an existing isolated-word corpus instead (more voices: the
728-voice espeak digits of ``scripts/fsdd_experiments.py`` are ``data/tts_digits/manifest.csv``).

``--real-words M --real N`` adds N strings of *real* speakers to training: composed from the digit clips of an
isolated-word manifest, each string from one speaker's own recordings, e.g. the 89 Speech Commands digit speakers
(``python -m kwslab.prepare speech-commands --root ../shared/data/speech_commands --task 35 --out data/sc35``, then
``--real-words data/sc35``). They stay at their own sample rate (16 kHz there, against FSDD's 8 kHz): the CTC
datamodule resamples every file to the config's one FeatureConfig as it reads it. None of them is a FSDD speaker, so
validation and test are unchanged.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from kwslab.data.manifest import read_manifest, write_manifest
from kwslab.data.sources import DIGIT_WORDS
from kwslab.data.sources.fsdd import prepare_fsdd
from kwslab.data.sources.sequences import compose_sequences
from kwslab.decoding.lm import NGramLM


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="FSDD recordings folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--test-speaker", default="george")
    parser.add_argument("--count", type=int, default=4000, help="utterances in all splits together")
    parser.add_argument("--synthetic", type=int, default=0, help="espeak utterances to add to training (0: none)")
    parser.add_argument("--synthetic-words", metavar="MANIFEST",
                        help="compose the --synthetic utterances from this isolated-word manifest (e.g. the espeak "
                             "digits of every voice, data/tts_digits/manifest.csv) instead of building them from "
                             "espeak's default voices")
    parser.add_argument("--real", type=int, default=0, help="strings of --real-words speakers to add to training")
    parser.add_argument("--real-words", metavar="MANIFEST",
                        help="isolated-word manifest (or folder of train/val/test.csv) with digit words of other real "
                             "speakers, e.g. data/sc35 from kwslab.prepare speech-commands --task 35")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if bool(args.real) != bool(args.real_words):
        parser.error("--real N and --real-words MANIFEST go together")
    out = Path(args.out)
    clips = out / "clips"
    prepare_fsdd(args.root, clips, split="official", seed=args.seed)
    rows = [r for split in ("train", "val", "test") for r in read_manifest(clips / f"{split}.csv")]
    index = lambda r: int(Path(r.filename).stem.split("_")[2])  # noqa: E731  {digit}_{speaker}_{index}
    if args.test_speaker not in {r.speaker for r in rows}:
        raise SystemExit(f"--test-speaker {args.test_speaker}: not among {sorted({r.speaker for r in rows})}")
    split = {}
    for r in rows:
        split[r] = "test" if r.speaker == args.test_speaker else "val" if index(r) < 5 else "train"
    isolated = out / "isolated.csv"
    write_manifest(isolated, [{**r.to_dict(), "filename": str(r.path), "split": split[r]} for r in rows])
    result = compose_sequences(isolated, out, count=args.count, min_words=2, max_words=6, noise_snr=(20.0, 40.0),
                               seed=args.seed)
    print(result.table())
    train_rows = read_manifest(result.manifests["train"], check_audio=False)
    if args.synthetic:
        if args.synthetic_words:  # an existing isolated-word corpus, e.g. the 728-voice espeak digits
            synth = compose_sequences(args.synthetic_words, out / "synthetic_words", count=args.synthetic,
                                      min_words=2, max_words=6, noise_snr=(15.0, 40.0), val_fraction=0.0,
                                      test_fraction=0.0, sample_rate=8000, seed=args.seed).manifests
        else:
            from kwslab.tts.corpus import build_digit_sequences

            synth = build_digit_sequences(out / "synthetic", count=max(args.synthetic * 5 // 4, 10), seed=args.seed)
        extra = read_manifest(synth["train"], check_audio=False)[: args.synthetic]
        write_manifest(out / "train_fsdd.csv", train_rows)
        write_manifest(out / "train.csv", [*train_rows, *extra])
        print(f"train.csv: {len(train_rows)} FSDD + {len(extra)} espeak utterances (train_fsdd.csv: FSDD only)")
    if args.real:
        # every split of the other corpus: none of its speakers is a FSDD speaker, so all of them can train
        real = compose_sequences(args.real_words, out / "real_words", count=args.real, min_words=2, max_words=6,
                                 noise_snr=(20.0, 40.0), words=DIGIT_WORDS, distinct=True, trim_floor_db=10.0,
                                 seed=args.seed)
        extra_real = [r for s in ("train", "val", "test") for r in read_manifest(real.manifests[s], check_audio=False)]
        base = read_manifest(out / "train.csv", check_audio=False)
        write_manifest(out / "train.csv", [*base, *extra_real])
        write_manifest(out / "train_fsdd.csv", train_rows)
        print(f"train.csv: + {len(extra_real)} strings of {len({r.speaker for r in extra_real})} real speakers from "
              f"{args.real_words} at {real.sample_rate} Hz")
    train_text = [r.transcript for r in train_rows]
    NGramLM.train(train_text, order=3).save_arpa(out / "lm.arpa")
    print(f"wrote {out / 'lm.arpa'} from {len(train_text)} training transcripts")


if __name__ == "__main__":
    main()
