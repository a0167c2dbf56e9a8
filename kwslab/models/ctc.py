"""The CTC recogniser: a thin LightningModule around :class:`kwslab.nets.CRNN`, trained with ``ctc_loss``.

Batches come from :func:`kwslab.data.datasets.collate_ctc`: ``(feats (B, F, T), feat_lens (B,), targets (B, L),
target_lens (B,))``. Validation and test decode greedily and log ``val/wer`` and ``val/cer`` (jiwer, corpus level);
:class:`kwslab.callbacks.DecodingEvaluationCallback` adds beam search (+ LM) every few epochs. The vocabulary comes
from the datamodule as its token list (``labels``, ``""`` at the blank) and is rebuilt here with
:func:`kwslab.text.vocab_from_tokens`, so the blank index is the one :mod:`kwslab.text` defines.
"""
from __future__ import annotations

from typing import Any, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kwslab.checkpoint import load_checkpoint, transfer_weights
from kwslab.models.base import build_optimizers, default_adamw
from kwslab.decoding.greedy import greedy
from kwslab.metrics import error_rates
from kwslab.nets.crnn import CRNN
from kwslab.text import CharVocab, vocab_from_tokens



class CTCRecognizer(L.LightningModule):
    """Character CTC speech recogniser.

    Args:
        num_outputs: vocabulary size including the blank (linked from the datamodule).
        labels: the vocabulary tokens, ``""`` at the blank (linked from the datamodule; saved for inference).
        feature_config: the ``FeatureConfig`` as a dict (linked; saved for inference).
        conv_channels, kernel_size, subsample, rnn_hidden, rnn_layers, dropout: see :class:`kwslab.nets.CRNN`.
        optimizer: optimizer factory. Default AdamW(lr=3e-3, weight_decay=1e-2).
        scheduler: optional LR scheduler factory (stepped per epoch; ReduceLROnPlateau monitors ``val/loss``).
        init_from: checkpoint to start from (weights whose names and shapes match are copied).
    """

    kind = "ctc"  # read by kwslab.inference.model_kind: the one place a loaded model's kind is decided

    def __init__(
        self,
        num_outputs: int = 29,
        labels: Sequence[str] | None = None,
        feature_config: dict[str, Any] | None = None,
        conv_channels: Sequence[int] = (128, 128),
        kernel_size: int = 5,
        subsample: int = 2,
        rnn_hidden: int = 192,
        rnn_layers: int = 2,
        dropout: float = 0.2,
        optimizer: OptimizerCallable = default_adamw,
        scheduler: LRSchedulerCallable | None = None,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        self.vocab: CharVocab = vocab_from_tokens(labels) if labels is not None else CharVocab()
        if len(self.vocab) != num_outputs:
            raise ValueError(f"model.num_outputs is {num_outputs} but the vocabulary has {len(self.vocab)} tokens")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.hparams["labels"] = list(self.vocab.tokens)
        self.labels = list(self.vocab.tokens)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        from kwslab.dsp import FeatureConfig

        cfg = FeatureConfig.from_dict(dict(feature_config)) if feature_config else FeatureConfig()
        self.net = CRNN(cfg.num_features, num_outputs, tuple(conv_channels), kernel_size, subsample, rnn_hidden,
                        rnn_layers, dropout)
        if init_from:
            transfer_weights(self, load_checkpoint(init_from)["state_dict"])
        self._texts: dict[str, tuple[list[str], list[str]]] = {}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, F, T)`` features -> ``(B, T', V)`` log-probs and ``(B,)`` output lengths."""
        return self.net(x, lengths)

    def _step(self, batch: Sequence[torch.Tensor], split: str) -> dict[str, Any]:
        feats, feat_lens, targets, target_lens = batch
        log_probs, out_lens = self(feats, feat_lens)  # (B, T', V)
        loss = F.ctc_loss(log_probs.transpose(0, 1).float(), targets, out_lens, target_lens,
                          blank=self.vocab.blank, reduction="mean", zero_infinity=True)
        self.log(f"{split}/loss", loss, on_step=split == "train", on_epoch=True, prog_bar=True,
                 batch_size=len(feats))
        out = {"loss": loss}
        if split != "train":
            lp = log_probs.detach().float().cpu().numpy()
            lens = out_lens.cpu().tolist()
            refs = [self.vocab.decode(t[:n].tolist()) for t, n in zip(targets.cpu(), target_lens.cpu().tolist())]
            hyps = [greedy(lp[i, :lens[i]], self.vocab) for i in range(len(lens))]
            texts = self._texts.setdefault(split, ([], []))
            texts[0].extend(refs)
            texts[1].extend(hyps)
            out.update(log_probs=[lp[i, :lens[i]] for i in range(len(lens))], references=refs, greedy=hyps)
        return out

    def _log_error_rates(self, split: str) -> None:
        refs, hyps = self._texts.pop(split, ([], []))
        if refs:
            rates = error_rates(refs, hyps)
            self.log(f"{split}/wer", rates["wer"], prog_bar=True, sync_dist=True)
            self.log(f"{split}/cer", rates["cer"], prog_bar=split == "val", sync_dist=True)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> dict[str, Any]:
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> dict[str, Any]:
        return self._step(batch, "val")

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> dict[str, Any]:
        return self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_error_rates("val")

    def on_test_epoch_end(self) -> None:
        self._log_error_rates("test")

    def configure_optimizers(self) -> Any:
        return build_optimizers(self, self.optimizer_factory, self.scheduler_factory)