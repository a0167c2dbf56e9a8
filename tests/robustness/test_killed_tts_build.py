"""``kill -9`` of a TTS build (issue 18, defect 9): its worker processes and the corpus build ``fit`` starts die
with it, nothing unlisted or half-written stays behind, and a re-run resumes into a consistent folder.

Linux only: the process tree is read from ``/proc``. Every child is bounded by a timeout and killed at the end.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from kwslab.tts import BuildConfig, build_dataset, make_plan
from kwslab.tts.corpus import build_keyword_corpus

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")

REPO = Path(__file__).resolve().parents[2]
VOICES = ["en-us+m1", "en-us+f1", "en+m3", "en+f2", "en-gb-x-rp+m5", "en-gb-x-rp+f4", "en-029+m7", "en-us-nyc"]


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) and st[0] == pid and st[1] != "Z":
            out.append(int(entry.name))
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] not in ("Z", "X")  # an orphan's zombie is dead even if nobody reaps it


def _wait_for(condition: Callable[[], bool], timeout: float, what: str,
              running: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if running is not None and running.poll() is not None:
            raise AssertionError(f"exited ({running.returncode}) before {what}: {running.stderr.read()[-2000:]!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _wavs(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.wav")}


def _manifest_names(manifest: Path) -> list[str]:
    with manifest.open(newline="") as f:
        return [row["filename"] for row in csv.DictReader(f)]


def _kill_tree(proc: subprocess.Popen, pids: list[int]) -> None:
    """Clean-up: whatever of the tree still runs (only when the code under test failed)."""
    for pid in [proc.pid, *pids]:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _spawn(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            **kwargs)


def test_killed_build_leaves_no_workers_and_rerun_resumes_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "tts"
    cfg = dict(out=str(out), keywords=["yes", "no", "up", "down"], voices=VOICES, per_voice=4, concurrency=2,
               progress=False)  # 128 clips: 8 tasks over 2 worker processes, several seconds of work
    proc = _spawn(["-m", "kwslab.tts", "--out", str(out), "--keywords", *cfg["keywords"], "--voices", *VOICES,
                   "--per-voice", "4", "--concurrency", "2", "--no-progress"])
    workers: list[int] = []
    try:
        _wait_for(lambda: len([p for p in _descendants(proc.pid) if "spawn_main" in _cmdline(p)]) >= 2, 60,
                  "the build's worker processes", proc)
        _wait_for(lambda: len(_wavs(out)) >= 10, 60, "the first clips", proc)
        workers = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _wait_for(lambda: not any(_alive(p) for p in workers), 5, f"the workers {workers} to die with the build")
        on_disk = _wavs(out)
        time.sleep(0.5)
        assert _wavs(out) == on_disk, "nothing writes into the folder after the kill"
        listed = _manifest_names(out / "manifest.csv")
        assert listed, f"header-only manifest beside {len(on_disk)} clips"
        assert len(listed) == len(set(listed)) and set(listed) <= on_disk
        # a worker killed between writing a clip and appending its row leaves at most that one clip unlisted
        assert len(on_disk - set(listed)) <= len(workers), sorted(on_disk - set(listed))
    finally:
        _kill_tree(proc, workers)

    # what a kill at another moment leaves: temp files of half-written clips and of a manifest rewrite
    stale = [out / "wav" / "yes" / ".en-us_m1_0.wav.dead.tmp", out / ".manifest.csv.dead.tmp"]
    for path in stale:
        path.write_bytes(b"RIFF")
    summary = build_dataset(BuildConfig(**cfg), log=lambda s: None)
    plan = make_plan(BuildConfig(**cfg))
    assert summary.failed == [] and summary.skipped + summary.generated == len(plan) == 128
    assert summary.skipped >= len(listed)
    assert sorted(_manifest_names(out / "manifest.csv")) == sorted(it.filename for it in plan) == sorted(_wavs(out))
    assert not list(out.rglob("*.tmp")), list(out.rglob("*.tmp"))


def test_corpus_build_started_by_a_datamodule_dies_with_it(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    args = dict(keywords=["yes", "no"], unknown_words=["up", "down", "left", "right"], voices=VOICES, per_voice=8)
    script = ("import sys; from kwslab.tts.datamodules import SyntheticKeywordDataModule as D; "
              f"D(root=sys.argv[1], keywords={args['keywords']!r}, unknown_words={args['unknown_words']!r}, "
              f"voices={VOICES!r}, per_voice=8, features={{'num_frames': 101}}).prepare_data()")
    proc = _spawn(["-c", script, str(root)])
    tree: list[int] = []
    try:
        _wait_for(lambda: any("kwslab.tts.corpus" in _cmdline(p) for p in _children(proc.pid)), 120,
                  "the corpus build process", proc)
        _wait_for(lambda: len(_wavs(root)) >= 5, 60, "the first clips", proc)
        tree = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _wait_for(lambda: not any(_alive(p) for p in tree), 2,
                  f"the corpus build and its workers {[(p, _cmdline(p)[:80]) for p in tree if _alive(p)]} to die")
        on_disk = _wavs(root)
        time.sleep(0.5)
        assert _wavs(root) == on_disk, "nothing writes into the corpus after the kill"
    finally:
        _kill_tree(proc, tree)

    (root / "silence").mkdir(exist_ok=True)
    stale = [root / ".train.csv.dead.tmp", root / "silence" / ".white_0000.wav.dead.tmp"]
    for path in stale:
        path.write_bytes(b"x")
    paths = build_keyword_corpus(root, **args, progress=False)  # resumes
    assert all(p.is_file() for p in paths.values())
    assert not list(root.rglob("*.tmp")), list(root.rglob("*.tmp"))
    keyword_rows = _manifest_names(root / "tts" / "keywords" / "manifest.csv")
    assert len(keyword_rows) == len(set(keyword_rows)) == 2 * len(VOICES) * 8
