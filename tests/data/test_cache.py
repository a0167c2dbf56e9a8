"""ArrayCache: memory and disk hits, keys that follow the file and the settings, atomic writes."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kwslab.data import cache as cache_module
from kwslab.data.cache import ArrayCache, file_key


class Counter:
    """A compute function that counts its calls and returns a value derived from the file's bytes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> np.ndarray:
        self.calls += 1
        return np.frombuffer(path.read_bytes(), dtype=np.uint8).astype(np.float32).reshape(1, -1)


@pytest.fixture
def audio_file(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(bytes(range(40)))
    return path


def test_memory_hits_after_first_miss(audio_file: Path) -> None:
    cache, compute = ArrayCache("features-x"), Counter()
    first = cache.get(audio_file, compute)
    for _ in range(3):
        np.testing.assert_array_equal(cache.get(audio_file, compute), first)
    assert compute.calls == 1 and cache.misses == 1 and cache.memory_hits == 3 and cache.hits == 3
    assert not first.flags.writeable  # shared with the cache
    assert cache.folder is None and cache.disk_hits == 0


def test_disk_cache_survives_a_new_instance(tmp_path: Path, audio_file: Path) -> None:
    compute = Counter()
    first = ArrayCache("features-x", tmp_path / "cache").get(audio_file, compute)
    fresh = ArrayCache("features-x", tmp_path / "cache")
    np.testing.assert_array_equal(fresh.get(audio_file, compute), first)
    assert compute.calls == 1 and fresh.disk_hits == 1 and fresh.misses == 0
    fresh.get(audio_file, compute)
    assert fresh.memory_hits == 1
    entries = list((tmp_path / "cache" / "features-x").rglob("*"))
    assert [p.suffix for p in entries if p.is_file()] == [".npy"]  # no temp files left behind


def test_namespace_or_file_change_misses(tmp_path: Path, audio_file: Path) -> None:
    compute = Counter()
    ArrayCache("features-a", tmp_path).get(audio_file, compute)
    other = ArrayCache("features-b", tmp_path)
    other.get(audio_file, compute)
    assert other.misses == 1 and compute.calls == 2
    key = file_key(audio_file, "features-a")
    audio_file.write_bytes(bytes(range(41)))  # new size
    assert file_key(audio_file, "features-a") != key
    again = ArrayCache("features-a", tmp_path)
    assert again.get(audio_file, compute).shape == (1, 41) and again.misses == 1
    st = audio_file.stat()
    os.utime(audio_file, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size, newer mtime
    again.get(audio_file, compute)
    assert again.misses == 2


def test_corrupt_disk_entry_is_recomputed(tmp_path: Path, audio_file: Path) -> None:
    compute = Counter()
    cache = ArrayCache("f", tmp_path)
    expected = cache.get(audio_file, compute)
    entry = cache.disk_path(file_key(audio_file, "f"))
    entry.write_bytes(b"\x93NUMPY garbage")
    fresh = ArrayCache("f", tmp_path)
    np.testing.assert_array_equal(fresh.get(audio_file, compute), expected)
    assert fresh.misses == 1 and compute.calls == 2
    np.testing.assert_array_equal(np.load(entry), expected)  # rewritten


def test_failed_write_leaves_no_partial_file(tmp_path: Path, audio_file: Path, monkeypatch) -> None:
    def broken_save(f, array, allow_pickle=False):
        f.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.np, "save", broken_save)
    cache = ArrayCache("f", tmp_path)
    with pytest.raises(OSError, match="disk full"):
        cache.get(audio_file, Counter())
    assert [p for p in (tmp_path / "f").rglob("*") if p.is_file()] == []


def test_memory_budget_and_disabled_memory(tmp_path: Path, audio_file: Path) -> None:
    compute = Counter()
    tiny = ArrayCache("f", max_memory_mb=1e-5)  # ~10 bytes: the 160-byte array is not kept
    tiny.get(audio_file, compute)
    tiny.get(audio_file, compute)
    assert len(tiny) == 0 and tiny.misses == 2 and compute.calls == 2
    disk_only = ArrayCache("f", tmp_path, memory=False)
    disk_only.get(audio_file, compute)
    disk_only.get(audio_file, compute)
    assert len(disk_only) == 0 and disk_only.disk_hits == 1 and disk_only.memory_hits == 0


def test_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        ArrayCache("f").get(tmp_path / "missing.wav", Counter())
    with pytest.raises(ValueError, match="namespace"):
        ArrayCache("a/b")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot create cache folder"):
        ArrayCache("f", blocker)
