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

**self-train** (CTC checkpoints, :func:`self_train`). The model transcribes the new audio with beam search (+ LM),
keeps the non-empty transcripts (optionally only those whose best hypothesis beats the runner-up by
``--min-margin``), and is fine-tuned for a few epochs on them mixed with its own training data (replayed so it does
not forget), with the augmentation it was trained with. The weights change, so wrong pseudo-labels can be learnt
too; what it gains must be measured on clips it did not adapt on.

Measured on FSDD (docs/results.md, sections 6 and 7): a keyword model trained on three speakers (plus espeak
voices) and tested on the fourth went from 87.4% to 91.35% (mean of the four rotations) after BatchNorm adaptation
to half of the held-out speaker's unlabelled clips and testing on the other half; an espeak-only model on real
speech from 80.9% to 87.7%. BatchNorm adaptation made the CTC recogniser worse (12.1% -> 14.1% WER; 8.8% -> 11.5%
for a model trained with onset cuts); self-training improves it (``scripts/ctc_self_train_fsdd.py``, cross-fold by
source recording; figures in the README).

``python -m kwslab.evaluate --adapt-folds N`` (:func:`kwslab.evaluate.evaluate_adapted`) measures what BatchNorm
adaptation gains without ever scoring a clip with a model adapted on it.

The adapted checkpoint works everywhere a checkpoint does (``evaluate``, ``predict``, streaming, ONNX export); it
records what it was adapted on under ``kwslab_adaptation``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from kwslab.audio import WavError
from kwslab.checkpoint import CheckpointError, save_checkpoint
from kwslab.data.manifest import ManifestError, read_manifest
from kwslab.inference import LoadedModel, load_model
from kwslab.transcribe import DecoderSettings, add_decoder_arguments, is_ctc, posteriors, settings_from_args

ADAPTATION_KEY = "kwslab_adaptation"


