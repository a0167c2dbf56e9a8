"""The keyword classifier: a thin LightningModule around any network (:class:`kwslab.nets.KeywordCNN` by default).

Batches are ``(features (B, F, T), labels (B,), ...)``; anything after the labels is passed through to callbacks.
Everything inference needs (the labels, the FeatureConfig, the network's hyperparameters) is saved in the
checkpoint's ``hyper_parameters``, so :func:`kwslab.checkpoint.load_model` rebuilds the model from the file alone.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from kwslab.checkpoint import load_checkpoint, transfer_weights
from kwslab.models.base import (NetworkFactory, allowed_classes, build_network, build_optimizers, default_adamw,
                                network_spec)
from kwslab.nets.cnn import KeywordCNN

LEGACY_NET_ARGS = ("channels", "kernel_size", "pool", "hidden", "dropout")


class KeywordClassifier(L.LightningModule):
    """Keyword spotter: MFCC/log-mel frames -> class logits from any network, trained with cross-entropy.

    Args:
        num_outputs: number of classes (linked from the datamodule by ``kwslab.fit``).
        labels: class names in index order (linked from the datamodule; saved for inference).
        feature_config: the ``FeatureConfig`` as a dict (linked from the datamodule; saved for inference).
        net: the network: a ``class_path`` in YAML (any ``nn.Module`` whose ``__init__`` starts with
            ``in_features, num_classes``; ``init_args`` give the rest), called with the feature count and
            ``num_outputs``. Default :class:`kwslab.nets.KeywordCNN` with its defaults. Saved in the checkpoint as
            ``{"class_path", "init_args"}``, so inference, export, streaming and adaptation rebuild it from the file.
        label_smoothing: cross-entropy label smoothing. Default 0.0.
        mixup_alpha: mixup (Zhang et al., 2018) in training when > 0: each batch is mixed with a shuffled copy of
            itself, ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha, alpha)``, and the loss mixes the two
            labels' cross-entropies alike. ``train/acc`` then counts the label with the larger share. Default 0.0.
            (alpha 0.4 did not help FSDD speaker-disjoint + espeak; docs/results.md.)
        optimizer: optimizer factory (``class_path`` in YAML). Default AdamW(lr=3e-3, weight_decay=1e-2).
        scheduler: optional LR scheduler factory; ReduceLROnPlateau monitors ``val/loss``.
        init_from: checkpoint to start from (fine-tuning); the network's ``head`` is re-initialised when the labels
            differ (weights whose names and shapes match are copied). A network may take more from it with an
            ``adopt_pretrained(state_dict, source_labels, labels)`` method (``EmbeddingHead(words=...)``: the
            embedding's word classifier).
        freeze_backbone: train only the head (BatchNorm statistics in the backbone stay frozen too); the network
            must have ``backbone`` and ``head`` attributes.
    """

    kind = "keyword"  # read by kwslab.inference.model_kind: the one place a loaded model's kind is decided

    def __init__(
        self,
        num_outputs: int = 2,
        labels: Sequence[str] | None = None,
        feature_config: dict[str, Any] | None = None,
        net: NetworkFactory | None = None,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        optimizer: OptimizerCallable = default_adamw,
        scheduler: LRSchedulerCallable | None = None,
        init_from: str | None = None,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        if labels is not None and len(labels) != num_outputs:
            raise ValueError(f"model.labels has {len(labels)} names but num_outputs is {num_outputs}")
        if not (isinstance(mixup_alpha, (int, float)) and mixup_alpha >= 0):
            raise ValueError(f"model.mixup_alpha must be a number >= 0 (0 turns mixup off), got {mixup_alpha!r}")
        labels = list(labels) if labels is not None else [str(i) for i in range(num_outputs)]
        spec = network_spec(net, KeywordCNN)
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "net"])
        self.hparams["labels"] = labels
        self.hparams["net"] = spec  # plain data, whatever form ``net`` came in
        self.labels = labels
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # A class object handed over in Python (or by LightningCLI from the user's config) is trusted: the caller
        # already imported it. Only a class *path* (from a checkpoint or a dict) must pass the allow-list.
        trusted = [] if net is None or isinstance(net, Mapping) else [spec["class_path"]]
        with allowed_classes(trusted):
            self.net = build_network(spec, _num_features(feature_config), num_outputs)
        if freeze_backbone and not isinstance(getattr(self.net, "backbone", None), torch.nn.Module):
            raise ValueError(f"model.freeze_backbone: {spec['class_path']} has no `backbone` module to freeze")
        if init_from:
            source = load_checkpoint(init_from)
            _check_same_features(init_from, source["hyper_parameters"].get("feature_config"), feature_config)
            same_labels = list(source["hyper_parameters"].get("labels") or []) == labels
            transfer_weights(self, source["state_dict"], skip_prefixes=() if same_labels else ("net.head.",))
            adopt = getattr(self.net, "adopt_pretrained", None)  # a network's own use of the source (EmbeddingHead)
            if callable(adopt):
                net_state = {k[len("net."):]: v for k, v in source["state_dict"].items() if k.startswith("net.")}
                scored = adopt(net_state, list(source["hyper_parameters"].get("labels") or []), labels)
                if scored:
                    rank_zero_info(f"init_from {init_from}: its word classifier scores {', '.join(scored)}")
        if freeze_backbone:
            for p in self.net.backbone.parameters():
                p.requires_grad_(False)
        metrics = MetricCollection({"acc": MulticlassAccuracy(num_outputs, average="micro"),
                                    "f1": MulticlassF1Score(num_outputs, average="macro")})
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    @staticmethod
    def upgrade_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
        """Checkpoints written before ``net`` existed kept the CNN's arguments (``channels``, ``kernel_size``,
        ``pool``, ``hidden``, ``dropout``) as the classifier's own, and ``KeywordClassifier2d`` picked the 2-D CNN.
        Returns the same hyperparameters in today's form (the weights' names are unchanged)."""
        hparams = dict(hparams)
        legacy = {k: hparams.pop(k) for k in LEGACY_NET_ARGS if k in hparams}
        two_d = str(hparams.get("_class_path", "")).endswith("KeywordClassifier2d")
        if two_d:
            hparams["_class_path"] = f"{KeywordClassifier.__module__}.KeywordClassifier"
        if "net" not in hparams:
            cls = "kwslab.nets.cnn2d.KeywordCNN2d" if two_d else "kwslab.nets.cnn.KeywordCNN"
            hparams["net"] = {"class_path": cls, "init_args": {k: list(v) if isinstance(v, tuple) else v
                                                               for k, v in legacy.items()}}
        return hparams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_outputs)`` logits."""
        return self.net(x)

    def train(self, mode: bool = True) -> "KeywordClassifier":
        super().train(mode)
        if self.hparams.get("freeze_backbone"):
            self.net.backbone.eval()  # frozen BatchNorm statistics too, not just frozen weights
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning restores each submodule's mode itself (bypassing train()), so freeze again here.
        if self.hparams.get("freeze_backbone"):
            self.net.backbone.eval()

    def _step(self, batch: Sequence[Any], split: str) -> dict[str, torch.Tensor]:
        x, y = batch[0], batch[1]
        smoothing = self.hparams.label_smoothing if split == "train" else 0.0
        alpha = float(self.hparams.get("mixup_alpha") or 0.0) if split == "train" else 0.0
        if alpha > 0 and len(y) > 1:
            lam = float(torch.distributions.Beta(alpha, alpha).sample())
            perm = torch.randperm(len(y), device=y.device)
            logits = self(lam * x + (1.0 - lam) * x[perm])
            loss = (lam * F.cross_entropy(logits, y, label_smoothing=smoothing)
                    + (1.0 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=smoothing))
            y = y if lam >= 0.5 else y[perm]
        else:
            logits = self(x)  # (B, C)
            loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        metrics = getattr(self, f"{split}_metrics")
        metrics.update(logits, y)
        on_step = split == "train"
        self.log(f"{split}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=split != "train", batch_size=len(y))
        return {"loss": loss, "logits": logits.detach(), "targets": y}

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "val")

    def test_step(self, batch: Sequence[Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        return build_optimizers(self, self.optimizer_factory, self.scheduler_factory)


def _check_same_features(source: str, theirs: dict[str, Any] | None, ours: dict[str, Any] | None) -> None:
    """``init_from`` weights only mean something on the features they were trained on (the clip length may
    differ: every network here pools over time)."""
    from kwslab.dsp import FeatureConfig

    if not theirs or not ours:
        return
    a = FeatureConfig.from_dict(dict(theirs)).to_dict()
    b = FeatureConfig.from_dict(dict(ours)).to_dict()
    differ = sorted(k for k in a if k != "num_frames" and a[k] != b.get(k))
    if differ:
        raise ValueError(f"model.init_from {source}: its weights were trained on other features ("
                         + ", ".join(f"{k}: {a[k]!r} there, {b.get(k)!r} here" for k in differ)
                         + "); set data.init_args.features to the checkpoint's")


def _num_features(feature_config: dict[str, Any] | None) -> int:
    from kwslab.dsp import FeatureConfig

    cfg = FeatureConfig.from_dict(dict(feature_config)) if feature_config else FeatureConfig()
    return cfg.num_features
