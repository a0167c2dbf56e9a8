"""What both adaptation methods share: the error type, where the record goes in the checkpoint, the audio to adapt
on, and writing the adapted checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from kwslab.checkpoint import save_checkpoint
from kwslab.data.manifest import read_manifest
from kwslab.inference.loaded import LoadedModel

ADAPTATION_KEY = "kwslab_adaptation"  # checkpoint key of what a model was adapted on (a chain when repeated)


class AdaptationError(ValueError):
    """Adaptation cannot run (message says why and what to do)."""


def audio_files(paths: Iterable[str | Path] = (), manifest: str | Path | None = None) -> list[Path]:
    """The WAV files named by a manifest (its keyword/transcript columns are ignored) and/or files and folders.

    Raises:
        AdaptationError: listing every path that is missing or an empty folder (all at once).
    """
    files: list[Path] = []
    problems: list[str] = []
    if manifest is not None:
        files += [Path(r.path) for r in read_manifest(manifest, need_keyword=False)]
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() == ".wav")
            if not found:
                problems.append(f"{p}: the folder holds no .wav file")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    if len(problems) == 1:
        raise AdaptationError(problems[0])
    if problems:
        raise AdaptationError(f"{len(problems)} paths cannot be used; fix them and run again:\n"
                              + "\n".join(f"  {line}" for line in problems))
    return files


def save_adapted(model: LoadedModel, out: str | Path, info: dict) -> Path:
    """Write ``model``'s checkpoint with its adapted state and ``info`` under ``kwslab_adaptation`` (atomic)."""
    data = dict(model.checkpoint)
    data["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.module.state_dict().items()}
    data[ADAPTATION_KEY] = info
    return save_checkpoint(data, out)
