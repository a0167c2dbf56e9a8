"""Caches for decoded audio and clean features, keyed by the file's identity (NumPy only, no torch).

An entry's key is a digest of the audio file's absolute path, modification time (ns) and size, plus a
``namespace`` that names what is stored (``FeatureConfig.fingerprint()`` for features, the sample rate for
waveforms), so editing a file or changing a feature setting can never return a stale array.

* Memory: a plain dict per process, up to ``max_memory_mb``. When full, new entries are simply not kept
  (no eviction): datasets read every clip once per epoch, an access pattern for which LRU eviction would
  miss on every read, while "keep the first N" keeps hitting on those N.
* Disk (optional, ``cache_dir``): ``<cache_dir>/<namespace>/<key[:2]>/<key>.npy``, written to a temp file in
  the same folder and renamed, so concurrent DataLoader workers share it safely and a crash never leaves a
  half-written entry. An unreadable entry counts as a miss and is rewritten.

``memory_hits``, ``disk_hits`` and ``misses`` count lookups in this process (DataLoader workers keep their own
counts; use ``num_workers=0`` to read them in tests).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["ArrayCache", "file_key"]


def file_key(path: str | os.PathLike[str], namespace: str = "") -> str:
    """Hex digest of (absolute path, mtime_ns, size, namespace).

    Raises:
        FileNotFoundError: naming the file when it does not exist.
    """
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"audio file not found: {path}") from None
    ident = f"{path}\0{st.st_mtime_ns}\0{st.st_size}\0{namespace}"
    return hashlib.blake2b(ident.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


class ArrayCache:
    """Memory (and optionally disk) cache of one array per audio file.

    Args:
        namespace: What the arrays are (e.g. ``"features-<fingerprint>"``); part of every key and the disk
            sub-folder name, so different settings never share entries.
        cache_dir: Folder for ``.npy`` entries, or None for memory only.
        memory: Keep arrays in this process's memory.
        max_memory_mb: Memory budget in MiB (default 1024) per process; 0 disables memory caching.
    """

    def __init__(self, namespace: str, cache_dir: str | os.PathLike[str] | None = None, *, memory: bool = True,
                 max_memory_mb: float = 1024.0) -> None:
        if not namespace or any(c in namespace for c in "/\\\0") or namespace in {".", ".."}:
            raise ValueError(f"ArrayCache: namespace must be a plain folder name, got {namespace!r}")
        if max_memory_mb < 0:
            raise ValueError(f"ArrayCache: max_memory_mb must be >= 0, got {max_memory_mb!r}")
        self.namespace = namespace
        self.folder = Path(cache_dir).expanduser().absolute() / namespace if cache_dir is not None else None
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"cannot create cache folder {self.folder}: {exc}; set cache_dir to a writable "
                                 "folder or to null") from None
        self.max_memory_bytes = int(max_memory_mb * 2**20) if memory else 0
        self._memory: dict[str, np.ndarray] = {}
        self.memory_bytes = 0
        self.memory_hits = self.disk_hits = self.misses = 0

    @property
    def hits(self) -> int:
        """Memory plus disk hits."""
        return self.memory_hits + self.disk_hits

    def reset_counters(self) -> None:
        """Set the hit and miss counters to zero (entries are kept)."""
        self.memory_hits = self.disk_hits = self.misses = 0

    def clear_memory(self) -> None:
        """Drop the in-memory entries (the disk cache is kept)."""
        self._memory.clear()
        self.memory_bytes = 0

    def disk_path(self, key: str) -> Path | None:
        """Where the entry for ``key`` lives on disk (None without ``cache_dir``)."""
        return None if self.folder is None else self.folder / key[:2] / f"{key}.npy"

    def get(self, path: str | os.PathLike[str], compute: Callable[[Path], np.ndarray]) -> np.ndarray:
        """Return the cached array for ``path``, calling ``compute(path)`` on a miss.

        The returned array is read-only (it is shared with the cache); copy it before changing it.
        """
        key = file_key(path, self.namespace)
        array = self._memory.get(key)
        if array is not None:
            self.memory_hits += 1
            return array
        array = self._read_disk(key)
        if array is not None:
            self.disk_hits += 1
        else:
            self.misses += 1
            array = np.ascontiguousarray(compute(Path(path)))
            self._write_disk(key, array)
        array.setflags(write=False)
        if self.memory_bytes + array.nbytes <= self.max_memory_bytes:
            self._memory[key] = array
            self.memory_bytes += array.nbytes
        return array

    def _read_disk(self, key: str) -> np.ndarray | None:
        target = self.disk_path(key)
        if target is None or not target.is_file():
            return None
        try:
            return np.load(target, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # truncated/corrupt entry (e.g. written by other software)
            return None

    def _write_disk(self, key: str, array: np.ndarray) -> None:
        target = self.disk_path(key)
        if target is None:
            return
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key}.", suffix=".tmp")
        except FileNotFoundError:  # first entry of this sub-folder (mkdir only then: it costs a syscall)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, array, allow_pickle=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return len(self._memory)

    def __repr__(self) -> str:
        return (f"ArrayCache({self.namespace!r}, folder={self.folder}, entries={len(self)}, "
                f"memory_hits={self.memory_hits}, disk_hits={self.disk_hits}, misses={self.misses})")