class AdaptationError(ValueError):
    """Adaptation cannot run (message says why and what to do)."""


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layer being measured has seen its input."""


def batchnorm_layers(module: nn.Module, example: torch.Tensor) -> list[_BatchNorm]:
    """The BatchNorm layers of ``module`` that keep running statistics, in the order a forward pass over
    ``example`` calls them (layers that always use batch statistics have nothing to adapt)."""
    order: list[_BatchNorm] = []
    hooks = [m.register_forward_pre_hook(lambda mod, _inp: order.append(mod) if mod not in order else None)
             for m in module.modules() if isinstance(m, _BatchNorm) and m.running_mean is not None]
    try:
        module(example)
    finally:
        for h in hooks:
            h.remove()
    return order


@torch.no_grad()
def adapt_batchnorm(module: nn.Module, inputs: Sequence[torch.Tensor], strength: float = 1.0) -> int:
    """Re-estimate every BatchNorm layer's running statistics on ``inputs`` (a list of model inputs, each a batch).

    Layers are adapted one at a time in forward order; each layer's mean and (unbiased) variance are computed over
    all of its input positions (batch and time/space) across all of ``inputs``, with the layers before it already
    adapted. ``strength`` in (0, 1] blends: ``new = (1 - strength) * trained + strength * measured``. The module is
    left in eval mode. Returns the number of layers adapted.
    """
    if not inputs:
        raise AdaptationError("no audio to adapt on")
    if not 0.0 < strength <= 1.0:
        raise AdaptationError(f"strength must be in (0, 1], got {strength}")
    module.eval()
    layers = batchnorm_layers(module, inputs[0])
    for layer in layers:
        total, total_sq, count = 0.0, 0.0, 0

        def measure(_mod: nn.Module, args: tuple) -> None:
            nonlocal total, total_sq, count
            x = args[0].double().transpose(0, 1).reshape(args[0].shape[1], -1)  # (C, everything else)
            total = total + x.sum(dim=1)
            total_sq = total_sq + (x * x).sum(dim=1)
            count += x.shape[1]
            raise _Stop

        hook = layer.register_forward_pre_hook(measure)
        try:
            for x in inputs:
                try:
                    module(x)
                except _Stop:
                    pass
        finally:
            hook.remove()
        if count < 2:
            raise AdaptationError("too little audio to measure statistics (need at least 2 frames)")
        mean = total / count
        var = (total_sq - count * mean * mean).clamp_min(0.0) / (count - 1)
        layer.running_mean.mul_(1.0 - strength).add_(strength * mean.to(layer.running_mean.dtype))
        layer.running_var.mul_(1.0 - strength).add_(strength * var.to(layer.running_var.dtype))
    return len(layers)


def model_inputs(model: LoadedModel, files: Sequence[str | Path], batch_size: int = 64,
                 cache: dict | None = None) -> list[torch.Tensor]:
    """Features of ``files`` as model inputs: equal-shaped clips batched together, others one at a time.

    Variable-length clips (CTC models) are never padded, so padding cannot reach the statistics. ``cache``: see
    :meth:`kwslab.inference.LoadedModel.features_of`.
    """
    by_shape: dict[tuple, list[np.ndarray]] = {}
    for feats in model.features_of(files, cache):
        by_shape.setdefault(feats.shape, []).append(feats)
    batches = []
    for group in by_shape.values():
        for start in range(0, len(group), batch_size):
            batches.append(torch.from_numpy(np.stack(group[start:start + batch_size])).to(model.module.device))
    return batches


def adapt_model(model: LoadedModel, files: Sequence[str | Path], strength: float = 1.0,
                cache: dict | None = None) -> int:
    """Adapt a loaded model in place to the audio ``files``; returns the number of BatchNorm layers adapted.
    ``cache``: features shared with other calls (see :meth:`kwslab.inference.LoadedModel.features_of`)."""
    if not any(isinstance(m, _BatchNorm) and m.running_mean is not None for m in model.module.modules()):
        raise AdaptationError(f"{model.path}: the model has no BatchNorm layer with running statistics, so there "
                              "is nothing to adapt")
    if not files:
        raise AdaptationError("no audio files to adapt on")
    return adapt_batchnorm(model.module, model_inputs(model, files, cache=cache), strength)


def audio_files(paths: Iterable[str | Path] = (), manifest: str | Path | None = None) -> list[Path]:
    """The WAV files named by a manifest (its keyword/transcript columns are ignored) and/or files and folders."""
    files: list[Path] = []
    if manifest is not None:
        files += [Path(r.path) for r in read_manifest(manifest, need_keyword=False)]
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() == ".wav")
            if not found:
                raise AdaptationError(f"{p}: the folder holds no .wav file")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise AdaptationError(f"{p}: no such file or folder")
    return files


def save_adapted(model: LoadedModel, out: str | Path, info: dict) -> Path:
    """Write ``model``'s checkpoint with its adapted state and ``info`` under ``kwslab_adaptation`` (atomic)."""
    data = dict(model.checkpoint)
    data["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.module.state_dict().items()}
    data[ADAPTATION_KEY] = info
    return save_checkpoint(data, out)


def adapt_checkpoint(ckpt: str | Path, out: str | Path, files: Sequence[str | Path], strength: float = 1.0) -> dict:
    """Load ``ckpt``, adapt it to ``files`` and save the result to ``out``; returns what was recorded."""
    if Path(out).resolve() == Path(ckpt).resolve():
        raise AdaptationError(f"{out}: --out is the source checkpoint; write the adapted model to a new file")
    model = load_model(ckpt)
    layers = adapt_model(model, files, strength)
    kind = "ctc" if is_ctc(model) else "keyword"
    info = {"source": str(ckpt), "model": kind, "method": "batchnorm", "clips": len(files), "strength": strength,
            "batchnorm_layers": layers,
            "files": [str(f) for f in files[:20]] + (["..."] if len(files) > 20 else [])}
    if ADAPTATION_KEY in model.checkpoint:  # adapting an adapted model: keep the chain
        info["previous"] = model.checkpoint[ADAPTATION_KEY]
    save_adapted(model, out, info)
    return {"out": str(out), **info}


def pseudo_label(model: LoadedModel, files: Sequence[str | Path], settings: DecoderSettings,
                 min_margin: float = 0.0) -> list[dict]:
    """Transcribe ``files`` with a CTC model's beam search (+ LM) and mark the confident transcripts.

    Confidence is the margin: the log score of the best transcript minus that of the best *different* transcript in
    the beam (infinite when the beam holds only one). Returns one dict per file: ``path``, ``text``, ``margin`` and
    ``kept`` (a non-empty text with ``margin >= min_margin``).
    """
    if not is_ctc(model):
        raise AdaptationError(f"{model.path}: pseudo-labels need a CTC checkpoint")
    if settings.beam_width < 2:
        raise AdaptationError("pseudo-labels need --beam-width >= 2 (the margin compares the two best transcripts)")
    from kwslab.decoding import beam_search_batch

    vocab = model.module.vocab
    beams = beam_search_batch(posteriors(model, files), vocab, settings.beam_width, n_best=settings.beam_width,
                              **settings.load(vocab))
    labels = []
    for path, beam in zip(files, beams):
        texts = [(" ".join(t.split()), score) for t, score in beam]
        text, best = texts[0] if texts else ("", -math.inf)
        rival = next((score for t, score in texts if t != text), -math.inf)
        margin = best - rival
        labels.append({"path": str(path), "text": text, "margin": float(margin),
                       "kept": bool(text) and margin >= min_margin})
    return labels


def _replay_manifests(model: LoadedModel, replay: Sequence[str] | None) -> list[str]:
    if replay is None:  # the manifests the checkpoint was trained on
        train = (model.checkpoint.get("datamodule_hyper_parameters") or {}).get("train_manifest")
        replay = [train] if isinstance(train, str) else list(train or [])
    missing = [m for m in replay if not Path(m).is_file()]
    if missing:
        raise AdaptationError(f"{missing[0]}: replay manifest not found (the checkpoint's training data by default); "
                              "pass --replay with the training manifest(s), or --replay none to train on the "
                              "pseudo-labels alone")
    return list(replay)


def self_train(ckpt: str | Path, out: str | Path, files: Sequence[str | Path], settings: DecoderSettings,
               replay: Sequence[str] | None = None, epochs: int = 3, lr: float = 5e-4, repeats: int = 4,
               min_margin: float = 0.0, seed: int = 0, rounds: int = 1) -> dict:
    """Adapt a CTC checkpoint to unlabelled audio by self-training, and save it to ``out``.

    1. :func:`pseudo_label` transcribes ``files`` (beam + LM as in ``settings``) and keeps the non-empty
       transcripts whose margin over the runner-up is at least ``min_margin`` (0: all of them).
    2. The model is fine-tuned for ``epochs`` on those clips (each listed ``repeats`` times) mixed with the
       ``replay`` manifests (default: the checkpoint's own training manifests, so it does not forget them), with the
       checkpoint's data settings (features, augmentation, SpecAugment, batch size), AdamW (``lr``, weight decay
       0.01) and a cosine schedule over the epochs.
    3. With ``rounds`` > 1, the fine-tuned model transcribes the files again and is fine-tuned once more on its
       new pseudo-labels (fresh optimizer and schedule each round).

    Unlike BatchNorm adaptation this changes the weights, so wrong pseudo-labels can be learnt: measure the gain
    on held-out clips (``scripts/ctc_self_train_fsdd.py`` does it cross-fold on FSDD). Returns what was recorded
    under ``kwslab_adaptation`` in the checkpoint, plus ``out`` and the last round's pseudo-labels of every file
    (``labels``).
    """
    import lightning as L
    import torch

    from kwslab.data.datamodules import CTCDataModule
    from kwslab.data.manifest import write_manifest

    if Path(out).resolve() == Path(ckpt).resolve():
        raise AdaptationError(f"{out}: --out is the source checkpoint; write the adapted model to a new file")
    for name, value in (("epochs", epochs), ("repeats", repeats), ("rounds", rounds)):
        if not isinstance(value, int) or value < 1:
            raise AdaptationError(f"--{name} must be a positive integer, got {value!r}")
    if not lr > 0:
        raise AdaptationError(f"--lr must be positive, got {lr!r}")
    if not files:
        raise AdaptationError("no audio files to adapt on")
    model = load_model(ckpt)
    if not is_ctc(model):
        raise AdaptationError(f"{ckpt}: self-training is for CTC checkpoints; adapt a keyword model with "
                              "--method batchnorm")
    data_hparams = model.checkpoint.get("datamodule_hyper_parameters")
    if not data_hparams:
        raise AdaptationError(f"{ckpt}: the checkpoint does not record its data settings "
                              "(datamodule_hyper_parameters); self-training needs a checkpoint written by "
                              "python -m kwslab.fit with a CTCDataModule")
    replay = _replay_manifests(model, replay)
    allowed = inspect.signature(CTCDataModule).parameters
    kwargs = {k: v for k, v in data_hparams.items() if k in allowed}
    module = model.module
    module.optimizer_factory = partial(torch.optim.AdamW, lr=lr, weight_decay=0.01)
    module.scheduler_factory = partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs)
    kept_per_round = []
    for round_ in range(rounds):
        module.eval()
        labels = pseudo_label(model, files, settings, min_margin)
        kept = [lab for lab in labels if lab["kept"]]
        if not kept:
            raise AdaptationError(f"none of the {len(files)} clips got a non-empty transcript with a margin >= "
                                  f"{min_margin}; check the audio, or lower --min-margin")
        kept_per_round.append(len(kept))
        with tempfile.TemporaryDirectory(prefix="kwslab-selftrain-") as tmp:
            manifest = Path(tmp) / "pseudo_labels.csv"
            write_manifest(manifest, [{"filename": lab["path"], "transcript": lab["text"], "split": "train"}
                                      for lab in kept] * repeats)
            kwargs.update(train_manifest=[str(manifest), *replay], val_manifest=None, test_manifest=None,
                          cache_dir=None, seed=seed + round_, prepare=None)
            data = CTCDataModule(**kwargs)
            L.seed_everything(seed + round_, verbose=False)
            trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                                limit_val_batches=0, gradient_clip_val=5.0, accelerator="auto", devices=1,
                                default_root_dir=tmp)
            module.train()
            trainer.fit(module, datamodule=data)
    module.eval().cpu()
    info = {"source": str(ckpt), "model": "ctc", "method": "self-train", "clips": len(files), "kept": len(kept),
            "rounds": rounds, "kept_per_round": kept_per_round, "min_margin": min_margin, "epochs": epochs,
            "lr": lr, "repeats": repeats, "seed": seed, "replay": replay, "beam_width": settings.beam_width,
            "lm": settings.lm, "alpha": settings.alpha, "beta": settings.beta,
            "files": [str(f) for f in files[:20]] + (["..."] if len(files) > 20 else [])}
    if ADAPTATION_KEY in model.checkpoint:
        info["previous"] = model.checkpoint[ADAPTATION_KEY]
    save_adapted(model, out, info)
    return {"out": str(out), **info, "labels": labels}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.adapt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint written by python -m kwslab.fit")
    parser.add_argument("--out", required=True, help="where to write the adapted checkpoint")
    parser.add_argument("--manifest", help="CSV manifest of the unlabelled audio (only its filename column is used)")
    parser.add_argument("paths", nargs="*", help="WAV files or folders (searched recursively for .wav)")
    parser.add_argument("--method", choices=["auto", "batchnorm", "self-train"], default="auto",
                        help="auto (default): batchnorm for keyword models, self-train for CTC models")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="batchnorm: 1 (default) uses the new statistics; below 1 blends them with the trained "
                             "ones")
    st = parser.add_argument_group("self-training (CTC checkpoints)")
    st.add_argument("--replay", nargs="+", metavar="MANIFEST",
                    help="labelled manifests mixed into the fine-tuning (default: the checkpoint's training "
                         "manifests; 'none': pseudo-labels alone)")
    st.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default 3)")
    st.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate, cosine schedule (default 5e-4)")
    st.add_argument("--repeats", type=int, default=4, help="times each pseudo-labelled clip is listed (default 4)")
    st.add_argument("--min-margin", type=float, default=0.0,
                    help="keep a clip only when its best transcript beats the runner-up by this log score (default "
                         "0: every non-empty transcript; on FSDD keeping all was better than a margin of 2)")
    st.add_argument("--rounds", type=int, default=1, help="pseudo-label and fine-tune this many times (default 1)")
    st.add_argument("--seed", type=int, default=0)
    add_decoder_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    args = parser.parse_args(argv)
    if not args.manifest and not args.paths:
        parser.error("give the unlabelled audio: --manifest M and/or WAV files or folders")
    replay = None if args.replay is None else ([] if [r.lower() for r in args.replay] == ["none"] else args.replay)
    try:
        files = audio_files(args.paths, args.manifest)
        method = args.method
        if method == "auto":
            method = "self-train" if is_ctc(load_model(args.ckpt)) else "batchnorm"
        if method == "self-train":
            result = self_train(args.ckpt, args.out, files, settings_from_args(args), replay, args.epochs, args.lr,
                                args.repeats, args.min_margin, args.seed, args.rounds)
        else:
            result = adapt_checkpoint(args.ckpt, args.out, files, args.strength)
    except (AdaptationError, CheckpointError, ManifestError, WavError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
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
