"""Loading checkpoints safely, and moving weights between models.

Checkpoints are read with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only, so an
untrusted file cannot run pickled code. Everything inference needs is plain data in ``hyper_parameters``.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from kwslab.files import atomic_write

__all__ = ["BUILTIN", "CheckpointError", "OutputExistsError", "atomic_write", "check_output", "load_checkpoint",
           "resolve_checkpoint", "save_checkpoint", "transfer_weights"]  # atomic_write: kwslab.files, for export

# Checkpoints shipped inside the package, named ``builtin:<name>`` wherever a checkpoint path is taken
# (``init_from``, ``--ckpt``). Each says in its ``kwslab_pretrained`` key how it was made.
PRETRAINED = Path(__file__).resolve().parent / "pretrained"
BUILTIN = {"speech_embedding": PRETRAINED / "speech_embedding.ckpt"}
_BUILTIN_RECIPES = {"speech_embedding": "python scripts/train_embedding.py"}


def resolve_checkpoint(path: str | Path) -> Path:
    """``builtin:<name>`` -> the package's file; anything else -> ``Path(path)``.

    Raises:
        CheckpointError: for an unknown builtin name, or a builtin whose file is missing from this installation.
    """
    text = str(path)
    if not text.startswith("builtin:"):
        return Path(path)
    name = text[len("builtin:"):]
    if name not in BUILTIN:
        raise CheckpointError(f"{text}: no such built-in checkpoint; the package ships {', '.join(sorted(BUILTIN))} "
                              "(write builtin:<name>)")
    if not BUILTIN[name].is_file():
        raise CheckpointError(f"{text}: {BUILTIN[name]} is missing from this installation; reinstall kwslab, or "
                              f"make it again with {_BUILTIN_RECIPES[name]}")
    return BUILTIN[name]


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable, or not a kwslab checkpoint."""


def describe_file(path: Path) -> str:
    """What a file that torch could not load as a checkpoint looks like, from its size and first bytes (never
    quoting them): empty, a truncated zip archive, an old-style pickle, text, or something else."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if size == 0:
        return "is empty (0 bytes): a save or copy that never finished; use another checkpoint"
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            return (f"is a truncated or damaged zip archive ({size} bytes): a save or copy cut short; copy it again "
                    "or use another checkpoint")
        return "is a zip archive but not a readable PyTorch checkpoint"
    if head[:1] == b"\x80":
        return (f"is a damaged or truncated pickle file ({size} bytes), not a checkpoint kwslab can read; use a "
                "checkpoint written by python -m kwslab.fit")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut by the 512-byte read is still text
        text = head[:exc.start].decode("utf-8") if exc.start >= len(head) - 3 and exc.start > 0 else None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        return "is a text file, not a checkpoint; pass the .ckpt written by python -m kwslab.fit"
    return (f"is not a PyTorch checkpoint (neither a zip archive nor a pickle; {size} bytes); pass the .ckpt "
            "written by python -m kwslab.fit")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a Lightning checkpoint with ``weights_only=True`` (no arbitrary code execution).

    Raises:
        CheckpointError: naming the file, when it is missing, not a checkpoint (saying what it is instead: empty,
            truncated, text...), or holds non-plain objects.
    """
    path = resolve_checkpoint(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; pass the .ckpt file inside it")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() and zipfile.is_zipfile(path):  # a real checkpoint with objects
            raise CheckpointError(
                f"{path}: holds pickled objects other than tensors and plain data, so it cannot be loaded safely; "
                "kwslab loads checkpoints with weights_only=True and will not execute pickled code. Use a checkpoint "
                "written by python -m kwslab.fit") from None
        raise CheckpointError(f"{path}: {describe_file(path)}") from None
    except Exception:  # torch raises many types (EOFError, RuntimeError, IndexError...) for files it cannot read
        raise CheckpointError(f"{path}: {describe_file(path)}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return ckpt


class OutputExistsError(ValueError):
    """An output path that is a folder, or an existing file not to be replaced without ``--force``."""


def check_output(out: str | Path, force: bool = False, flag: str = "--out") -> Path:
    """Refuse an output path before any work is done: a folder, or an existing file unless ``force``.

    Raises:
        OutputExistsError: naming the path and the flag, and saying what to do.
    """
    out = Path(out)
    if out.is_dir():
        raise OutputExistsError(f"{flag} {out}: is a folder; name the file to write, e.g. {out / 'model'}"
                                f"{out.suffix or ''}")
    if out.exists() and not force:
        raise OutputExistsError(f"{flag} {out}: the file exists; pass --force to replace it, or choose a new name")
    return out


def save_checkpoint(data: Mapping[str, Any], out: str | Path) -> Path:
    """Write a checkpoint dict to ``out`` atomically (:func:`kwslab.files.atomic_write`: a temp file in the same
    folder, then a rename; a new file gets the umask's mode, a replaced one keeps its own). Callers that must not
    replace another file check first with :func:`check_output`."""
    return atomic_write(out, lambda f: torch.save(dict(data), f))


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
