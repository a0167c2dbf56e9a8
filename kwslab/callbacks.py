"""Callbacks shared by every kwslab model: confusion matrix (PNG + W&B), misclassified examples, W&B run id.

Models return ``{"logits": (B, C), "targets": (B,)}`` from their validation/test steps; callbacks read that and,
when the batch carries them, item indices (``batch[2]``) to name the misclassified files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from kwslab.decoding.settings import DEFAULT_ALPHA, DEFAULT_BEAM_WIDTH, DEFAULT_BETA
from kwslab.metrics import classification_report, confusion_matrix, plot_confusion_matrix


class ConfusionMatrixCallback(Callback):
    """Collects validation and test predictions; saves the confusion matrix PNG and logs it (and a table of
    misclassified examples) to W&B.

    Args:
        dirpath: where PNGs go (default: the trainer's log dir). ``confusion_<split>.png`` holds the latest.
        max_misclassified: rows in the misclassified-examples table. Default 50.
    """

    def __init__(self, dirpath: str | None = None, max_misclassified: int = 50) -> None:
        self.dirpath = dirpath
        self.max_misclassified = max_misclassified
        self.results: dict[str, dict[str, Any]] = {}
        self._preds: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._indices: list[torch.Tensor] = []

    def _reset(self) -> None:
        self._preds, self._targets, self._indices = [], [], []

    def _collect(self, outputs: Any, batch: Sequence[Any]) -> None:
        if not isinstance(outputs, dict) or "logits" not in outputs:
            return
        self._preds.append(outputs["logits"].argmax(-1).cpu())
        self._targets.append(outputs["targets"].cpu())
        if len(batch) > 2 and isinstance(batch[2], torch.Tensor):
            self._indices.append(batch[2].cpu())

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._finish(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer, pl_module, "test")

    def _finish(self, trainer: L.Trainer, pl_module: L.LightningModule, split: str) -> None:
        if not self._preds or not trainer.is_global_zero:
            return
        labels = list(getattr(pl_module, "labels", None) or [])
        preds, targets = torch.cat(self._preds).numpy(), torch.cat(self._targets).numpy()
        n = len(labels) or int(max(preds.max(), targets.max())) + 1
        labels = labels or [str(i) for i in range(n)]
        cm = confusion_matrix(targets, preds, n)
        dirpath = Path(self.dirpath or trainer.log_dir or trainer.default_root_dir)
        png = plot_confusion_matrix(cm, labels, dirpath / f"confusion_{split}.png",
                                    title=f"{split} (epoch {trainer.current_epoch})")
        self.results[split] = {"confusion": cm, "labels": labels, "png": str(png),
                               "report": classification_report(cm, labels)}
        wrong = self._misclassified(trainer, split, preds, targets, labels)
        self.results[split]["misclassified"] = wrong
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(f"{split}/confusion_matrix", [str(png)], step=trainer.global_step)
                if wrong:
                    logger.log_table(f"{split}/misclassified", columns=["file", "true", "predicted"],
                                     data=[list(w) for w in wrong], step=trainer.global_step)

    def _misclassified(self, trainer: L.Trainer, split: str, preds: np.ndarray, targets: np.ndarray,
                       labels: list[str]) -> list[tuple[str, str, str]]:
        if not self._indices:
            return []
        indices = torch.cat(self._indices).numpy()
        datasets = getattr(trainer.datamodule, "datasets", None) or {}
        rows = getattr(datasets.get(split), "rows", None)
        wrong = np.flatnonzero(preds != targets)[: self.max_misclassified]
        name = (lambda i: str(rows[i].path)) if rows is not None else str
        return [(name(int(indices[i])), labels[targets[i]], labels[preds[i]]) for i in wrong]


class WandbRunIdCallback(Callback):
    """Stores the W&B run id in every checkpoint, so ``--ckpt_path last`` continues the same W&B run."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                checkpoint["wandb_run_id"] = logger.version


class DecodingEvaluationCallback(Callback):
    """Beam-search (optionally LM-fused) decoding of the validation set every ``every_n_epochs`` epochs, and of
    the test set; logs ``<split>/wer_beam`` and ``<split>/cer_beam`` beside the model's greedy ``<split>/wer``, and
    a table of example transcripts (reference, greedy, beam) to W&B.

    Works with any model whose validation/test step returns ``log_probs`` (list of ``(T, V)`` arrays),
    ``references`` and ``greedy`` (lists of str), e.g. :class:`kwslab.models.CTCRecognizer`.

    Args:
        every_n_epochs: decode the validation set with the beam every this many epochs. Default 5.
        beam_width: beam width. Default 16.
        lm: optional ARPA language model file for shallow fusion.
        alpha: LM weight. beta: word insertion bonus.
        max_examples: rows of the example-transcript table. Default 20.
    """

    def __init__(self, every_n_epochs: int = 5, beam_width: int = DEFAULT_BEAM_WIDTH, lm: str | None = None,
                 alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA, max_examples: int = 20) -> None:
        self.every_n_epochs, self.beam_width, self.max_examples = every_n_epochs, beam_width, max_examples
        self.lm_path, self.alpha, self.beta = lm, alpha, beta
        self._lm: Any = None
        self._items: list[tuple[np.ndarray, str, str]] = []
        self.results: dict[str, dict[str, Any]] = {}

    def _active(self, trainer: L.Trainer, split: str) -> bool:
        if split == "test":
            return True
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _collect(self, trainer: L.Trainer, split: str, outputs: Any) -> None:
        if self._active(trainer, split) and isinstance(outputs, dict) and "log_probs" in outputs:
            self._items.extend(zip(outputs["log_probs"], outputs["references"], outputs["greedy"]))

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._items = []

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, "val", outputs)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, "test", outputs)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer, pl_module, "test")

    def _finish(self, trainer: L.Trainer, pl_module: L.LightningModule, split: str) -> None:
        if not self._items:
            return
        from kwslab.decoding.beam import beam_search_batch
        from kwslab.metrics import error_rates

        if self.lm_path and self._lm is None:
            from kwslab.decoding.lm import NGramLM

            self._lm = NGramLM.load_arpa(self.lm_path)
        log_probs, refs, greedy_hyps = (list(x) for x in zip(*self._items))
        beams = beam_search_batch(log_probs, pl_module.vocab, self.beam_width, self._lm, self.alpha, self.beta,
                                  n_best=1)
        beam_hyps = [b[0][0] if b else "" for b in beams]
        rates = error_rates(refs, beam_hyps)
        pl_module.log(f"{split}/wer_beam", rates["wer"], sync_dist=True)
        pl_module.log(f"{split}/cer_beam", rates["cer"], sync_dist=True)
        examples = [list(row) for row in zip(refs, greedy_hyps, beam_hyps)][: self.max_examples]
        self.results[split] = {**rates, "greedy": error_rates(refs, greedy_hyps), "examples": examples}
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(f"{split}/transcripts", columns=["reference", "greedy", "beam"], data=examples,
                                 step=trainer.global_step)
        self._items = []


class LatestCheckpoint(ModelCheckpoint):
    """``<dirpath>/last.ckpt`` rewritten after every epoch: what ``--ckpt_path last`` resumes from.

    Lightning 2.6's ``ModelCheckpoint(save_last=True)`` only rewrites ``last.ckpt`` in epochs where it also saved a
    top-k checkpoint, so after a run stops improving it is not the latest epoch; this callback always is.

    Args:
        dirpath: checkpoint folder (the same as the best-checkpoint callback's).
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, save_last=False,
                         enable_version_counter=False)
