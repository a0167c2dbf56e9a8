"""Resumable, checksum-verified downloads and archive extraction that refuses unsafe members.

Standard library only (``urllib``, ``tarfile``, ``zipfile``). A download goes to ``<dest>.part``; when
that file exists, the next attempt asks the server for the rest with an HTTP ``Range`` header (and starts
over if the server ignores it). The finished file is checked against a SHA-256 before it is renamed into
place; a mismatch deletes it and raises, so nothing unverified is ever unpacked.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["DownloadError", "UnsafeArchiveError", "download", "sha256_file", "extract_archive", "remove_stale_temp_files"]

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download or checksum failed; the message says what to do."""


class _CutOff(DownloadError):
    """The server closed the connection before the whole body arrived (resumable)."""


class UnsafeArchiveError(DownloadError):
    """The archive has members that would escape the target folder (``..``, absolute paths, links)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One HTTP attempt, appending to ``part`` from its current size. Raises on an incomplete body."""
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "kwslab-downloader"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:
            return  # nothing left to send: the .part file is already complete (checksum decides)
        raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    with resp:
        status = getattr(resp, "status", None) or 200  # file: URLs have no status
        mode = "ab"
        if start and status == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != start:
                raise DownloadError(f"download of {url}: server answered range {resp.headers.get('Content-Range')!r} "
                                    f"for a request from byte {start}; delete {part} and retry")
        elif status == 200:
            mode, start = "wb", 0  # server ignored the Range header: start over
        else:
            raise DownloadError(f"download of {url} failed: unexpected HTTP status {status}")
        length = resp.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        received = 0
        last = time.monotonic()
        with open(part, mode) as f:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                received += len(block)
                if progress and time.monotonic() - last > 2.0:
                    last = time.monotonic()
                    total = f" of {(start + expected) / 1e6:.1f} MB" if expected is not None else ""
                    print(f"  {(start + received) / 1e6:.1f} MB{total}", file=sys.stderr, flush=True)
    if expected is not None and received < expected:
        raise _CutOff(f"download of {url} was cut off after {start + received} bytes "
                            f"(expected {start + expected}); run again to resume from {part}")


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous ``dest.part`` and verifying ``sha256``.

    Args:
        url: http(s) or file URL.
        dest: Final file path; its folder is created.
        sha256: Expected hex digest; ``None`` skips verification.
        retries: Extra attempts (each resuming where the last stopped) after a cut-off transfer.
        timeout: Socket timeout in seconds.
        progress: Print progress lines to stderr.

    Returns:
        ``dest``. An existing ``dest`` that matches ``sha256`` (or any existing ``dest`` when ``sha256`` is
        None) is returned without downloading.

    Raises:
        DownloadError: on HTTP/network failure after the retries (the ``.part`` file is kept for resuming),
            or on a checksum mismatch (the bad file is deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    want = sha256.lower().strip() if sha256 else None
    if dest.exists():
        if want is None or sha256_file(dest) == want:
            return dest
        raise DownloadError(f"{dest} exists but its SHA-256 is not {want}; delete it to download again")
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, timeout, progress)
            break
        except (_CutOff, urllib.error.URLError, http.client.HTTPException, OSError) as e:
            if attempt == retries:
                msg = str(e) if isinstance(e, DownloadError) else f"download of {url} failed: {e!r}"
                kept = f"; partial data kept in {part}, run again to resume" if part.exists() else ""
                raise DownloadError(msg + kept) from None
            time.sleep(min(2.0**attempt, 10.0) * 0.1)
    if want is not None:
        got = sha256_file(part)
        if got != want:
            part.unlink(missing_ok=True)
            raise DownloadError(f"checksum mismatch for {url}: SHA-256 {got}, expected {want}. The file was deleted "
                                "and nothing was unpacked; check the URL/--sha256 and retry")
    os.replace(part, dest)
    return dest


def _unsafe_reason(name: str) -> str | None:
    if not name:
        return "empty name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return "'..' in path"
    return None


def _check_members(archive: Path) -> list[tuple[str, bool]]:
    """Validate every member before anything is written: return (name, is_dir) pairs or raise."""
    bad: list[str] = []
    members: list[tuple[str, bool]] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                mode = info.external_attr >> 16
                reason = _unsafe_reason(info.filename)
                if reason is None and stat.S_ISLNK(mode):
                    reason = "symbolic link"
                if reason:
                    bad.append(f"{info.filename!r} ({reason})")
                members.append((info.filename, info.is_dir()))
    else:
        try:
            with tarfile.open(archive, "r:*") as tf:
                for m in tf:
                    reason = _unsafe_reason(m.name)
                    if reason is None and (m.issym() or m.islnk()):
                        reason = f"link to {m.linkname!r}"
                    elif reason is None and not (m.isfile() or m.isdir()):
                        reason = "device/fifo/special file"
                    if reason:
                        bad.append(f"{m.name!r} ({reason})")
                    members.append((m.name, m.isdir()))
        except tarfile.TarError as e:
            raise DownloadError(f"{archive} is not a readable tar/zip archive: {e}") from None
    if bad:
        shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise UnsafeArchiveError(f"refusing to unpack {archive}: {len(bad)} unsafe member(s):\n  {shown}")
    return members


_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # write_wav, mkstemp(prefix=".name.", suffix=".tmp")
STALE_TEMP_S = 60.0  # a temp file untouched this long belongs to a killed run, not to one still writing


def remove_stale_temp_files(folder: str | os.PathLike[str], *, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Delete the hidden ``.NAME.XXXX.tmp`` files our atomic writers leave when a run is killed (``kill -9``
    skips their cleanup), anywhere under ``folder``, if untouched for ``older_than_s`` seconds. A download's
    ``.part`` file is kept (it is resumed). Returns the files removed; a missing folder removes nothing."""
    root = Path(folder)
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if not _TEMP_NAME.match(name):
                continue
            path = Path(dirpath) / name
            try:
                st = path.lstat()
                if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue
    return removed


def _write_member(src, target: Path) -> None:  # type: ignore[no-untyped-def]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(src, f, CHUNK)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Unpack a ``.tar``/``.tar.gz``/``.tgz``/``.zip`` into ``dest`` after checking every member.

    Only regular files and folders are accepted; absolute paths, ``..`` components, symbolic and hard
    links and special files make the whole archive refused before anything is written.

    Returns:
        The extracted file paths.

    Raises:
        UnsafeArchiveError: naming the offending members; DownloadError: for an unreadable archive.
    """
    archive, dest = Path(archive), Path(dest)
    _check_members(archive)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = dest / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                with zf.open(info) as src:
                    _write_member(src, target)
                written.append(target)
        return written
    with tarfile.open(archive, "r:*") as tf:
        for m in tf:
            target = dest / m.name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            src = tf.extractfile(m)
            if src is None:  # pragma: no cover - regular files always have data
                continue
            with src:
                _write_member(src, target)
            written.append(target)
    return written
