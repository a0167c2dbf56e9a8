"""A config's recipe: which manifests it reads, whether its datamodule makes them itself, and the commands in the
config's header comment that make them. ``kwslab.fit`` asks :func:`missing_data_message` before building anything,
so a recipe run from a clean checkout stops with one line naming the missing manifest and the exact prepare
command(s), instead of a traceback halfway into training.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import lightning as L

from kwslab.data.datamodules import KeywordDataModule

__all__ = ["header_commands", "header_recipes", "missing_data_message", "prepare_commands"]

# header commands that make data (the fit command itself, evaluate, adapt, ... are not among them)
_PREPARE_COMMAND = re.compile(r"python3? (-m kwslab\.(prepare|tts)\b|scripts/)")
_FIT_COMMAND = re.compile(r"python3? -m kwslab\.fit\b")


def header_commands(config: str | os.PathLike[str]) -> list[str]:
    """The shell commands in a config's header (its leading ``#`` lines): lines starting with ``python``, their
    ``\\`` continuation lines joined and a trailing ``# comment`` dropped."""
    commands: list[str] = []
    current: str | None = None
    for line in Path(config).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if current is None:
            if not text.startswith("python"):
                continue
            current = text
        else:
            current += " " + text
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        commands.append(re.sub(r"\s+#.*$", "", current))
        current = None
    return commands


def header_recipes(config: str | os.PathLike[str]) -> list[tuple[list[str], list[str]]]:
    """A config header's recipes: ``(prepare commands, config file names of the fit command they precede)``, in
    order; prepare commands after the last fit command form a recipe with no configs."""
    recipes: list[tuple[list[str], list[str]]] = []
    prepare: list[str] = []
    for command in header_commands(config):
        if _FIT_COMMAND.match(command):
            if prepare:
                recipes.append((prepare, [Path(c).name for c in re.findall(r"--config[= ](\S+)", command)]))
            prepare = []
        elif _PREPARE_COMMAND.match(command):
            prepare.append(command)
    if prepare:
        recipes.append((prepare, []))
    return recipes


def _mentions(command: str, folder: Path) -> bool:
    """Whether one of the command's words is ``folder`` or a path inside it (``data/sc12`` is not
    ``data/sc12_full``)."""
    target = folder.as_posix().rstrip("/")
    return any(word.rstrip("/") == target or word.startswith(target + "/") for word in command.split())


def prepare_commands(manifest: str, configs: list[str], setter: str | None) -> tuple[list[str], str | None]:
    """The header commands that make ``manifest``, and the config whose header holds them.

    ``setter`` is the config file that gave the manifest's value (else every config's header is searched, last
    first). Within a header, the recipe whose fit command names the same config files wins, then the first recipe
    whose commands write into the manifest's folder, then the only recipe; else all its prepare commands."""
    names = [Path(c).name for c in configs]
    folder = Path(manifest).parent
    for config in ([setter] if setter else list(reversed(configs))):
        try:
            recipes = header_recipes(config)
        except OSError:
            continue
        if not recipes:
            continue
        chosen = (next((r for r, fit in recipes if fit == names), None)
                  or next((r for r, _ in recipes if any(_mentions(c, folder) for c in r)), None)
                  or (recipes[0][0] if len(recipes) == 1 else [c for r, _ in recipes for c in r]))
        return chosen, config
    return [], None


def _manifest_values(value: Any) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, (list, tuple)):
        return [os.fspath(v) for v in value if isinstance(v, (str, os.PathLike))]
    return []


def _config_value(config: str, key: str) -> Any:
    """``data.init_args.<key>`` as the YAML file ``config`` writes it (None when it does not, or cannot be read)."""
    import yaml

    try:
        loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
        return ((loaded.get("data") or {}).get("init_args") or {}).get(key)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):  # unreadable, not YAML, not a mapping
        return None


def _prepares_itself(data: Any) -> bool:
    """Whether the configured datamodule builds its own data (a ``prepare_data`` of its own, or a ``prepare``
    hook), so that missing manifests are its business, not the user's."""
    module, _, name = str(data.get("class_path", "")).rpartition(".")
    cls = getattr(sys.modules.get(module), name, None)  # imported by the parser: no import here
    if not isinstance(cls, type):
        return True  # unknown: say nothing, the datamodule will
    init_args = data.get("init_args") or {}
    generic = (L.LightningDataModule.prepare_data, KeywordDataModule.prepare_data)
    return getattr(cls, "prepare_data", None) not in generic or init_args.get("prepare") is not None


def missing_data_message(data: Any, configs: list[str], test: bool = True) -> str | None:
    """One line when the datamodule's manifests (``*_manifest`` arguments; the test one only when testing) do not
    exist and it does not make them: the first missing manifest, its key, the others missing, and the prepare
    commands from the config's header. None when nothing is missing."""
    if data is None or _prepares_itself(data):
        return None
    init_args = data.get("init_args") or {}
    missing: list[tuple[str, str]] = []
    for key in sorted(k for k in dict(init_args) if k.endswith("_manifest")):
        if key == "test_manifest" and not test:
            continue
        missing += [(key, path) for path in _manifest_values(init_args.get(key)) if not Path(path).exists()]
    if not missing:
        return None
    order = {"train_manifest": 0, "val_manifest": 1, "test_manifest": 2}
    missing.sort(key=lambda kp: order.get(kp[0], 3))
    key, path = missing[0]
    setter = next((c for c in reversed(configs) if _manifest_values(_config_value(c, key)) ==
                   _manifest_values(init_args.get(key))), None)
    commands, source = prepare_commands(path, configs, setter)
    text = f"manifest {path} not found (data.init_args.{key}"
    others = [p for _, p in missing[1:]]
    if others:
        text += f"; missing too: {', '.join(others)}"
    text += ")"
    if commands:
        text += (f"; prepare the data first with the command{'s' if len(commands) > 1 else ''} in the header of "
                 f"{source}, then run this again: {' && '.join(commands)}")
    else:
        text += ("; make it with python -m kwslab.prepare (--help lists the corpora) or fix the path (relative "
                 "paths start in the working directory)")
    return text
