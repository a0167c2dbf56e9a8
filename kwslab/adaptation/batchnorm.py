"""BatchNorm adaptation (AdaBN, Li et al. 2016): re-estimate every BatchNorm layer's statistics on unlabelled audio
from a new speaker, microphone or domain. Weights are not touched, so a wrong label cannot be learnt.

Layer by layer in forward order, each layer's statistics are measured on its inputs as they are once the layers
before it have been adapted, exactly (sums over every frame, not a running average of batch statistics). Works for
any network with BatchNorm layers that keep running statistics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from kwslab.adaptation.common import ADAPTATION_KEY, AdaptationError, save_adapted
from kwslab.inference.loaded import LoadedModel, load_model

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)  # lazy variants subclass these


def _adaptable(m: nn.Module) -> bool:
    return isinstance(m, BATCH_NORMS) and m.running_mean is not None


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layer being measured has seen its input."""


def batchnorm_layers(module: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The BatchNorm layers of ``module`` that keep running statistics, in the order a forward pass over
    ``example`` calls them (layers that always use batch statistics have nothing to adapt)."""
    order: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda mod, _inp: order.append(mod) if mod not in order else None)
             for m in module.modules() if _adaptable(m)]
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
    :meth:`kwslab.inference.loaded.LoadedModel.features_of`.
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
    ``cache``: features shared with other calls (see :meth:`kwslab.inference.loaded.LoadedModel.features_of`)."""
    if not any(_adaptable(m) for m in model.module.modules()):
        raise AdaptationError(f"{model.path}: the model has no BatchNorm layer with running statistics, so there "
                              "is nothing to adapt")
    if not files:
        raise AdaptationError("no audio files to adapt on")
    return adapt_batchnorm(model.module, model_inputs(model, files, cache=cache), strength)


def adapt_checkpoint(ckpt: str | Path, out: str | Path, files: Sequence[str | Path], strength: float = 1.0) -> dict:
    """Load ``ckpt``, adapt it to ``files`` and save the result to ``out``; returns what was recorded."""
    if Path(out).resolve() == Path(ckpt).resolve():
        raise AdaptationError(f"{out}: --out is the source checkpoint; write the adapted model to a new file")
    model = load_model(ckpt)
    layers = adapt_model(model, files, strength)
    info = {"source": str(ckpt), "model": model.kind, "method": "batchnorm", "clips": len(files), "strength": strength,
            "batchnorm_layers": layers,
            "files": [str(f) for f in files[:20]] + (["..."] if len(files) > 20 else [])}
    if ADAPTATION_KEY in model.checkpoint:  # adapting an adapted model: keep the chain
        info["previous"] = model.checkpoint[ADAPTATION_KEY]
    save_adapted(model, out, info)
    return {"out": str(out), **info}
