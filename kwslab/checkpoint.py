"""Loading checkpoints safely, and moving weights between models.

Checkpoints are read with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only, so an
untrusted file cannot run pickled code. Everything inference needs is plain data in ``hyper_parameters``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable, or not a kwslab checkpoint."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a Lightning checkpoint with ``weights_only=True`` (no arbitrary code execution).

    Raises:
        CheckpointError: naming the file, when it is missing, not a checkpoint, or holds non-plain objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types; one message for the user
        raise CheckpointError(
            f"{path}: cannot be loaded safely as a checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
            "kwslab loads checkpoints with weights_only=True and will not execute pickled code.") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return ckpt


def save_checkpoint(data: Mapping[str, Any], out: str | Path) -> Path:
    """Write a checkpoint dict to ``out`` atomically (a temp file in the same folder, then a rename): a crash or a
    full disk never leaves a half-written checkpoint, and an existing file is replaced only by a complete one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(data), f)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def transfer_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                     skip_prefixes: Iterable[str] = ()) -> list[str]:
    """Copy every tensor whose name and shape match from ``state_dict`` into ``model``.

    Args:
        model: the model to initialise.
        state_dict: source weights (e.g. a checkpoint's ``state_dict``).
        skip_prefixes: names starting with any of these are left as initialised (e.g. a head to re-train).

    Returns:
        The names copied.

    Raises:
        ValueError: when nothing matched (wrong kind of checkpoint).
    """
    skip = tuple(skip_prefixes)
    own = model.state_dict()
    copied = [k for k, v in state_dict.items()
              if k in own and not k.startswith(skip) and own[k].shape == v.shape]
    if not copied:
        raise ValueError("init_from: no weight in the checkpoint matches this model (different architecture?)")
    model.load_state_dict({k: state_dict[k] for k in copied}, strict=False)
    return copied
