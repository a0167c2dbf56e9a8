"""Self-training adaptation for CTC checkpoints: transcribe unlabelled audio with beam search (+ LM), keep the
confident transcripts, and fine-tune on them mixed with the checkpoint's own training data (replayed so it does not
forget), with the data settings it was trained with.

The weights change, so wrong pseudo-labels can be learnt too: measure the gain on clips it did not adapt on
(``scripts/ctc_self_train_fsdd.py`` does it cross-fold on FSDD).
"""
from __future__ import annotations

import inspect
import math
import tempfile
from functools import partial
from pathlib import Path
from typing import Sequence

from kwslab.adaptation.common import ADAPTATION_KEY, AdaptationError, save_adapted
from kwslab.inference.ctc import DecoderSettings, posteriors
from kwslab.inference.loaded import LoadedModel, load_model


def pseudo_label(model: LoadedModel, files: Sequence[str | Path], settings: DecoderSettings,
                 min_margin: float = 0.0) -> list[dict]:
    """Transcribe ``files`` with a CTC model's beam search (+ LM) and mark the confident transcripts.

    Confidence is the margin: the log score of the best transcript minus that of the best *different* transcript in
    the beam (infinite when the beam holds only one). Returns one dict per file: ``path``, ``text``, ``margin`` and
    ``kept`` (a non-empty text with ``margin >= min_margin``).
    """
    if not model.is_ctc:
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
    if not model.is_ctc:
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
    vocab = model.module.vocab  # features and vocabulary: the model's (the checkpoint's one copy)
    kwargs.update(features=model.feature_config.to_dict(), chars=vocab.chars, blank_first=vocab.blank_first)
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
