"""Rebuild a trained model from its checkpoint alone, and run it on audio files.

The checkpoint's ``hyper_parameters`` hold the model class (``_class_path``, written by LightningCLI), its
arguments (the network as ``{"class_path", "init_args"}``), the labels and the FeatureConfig; :func:`load_model`
reads them with ``weights_only=True`` loading. This is the one place that decides a loaded model's kind
(:func:`model_kind`: ``"keyword"`` or ``"ctc"``) and the one that checks the checkpoint holds a single feature
setting and vocabulary (older checkpoints stored a second copy with the datamodule's settings).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch

from kwslab.audio import WavError, check_clip, load_audio
from kwslab.checkpoint import CheckpointError, load_checkpoint
from kwslab.dsp import FeatureConfig, cached_extractor
from kwslab.models.base import UntrustedClassError, class_allowed, resolve_class, untrusted_class_message
from kwslab.text import CharVocab

DEFAULT_CLASS = "kwslab.models.KeywordClassifier"
KINDS = ("keyword", "ctc")
LISTED_PROBLEMS = 20  # UnusableAudioError lists this many files, then counts the rest


class UnusableAudioError(ValueError):
    """Audio files that cannot be scored or adapted on (unreadable, empty, silent, NaN): all of them at once, one
    line each, so one run finds every bad file. ``problems`` holds the lines."""

    def __init__(self, problems: list[str], total: int) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:LISTED_PROBLEMS])
        more = len(self.problems) - LISTED_PROBLEMS
        super().__init__(f"{len(self.problems)} of {total} audio file(s) cannot be used; fix or remove them and run "
                         f"again:\n{shown}" + (f"\n  ... and {more} more" if more > 0 else ""))


def audio_problem(path: str | Path, exc: Exception) -> str:
    """One line for a file that could not be used, naming it once (WavError messages already name the file)."""
    return str(exc) if str(path) in str(exc) else f"{path}: {exc}"


@dataclass
class LoadedModel:
    """A model in eval mode with what inference needs: its feature settings and output labels."""

    module: L.LightningModule
    feature_config: FeatureConfig
    labels: list[str]
    path: Path
    checkpoint: dict[str, Any]
    kind: str = "keyword"

    @property
    def is_ctc(self) -> bool:
        """True for a CTC recogniser (see :func:`model_kind`)."""
        return self.kind == "ctc"

    def features(self, path: str | Path) -> np.ndarray:
        """Read any WAV the reader accepts, resample, and extract ``(F, T)`` features.

        Raises:
            WavError: naming the file, when it cannot be read or holds nothing to score (0 samples, all zeros).
        """
        audio = check_clip(load_audio(path, self.feature_config.sample_rate), path)
        return cached_extractor(self.feature_config)(audio)

    def features_of(self, paths: Sequence[str | Path], cache: dict | None = None) -> list[np.ndarray]:
        """Features of several files. ``cache`` (a dict shared between calls and models) keeps them per feature
        setting, so a file is read and transformed once however many models or folds use it.

        Raises:
            UnusableAudioError: listing every file that cannot be used (after trying them all).
        """
        store = {} if cache is None else cache.setdefault(self.feature_config, {})
        problems = []
        for p in paths:
            if p not in store:
                try:
                    store[p] = self.features(p)
                except (WavError, OSError, ValueError) as exc:
                    problems.append(audio_problem(p, exc))
        if problems:
            raise UnusableAudioError(problems, len(paths))
        return [store[p] for p in paths]

    @torch.no_grad()
    def logits(self, feats: Sequence[np.ndarray]) -> torch.Tensor:
        """``(B, C)`` logits for equally-shaped ``(F, T)`` feature matrices."""
        x = torch.from_numpy(np.stack(feats)).to(self.module.device)
        return self.module(x).float().cpu()


def model_kind(module: torch.nn.Module) -> str:
    """``"keyword"`` or ``"ctc"``: the class's ``kind`` attribute (every kwslab model sets one), else ``"ctc"`` for
    a module with a character vocabulary (``vocab``), else ``"keyword"``. Every command asks this, nothing else."""
    kind = getattr(type(module), "kind", None)
    if kind in KINDS:
        return kind
    if kind is not None:
        raise CheckpointError(f"{type(module).__qualname__}.kind is {kind!r}; it must be one of {', '.join(KINDS)}")
    return "ctc" if isinstance(getattr(module, "vocab", None), CharVocab) else "keyword"


def _model_class(class_path: str, ckpt_path: Path) -> type[L.LightningModule]:
    """The model class a checkpoint names; only kwslab's own and allowed ones are imported
    (:func:`kwslab.models.base.class_allowed`: ``--allow-class`` or ``$KWSLAB_ALLOW_CLASSES``)."""
    try:
        return resolve_class(class_path, L.LightningModule, "model class")
    except ValueError as exc:
        raise CheckpointError(f"{ckpt_path}: {exc}") from None


def _check_net_class(hparams: dict[str, Any], ckpt_path: Path) -> None:
    """The network class a checkpoint names, checked before the model class builds (and imports) it."""
    net = hparams.get("net")
    if isinstance(net, dict) and "class_path" in net and not class_allowed(str(net["class_path"])):
        raise CheckpointError(f"{ckpt_path}: {untrusted_class_message(net['class_path'], 'model.net')}")


def check_single_source(ckpt: dict[str, Any], hparams: dict[str, Any], path: Path) -> None:
    """The model's ``feature_config`` and ``labels`` are the checkpoint's one source of truth. Checkpoints written
    before that also stored the datamodule's ``features`` (and, for CTC, ``chars``/``blank_first``): they load when
    both copies agree; a mismatch raises CheckpointError naming both values."""
    data = ckpt.get("datamodule_hyper_parameters") or {}
    if data.get("features") and hparams.get("feature_config"):
        model_cfg = FeatureConfig.from_dict(dict(hparams["feature_config"]))
        data_cfg = FeatureConfig.from_dict(dict(data["features"]))
        if model_cfg != data_cfg:
            raise CheckpointError(f"{path}: two different feature settings: the model's feature_config "
                                  f"{model_cfg.to_dict()} and the datamodule's features {data_cfg.to_dict()}; "
                                  "retrain, or fix the checkpoint so both agree")
    if "chars" in data and hparams.get("labels") is not None:
        data_tokens = CharVocab(data["chars"], data.get("blank_first", True)).tokens
        if list(data_tokens) != list(hparams["labels"]):
            raise CheckpointError(f"{path}: two different vocabularies: the model's labels {list(hparams['labels'])} "
                                  f"and the datamodule's chars {data['chars']!r} (blank_first="
                                  f"{data.get('blank_first', True)}); retrain, or fix the checkpoint")


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a kwslab checkpoint for inference (eval mode, on ``device``).

    The classes the checkpoint names (``_class_path``, ``net.class_path``) are imported only when they are kwslab's
    or allowed (:func:`kwslab.models.base.allowed_classes`, ``$KWSLAB_ALLOW_CLASSES``): a checkpoint is data and
    must not choose which module runs.

    Raises:
        CheckpointError: naming the file, when it is not a usable kwslab checkpoint.
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    cls = _model_class(hparams.get("_class_path", DEFAULT_CLASS), path)
    upgrade = getattr(cls, "upgrade_hparams", None)
    if upgrade is not None:  # a model class that changed its arguments reads its older checkpoints
        hparams = upgrade(hparams)
        cls = _model_class(hparams.get("_class_path", DEFAULT_CLASS), path)
    _check_net_class(hparams, path)
    kwargs = {k: v for k, v in hparams.items() if not k.startswith("_")}
    kwargs.update(init_from=None) if "init_from" in kwargs else None  # never chase the training-time source
    if not kwargs.get("feature_config") or not kwargs.get("labels"):
        raise CheckpointError(f"{path}: the checkpoint lacks feature_config/labels in its hyperparameters")
    try:
        check_single_source(ckpt, kwargs, path)
    except (TypeError, ValueError) as exc:  # a FeatureConfig field that is not valid (CheckpointError passes on)
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: broken feature settings in the checkpoint: {exc}") from None
    try:
        module = cls(**kwargs)
        module.load_state_dict(ckpt["state_dict"])
    except UntrustedClassError as exc:  # a class named deeper in the hyperparameters
        raise CheckpointError(f"{path}: {exc}") from None
    except (TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild {cls.__name__} from it: {exc}") from None
    module.eval().to(device)
    return LoadedModel(module, FeatureConfig.from_dict(dict(kwargs["feature_config"])), list(kwargs["labels"]),
                       path, ckpt, model_kind(module))
