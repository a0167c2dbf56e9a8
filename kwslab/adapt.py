"""``python -m kwslab.adapt --ckpt C --out A (--manifest M | FILE_OR_DIR ...)``: unsupervised adaptation of a trained
model to a new speaker, microphone or domain from unlabelled audio (no transcripts, no keywords).

Two methods (``--method``; ``auto``, the default, picks batchnorm for keyword models and self-train for CTC models):

**batchnorm** (AdaBN, Li et al. 2016). Every BatchNorm layer normalises with statistics (mean and variance per
channel) gathered on the training data. When the audio comes from a voice or channel the training data never had,
those statistics are off and the layers after them see shifted inputs. Adaptation re-estimates them on the new
audio: layer by layer in forward order, each layer's statistics are measured on its inputs as they are once the
layers before it have been adapted, exactly (sums over every frame, not a running average of batch statistics).
Weights are not touched, so a wrong label cannot be learnt. On FSDD 25 clips gave most of the gain; ``--strength``
below 1 blends the new statistics with the trained ones, which was better below about 20 clips.

**self-train** (CTC checkpoints, :func:`kwslab.adaptation.self_train`). The model transcribes the new audio with
beam search (+ LM), keeps the non-empty transcripts (optionally only those whose best hypothesis beats the runner-up
by ``--min-margin``), and is fine-tuned for a few epochs on them mixed with its own training data (replayed so it
does not forget), with the augmentation it was trained with. The weights change, so wrong pseudo-labels can be
learnt too; what it gains must be measured on clips it did not adapt on.

Measured on FSDD (docs/results.md, sections 6 and 7): a keyword model trained on three speakers (plus espeak
voices) and tested on the fourth went from 87.4% to 91.35% (mean of the four rotations) after BatchNorm adaptation
to half of the held-out speaker's unlabelled clips and testing on the other half; an espeak-only model on real
speech from 80.9% to 87.7%. BatchNorm adaptation made the CTC recogniser worse (12.1% -> 14.1% WER; 8.8% -> 11.5%
for a model trained with onset cuts); self-training improves it (``scripts/ctc_self_train_fsdd.py``, cross-fold by
source recording; figures in docs/results.md, section 7).

``python -m kwslab.evaluate --adapt-folds N`` (:func:`kwslab.adaptation.evaluate_adapted`) measures what BatchNorm
adaptation gains without ever scoring a clip with a model adapted on it.

The adapted checkpoint works everywhere a checkpoint does (``evaluate``, ``predict``, streaming, ONNX export); it
records what it was adapted on under ``kwslab_adaptation``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kwslab.adaptation import AdaptationError, adapt_checkpoint, audio_files, self_train
from kwslab.audio import WavError
from kwslab.checkpoint import CheckpointError, OutputExistsError, check_output
from kwslab.data.manifest import ManifestError
from kwslab.decoding.lm import ArpaError
from kwslab.decoding.settings import (DecoderSettingsError, add_decoder_arguments, positive_float, positive_int,
                                     settings_from_args)
from kwslab.inference.loaded import UnusableAudioError, load_model
from kwslab.models.base import add_allow_class_argument, allowed_classes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.adapt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint written by python -m kwslab.fit")
    parser.add_argument("--out", required=True,
                        help="where to write the adapted checkpoint (a new file, with the umask's mode; an existing "
                             "file is refused unless --force)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists (keeping its mode)")
    add_allow_class_argument(parser)
    parser.add_argument("--manifest", help="CSV manifest of the unlabelled audio (only its filename column is used)")
    parser.add_argument("paths", nargs="*", help="WAV files or folders (searched recursively for .wav)")
    parser.add_argument("--method", choices=["auto", "batchnorm", "self-train"], default="auto",
                        help="auto (default): batchnorm for keyword models, self-train for CTC models")
    parser.add_argument("--strength", type=positive_float, default=1.0,
                        help="batchnorm: 1 (default) uses the new statistics; below 1 blends them with the trained "
                             "ones")
    st = parser.add_argument_group("self-training (CTC checkpoints)")
    st.add_argument("--replay", nargs="+", metavar="MANIFEST",
                    help="labelled manifests mixed into the fine-tuning (default: the checkpoint's training "
                         "manifests; 'none': pseudo-labels alone)")
    st.add_argument("--epochs", type=positive_int, default=3, help="fine-tuning epochs (default 3)")
    st.add_argument("--lr", type=positive_float, default=5e-4,
                    help="AdamW learning rate, cosine schedule (default 5e-4)")
    st.add_argument("--repeats", type=positive_int, default=4,
                    help="times each pseudo-labelled clip is listed (default 4)")
    st.add_argument("--min-margin", type=float, default=0.0,
                    help="keep a clip only when its best transcript beats the runner-up by this log score (default "
                         "0: every non-empty transcript; on FSDD keeping all was better than a margin of 2)")
    st.add_argument("--rounds", type=positive_int, default=1,
                    help="pseudo-label and fine-tune this many times (default 1)")
    st.add_argument("--seed", type=int, default=0)
    add_decoder_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    args = parser.parse_args(argv)
    if not args.manifest and not args.paths:
        parser.error("give the unlabelled audio: --manifest M and/or WAV files or folders")
    replay = None if args.replay is None else ([] if [r.lower() for r in args.replay] == ["none"] else args.replay)
    try:
        with allowed_classes(args.allow_class):
            if Path(args.out).resolve() == Path(args.ckpt).resolve():
                raise AdaptationError(f"{args.out}: --out is the source checkpoint; write the adapted model to a new "
                                      "file")
            check_output(args.out, args.force)
            files = audio_files(args.paths, args.manifest)
            method = args.method
            if method == "auto":
                method = "self-train" if load_model(args.ckpt).is_ctc else "batchnorm"
            if method == "self-train":
                result = self_train(args.ckpt, args.out, files, settings_from_args(args), replay, args.epochs,
                                    args.lr, args.repeats, args.min_margin, args.seed, args.rounds)
            else:
                result = adapt_checkpoint(args.ckpt, args.out, files, args.strength)
    except (AdaptationError, ArpaError, CheckpointError, DecoderSettingsError, ManifestError, OutputExistsError,
            UnusableAudioError, WavError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the folder of --out is read-only, the disk is full...
        where = exc.filename if exc.filename and Path(exc.filename).parent != Path(args.out).parent else args.out
        print(f"error: {where}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    if method == "batchnorm" and result["clips"] < 20 and result["strength"] == 1.0:
        print(f"note: {result['clips']} clips give noisy statistics; on FSDD, 5 clips at full strength were worse than "
              "no adaptation and --strength 0.5 was better (docs/results.md section 6)", file=sys.stderr)
    if method == "batchnorm" and result["model"] == "ctc":
        print("note: on FSDD connected digits this adaptation made the CTC recogniser worse (WER 12.1% -> 14.1%, "
              "and 8.8% -> 11.5% for a model trained with onset cuts; docs/results.md section 6); self-training "
              "(--method self-train) helps instead. Compare both checkpoints with python -m kwslab.evaluate "
              "before using it", file=sys.stderr)
    result.pop("labels", None)
    if args.json:
        print(json.dumps(result, indent=2))
    elif method == "self-train":
        print(f"self-trained {args.ckpt} on {result['kept']} of {result['clips']} clips (pseudo-labels with a margin "
              f">= {result['min_margin']}; {result['epochs']} epochs with {len(result['replay'])} replay manifest(s)); "
              f"wrote {result['out']}\nevaluate it: python -m kwslab.evaluate --ckpt {result['out']} "
              "--manifest LABELLED.csv")
    else:
        print(f"adapted {result['batchnorm_layers']} BatchNorm layers of {args.ckpt} to {result['clips']} clips "
              f"(strength {result['strength']}); wrote {result['out']}\n"
              f"evaluate it: python -m kwslab.evaluate --ckpt {result['out']} --manifest LABELLED.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
