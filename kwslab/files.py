"""Writing files so that nothing is ever half-written: the one atomic writer every output goes through.

``write(f)`` fills a temp file in the target's folder, an optional ``check(tmp_path)`` may inspect it (raise to
abandon it), then ``os.replace`` puts it in place. A crash, a kill or a full disk leaves either the old file or the
new one, never a mix; the temp file is removed on failure. The temp name (``.<name>.<random>.tmp``) is the one the
preparers' stale-temp cleanup recognises.

Mode: a new file gets the usual mode for the umask (0644 under umask 022, not ``mkstemp``'s 0600); a replaced file
keeps its own mode.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

__all__ = ["atomic_write", "atomic_write_text", "umask"]


def umask() -> int:
    """The process's umask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(out: str | os.PathLike[str], write: Callable[[IO[Any]], None],
                 check: Callable[[str], None] | None = None, *, text: bool = False) -> Path:
    """Write ``out`` atomically through ``write(f)``; ``f`` is binary, or UTF-8 text with ``text=True``.

    Returns:
        ``out`` as a Path.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = out.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~umask()
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "w", encoding="utf-8", newline="") if text else os.fdopen(fd, "wb")) as f:
            write(f)
        os.chmod(tmp, mode)
        if check is not None:
            check(tmp)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def atomic_write_text(out: str | os.PathLike[str], content: str) -> Path:
    """Write UTF-8 ``content`` to ``out`` atomically (see :func:`atomic_write`)."""
    return atomic_write(out, lambda f: f.write(content), text=True)
