"""Callbacks shared by every kwslab model: confusion matrix (PNG + W&B), misclassified examples, W&B run id, the
latest checkpoint, and one fit at a time per checkpoint folder.

Models return ``{"logits": (B, C), "targets": (B,)}`` from their validation/test steps; callbacks read that and,
when the batch carries them, item indices (``batch[2]``) to name the misclassified files.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
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

LOCK_FILE = ".fit.lock"  # in every checkpoint folder a fit writes into: who holds it (pid, host, start time)
# folders this process holds: resolved path -> (the lock file's descriptor, the trainer holding it)
_HELD: dict[Path, tuple[int, object]] = {}


class CheckpointFolderInUse(RuntimeError):
    """Another live fit writes checkpoints into the folder; the message names it, its owner and what to do."""


def _owner_line(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"


def lock_checkpoint_folder(folder: str | os.PathLike[str], owner: object) -> None:
    """Hold ``<folder>/.fit.lock`` for ``owner`` (a trainer) until :func:`release_checkpoint_folders`.

    A POSIX record lock (``fcntl.lockf``): the kernel drops it when the holding process exits, even by
    ``kill -9``, so a stale lock file from a dead run never blocks, and forked children (DataLoader workers) do
    not inherit it. Taking a folder this owner already holds does nothing. Without ``fcntl`` (Windows) there is
    no lock: run one fit per folder.

    Raises:
        CheckpointFolderInUse: another process (or another trainer in this one) holds the folder.
    """
    try:
        import fcntl
    except ImportError:
        return
    path = Path(folder).resolve()
    if path in _HELD:
        if _HELD[path][1] is owner:
            return
        raise CheckpointFolderInUse(f"checkpoint folder {path} is in use by another fit in this process "
                                    f"(pid {os.getpid()}); give this one another dirpath, or let that one end")
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        who = _owner_line(fd)
        os.close(fd)
        raise CheckpointFolderInUse(
            f"checkpoint folder {path} is in use by another fit ({who}); its last.ckpt and best checkpoints would "
            "overwrite this run's: set another dirpath for the ModelCheckpoint/LatestCheckpoint callbacks, or wait "
            "for that run to end") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)[:500]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
    _HELD[path] = (fd, owner)


def release_checkpoint_folders(owner: object) -> None:
    """Release every checkpoint folder ``owner`` holds (the lock file stays, empty: it is harmless)."""
    for path, (fd, holder) in list(_HELD.items()):
        if holder is owner:
            del _HELD[path]
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)  # closing drops the lock


def lock_checkpoint_folders(trainer: L.Trainer) -> None:
    """Lock the folder of every ``ModelCheckpoint`` (``LatestCheckpoint`` included) of ``trainer``.

    Only global rank 0 takes the locks; its verdict is broadcast, so under DDP every rank stops together.

    Raises:
        CheckpointFolderInUse: naming the folder, the other run (pid, host, start time) and what to do.
    """
    error = None
    if trainer.is_global_zero:
        try:
            for cb in trainer.checkpoint_callbacks:
                if cb.dirpath:
                    lock_checkpoint_folder(cb.dirpath, trainer)
        except CheckpointFolderInUse as exc:
            release_checkpoint_folders(trainer)
            error = str(exc)
    if trainer.world_size > 1:
        error = trainer.strategy.broadcast(error, src=0)
    if error:
        raise CheckpointFolderInUse(error)


class CheckpointFolderLock(Callback):
    """One fit at a time per checkpoint folder: two runs sharing one would overwrite each other's ``last.ckpt``
    (and resuming one would continue the other, W&B run included).

    At fit start it locks the folder of every ``ModelCheckpoint`` of the trainer (see
    :func:`lock_checkpoint_folder`) and refuses to start when another live run holds one; it releases them when
    the fit ends or fails. ``LatestCheckpoint`` does the same, so configs that use it need nothing else.
    """

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        lock_checkpoint_folders(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        release_checkpoint_folders(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        release_checkpoint_folders(trainer)


class LatestCheckpoint(ModelCheckpoint):
    """``<dirpath>/last.ckpt`` rewritten after every epoch: what ``--ckpt_path last`` resumes from.

    Lightning 2.6's ``ModelCheckpoint(save_last=True)`` only rewrites ``last.ckpt`` in epochs where it also saved a
    top-k checkpoint, so after a run stops improving it is not the latest epoch; this callback always is.

    Like :class:`CheckpointFolderLock`, it refuses to start a fit into a folder that another live run writes
    into (every ``ModelCheckpoint`` folder of the trainer is locked from fit start to fit end).

    Args:
        dirpath: checkpoint folder (the same as the best-checkpoint callback's).
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, save_last=False,
                         enable_version_counter=False)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        lock_checkpoint_folders(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        release_checkpoint_folders(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        release_checkpoint_folders(trainer)


class EpochLines(Callback):
    """One line per epoch on stdout when there is no progress bar (a log file, CI, ``nohup``, ``| tee``), e.g.
    ``epoch 3/9  train/loss 0.4123  val/loss 0.3871  val/acc 0.9125  12.4 s``.

    Progress bars redraw with carriage returns, which a file keeps: megabytes of redraws per run. ``kwslab.fit``
    turns the bar off when stdout is not a terminal (unless the config sets ``trainer.enable_progress_bar``) and
    adds this callback, which stays silent whenever the trainer has a progress bar. The epoch index is Lightning's
    (0-based, as in checkpoint names) over the last one; validation metrics appear in the epochs that ran it.
    """

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._validated = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._validated = time.monotonic(), False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.progress_bar_callback is not None or not trainer.is_global_zero:
            return
        print(self.line(trainer.current_epoch, trainer.max_epochs, trainer.callback_metrics,
                        time.monotonic() - self._start, validated=self._validated), flush=True)

    @staticmethod
    def line(epoch: int, max_epochs: int | None, metrics: dict[str, Any], seconds: float, *,
             validated: bool = True) -> str:
        """The epoch's line: train/* and (when validation ran) val/* epoch metrics, losses first, then seconds."""
        values: dict[str, float] = {}
        for key, value in metrics.items():
            if key.endswith("_step") or not key.startswith(("train/", "val/") if validated else "train/"):
                continue
            try:
                values[key.removesuffix("_epoch")] = float(value)
            except (TypeError, ValueError):  # a non-scalar metric has no place on one line
                continue
        order = sorted(values, key=lambda k: (not k.startswith("train/"), not k.endswith("/loss"), k))
        last = f"/{max_epochs - 1}" if max_epochs and max_epochs > 0 else ""
        parts = [f"epoch {epoch}{last}"] + [f"{k} {values[k]:.4f}" for k in order] + [f"{seconds:.1f} s"]
        return "  ".join(parts)
