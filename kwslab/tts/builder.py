"""Build a balanced TTS dataset: plan -> skip what is on disk -> synthesise the rest -> manifest.

Output folder::

    manifest.csv        filename, keyword, transcript, speaker (voice name), voice (full spec), duration
    labels.txt          the keywords, one per line
    transcripts.txt     every text spoken, one per line
    build.json          the settings (no secrets); a re-run with other generation settings is refused
    instructions.json   OpenAI only: the style instructions the voice column's ``instr=`` indexes
    wav/<keyword>/<voice-slug>_<i>.wav, wav/_sentences/<slug>-<hash>/<voice-slug>_<i>.wav

Every WAV is written atomically, and whoever wrote it (a worker process, a thread) then appends its row to
``manifest.csv`` (one ``O_APPEND`` write), so what the folder holds is listed while the build runs and after
any kill. The manifest is rewritten atomically, in plan order, at the start (the valid clips found on disk:
a re-run relists everything, even a clip whose row a kill cut off) and at the end. A re-run also removes the
temp files of killed runs, makes only what is missing and never duplicates a row. Worker processes die with
the build (:mod:`kwslab.tts.lifetime`), so ``kill -9`` leaves no orphan writing into the folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

from kwslab.audio import WavError, read_wav, resample, write_wav
from kwslab.data.manifest import MANIFEST_COLUMNS, atomic_write_text, write_manifest
from kwslab.tts.common import TTSError, postprocess
from kwslab.tts.lifetime import die_with_parent, parent_alive
from kwslab.tts.openai_tts import AuthError, OpenAISpeaker, RetryPolicy, estimate_cost, resolve_credentials
from kwslab.tts.plan import BuildConfig, PlanItem, make_plan
from kwslab.tts.progress import Progress

_BATCH = 16  # espeak clips per process-pool task


class BuildError(RuntimeError):
    """The build cannot start or had to stop (bad key, settings clash, folder in use); message says why."""


@dataclass
class BuildSummary:
    """What a build did. ``failed`` holds ``(filename, reason)``; ``requests`` counts OpenAI HTTP calls."""

    out: Path
    planned: int
    generated: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0
    dry_run: bool = False
    estimate: dict[str, float] | None = None

    @property
    def clips_per_s(self) -> float:
        """Generated clips per wall-clock second of synthesis."""
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        """Human-readable summary (several lines)."""
        lines = [f"{self.out}: planned {self.planned}, generated {self.generated}, skipped {self.skipped} "
                 f"(already present), failed {len(self.failed)}"]
        if self.generated:
            lines.append(f"  {self.seconds:.1f} s, {self.clips_per_s:.1f} clips/s"
                         + (f", {self.requests} requests" if self.requests else ""))
        reasons: dict[str, int] = {}
        for _, reason in self.failed:
            reasons[reason] = reasons.get(reason, 0) + 1
        lines += [f"  failed x{n}: {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]]
        if self.failed:
            lines.append("  re-run the same command to retry the failed samples")
        return "\n".join(lines)


def _valid_duration(path: Path, sample_rate: int) -> float | None:
    """Duration of a usable existing clip (readable, mono, right rate, non-empty), else None."""
    if not path.is_file():
        return None
    try:
        x, sr = read_wav(path)
    except (WavError, OSError):
        return None
    return len(x) / sr if sr == sample_rate and x.ndim == 1 and len(x) > 0 else None


def _row(item: PlanItem, duration: float) -> dict[str, Any]:
    return {"filename": item.filename, "keyword": item.keyword, "transcript": item.text, "speaker": item.voice,
            "voice": item.spec, "duration": round(duration, 4)}


def _append_row(manifest: Path, row: dict[str, Any]) -> None:
    """Append one row (one ``write`` on an ``O_APPEND`` descriptor: concurrent writers do not interleave)."""
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerow(["" if row.get(c) is None else row.get(c, "")
                                                   for c in MANIFEST_COLUMNS])
    try:
        fd = os.open(manifest, os.O_WRONLY | os.O_APPEND)  # no O_CREAT: a deleted manifest is rewritten at the end
    except FileNotFoundError:
        return
    try:
        os.write(fd, buf.getvalue().encode("utf-8"))
    finally:
        os.close(fd)


def _listed(manifest: Path) -> dict[str, float]:
    """``filename -> duration`` of the rows in ``manifest`` (empty when it is missing or unreadable)."""
    try:
        with open(manifest, encoding="utf-8", newline="") as f:
            return {r["filename"]: float(r["duration"]) for r in csv.DictReader(f)
                    if r.get("filename") and r.get("duration")}
    except (OSError, ValueError, KeyError, csv.Error):
        return {}


class _Ledger:
    """Which plan items are done (with durations) and which failed; rewrites the manifest from that.

    Rows are appended by whoever writes a clip; the ledger only rewrites the whole manifest when no clip writer
    runs (before the first is started and after the last has finished).
    """

    def __init__(self, out: Path, plan: list[PlanItem], done: dict[int, float], total: int, progress: bool):
        self.out, self.plan, self.done = out, plan, done
        self.failed: list[tuple[str, str]] = []
        self.generated = 0
        self.progress = Progress(total, str(out), enabled=progress)

    def record(self, index: int, duration: float | None, error: str | None) -> None:
        if duration is not None:
            self.done[index] = duration
            self.generated += 1
        else:
            self.failed.append((self.plan[index].filename, error or "unknown error"))
        self.progress.update(ok=duration is not None)

    def flush(self, keep_listed: bool = False) -> None:
        """Rewrite the manifest in plan order; ``keep_listed`` keeps rows a writer appended but nobody recorded
        (a worker that finished a clip after an error stopped the build) when their clip exists."""
        manifest = self.out / "manifest.csv"
        if keep_listed:
            index = {it.filename: i for i, it in enumerate(self.plan)}
            for name, duration in _listed(manifest).items():
                if name in index and index[name] not in self.done and (self.out / name).is_file():
                    self.done[index[name]] = duration
        write_manifest(manifest, [_row(it, self.done[i]) for i, it in enumerate(self.plan) if i in self.done])


@contextmanager
def exclusive_folder(out: Path, option: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on ``out/.build.lock`` (POSIX), so two builds never share a folder.

    The kernel drops the lock when its process dies, so a killed build never blocks the next one.

    Raises:
        BuildError: another live build holds it (the message names ``out`` and ``option``).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; run one build per folder
        yield
        return
    with open(out / ".build.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildError(f"another build is running in {out}; wait for it or use another {option}") from None
        yield


def remove_stale_temps(*folders: Path) -> None:
    """Delete the ``.*.tmp`` files that killed runs left in ``folders`` and below (hold the folder's lock)."""
    for folder in folders:
        for tmp in folder.rglob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)


def _prepare_folder(out: Path, cfg: BuildConfig, plan: list[PlanItem]) -> None:
    """Remove temp files of killed runs, check/record the settings, write the label and text lists."""
    for tmp in out.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    remove_stale_temps(out / "wav")
    saved_path = out / "build.json"
    if saved_path.is_file():
        try:
            saved = json.loads(saved_path.read_text(encoding="utf-8")).get("generation", {})
        except (ValueError, AttributeError) as e:
            raise BuildError(f"{saved_path}: unreadable ({e}); delete it if the folder holds nothing else") from None
        clash = [f"{k}: {saved[k]!r} -> {v!r}" for k, v in cfg.generation_settings().items()
                 if k in saved and saved[k] != v]
        if clash:
            raise BuildError(f"{out} was built with other generation settings ({'; '.join(clash)}); its clips would "
                             "not match. Use another --out, or delete the folder to rebuild it.")
    atomic_write_text(saved_path, json.dumps({"generation": cfg.generation_settings(), "config": cfg.to_dict()},
                                             indent=2) + "\n")
    atomic_write_text(out / "labels.txt", "".join(f"{k}\n" for k in cfg.keywords))
    atomic_write_text(out / "transcripts.txt", "".join(f"{t}\n" for t in dict.fromkeys(it.text for it in plan)))
    if cfg.backend == "openai" and cfg.instructions:
        atomic_write_text(out / "instructions.json", json.dumps(dict(enumerate(cfg.instructions)), indent=2) + "\n")


def _drain(futures: set[Future], ledger: _Ledger, unpack: Callable[[Any], list[tuple]]) -> None:
    """Record results as futures complete; on any exception cancel the rest and re-raise."""
    try:
        while futures:
            finished, futures = wait(futures, return_when=FIRST_COMPLETED)
            for f in finished:
                for result in unpack(f.result()):
                    ledger.record(*result)
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def _render_and_list(jobs: list[tuple[int, str, str, str]], rows: list[dict[str, Any]], args: tuple,
                     manifest: Path, parent_pid: int | None) -> list[tuple[int, float | None, str | None]]:
    """Synthesise ``jobs`` one by one, appending each made clip's row to ``manifest``; a worker whose build
    process has gone (``parent_pid`` no longer its parent) stops before the next clip."""
    from kwslab.tts.espeak import render_batch

    results = []
    for job, row in zip(jobs, rows):
        if parent_pid is not None and not parent_alive(parent_pid):
            os._exit(1)
        results += render_batch([job], *args)
        if results[-1][1] is not None:
            _append_row(manifest, {**row, "duration": round(results[-1][1], 4)})
    return results


def _run_espeak(cfg: BuildConfig, plan: list[PlanItem], todo: list[int], out: Path, ledger: _Ledger) -> None:
    jobs = [(i, plan[i].text, plan[i].spec, str(out / plan[i].filename)) for i in todo]
    rows = [_row(plan[i], 0.0) for i in todo]
    args = (cfg.sample_rate, cfg.trim, cfg.trim_db, cfg.normalize)
    manifest = out / "manifest.csv"
    workers = min(cfg.concurrency or os.cpu_count() or 1, max(1, len(jobs) // _BATCH))
    if workers == 1:
        for job, row in zip(jobs, rows):
            for result in _render_and_list([job], [row], args, manifest, None):
                ledger.record(*result)
        return
    # spawn, not fork: each worker starts clean and initialises its own espeak engine; it dies with this process
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_render_and_list, jobs[k:k + _BATCH], rows[k:k + _BATCH], args, manifest, os.getpid())
                   for k in range(0, len(jobs), _BATCH)}
        _drain(futures, ledger, lambda r: r)


def _run_openai(cfg: BuildConfig, plan: list[PlanItem], todo: list[int], out: Path, ledger: _Ledger,
                speaker: OpenAISpeaker) -> None:
    def one(i: int) -> list[tuple[int, float | None, str | None]]:
        item = plan[i]
        instruction = cfg.instructions[item.instruction] if item.instruction is not None else None
        try:
            x, sr = speaker.speak(item.text, item.voice, instruction, rng=random.Random(f"{cfg.seed}:{item.filename}"),
                                  name=f"response for {item.filename}")
            x = x.mean(axis=1) if x.ndim == 2 else x
            x = resample(x, sr, cfg.sample_rate) if sr != cfg.sample_rate else x
            x = postprocess(x, cfg.sample_rate, trim=cfg.trim, trim_db=cfg.trim_db, normalize=cfg.normalize)
            if len(x) == 0:
                raise TTSError("the response holds no audio")
            write_wav(out / item.filename, x, cfg.sample_rate)
            _append_row(out / "manifest.csv", _row(item, len(x) / cfg.sample_rate))
            return [(i, len(x) / cfg.sample_rate, None)]
        except AuthError:
            raise
        except (TTSError, ValueError, OSError) as e:
            return [(i, None, str(e))]

    with ThreadPoolExecutor(cfg.concurrency or 4) as pool:
        _drain({pool.submit(one, i) for i in todo}, ledger, lambda r: r)


def _dry_run(cfg: BuildConfig, plan: list[PlanItem], todo: list[int], log: Callable[[str], None]) -> BuildSummary:
    summary = BuildSummary(Path(cfg.out), len(plan), skipped=len(plan) - len(todo), dry_run=True)
    voices = list(dict.fromkeys(it.voice for it in plan))
    texts = list(dict.fromkeys(it.text for it in plan))
    log(f"[dry run] backend {cfg.backend}: {len(texts)} texts x {len(voices)} voices x {cfg.per_voice} = {len(plan)} "
        f"clips; {summary.skipped} already in {cfg.out}, {len(todo)} to make")
    for i in todo[:5]:
        log(f"  {plan[i].filename}: {plan[i].text!r} as {plan[i].spec}"
            + (f" ({cfg.instructions[plan[i].instruction]!r})" if plan[i].instruction is not None else ""))
    if cfg.backend == "openai":
        est = estimate_cost([plan[i].text for i in todo], cfg.price_per_million)
        summary.estimate = est
        log(f"  model {cfg.model}: {est['requests']} requests, {est['characters']} characters -> "
            f"${est['usd_by_characters']:.4f} at ${cfg.price_per_million:g} per 1M characters; "
            f"~{est['audio_minutes']:.1f} min of audio -> ${est['usd_by_minutes']:.4f} at $0.015/min")
    return summary


def build_dataset(cfg: BuildConfig, *, sleep: Callable[[float], None] = time.sleep, client: Any = None,
                  log: Callable[[str], None] = print) -> BuildSummary:
    """Make (or complete) the dataset ``cfg`` describes; see the module docstring for the layout.

    Args:
        cfg: the settings.
        sleep: how the OpenAI backend waits between retries (tests pass a fake).
        client: a ready ``openai.OpenAI`` (tests); built from the key and base URL when None.
        log: where the dry-run report goes. Progress goes to stderr (:class:`~kwslab.tts.progress.Progress`:
            a bar on a terminal, else a line per tenth done) unless ``cfg.progress`` is False.

    Returns:
        A :class:`BuildSummary`. Per-sample failures are listed there (re-run to retry them).

    Raises:
        BuildError: no OpenAI key, HTTP 401 (after saving the manifest), a settings clash, a busy folder.
        ValueError: a bad config value or voice name.
    """
    plan = make_plan(cfg)
    out = Path(cfg.out)
    done = {i: d for i, it in enumerate(plan) if (d := _valid_duration(out / it.filename, cfg.sample_rate)) is not None}
    todo = [i for i in range(len(plan)) if i not in done]
    if cfg.dry_run:
        return _dry_run(cfg, plan, todo, log)
    speaker = None
    if cfg.backend == "openai" and todo:
        key, base_url = resolve_credentials(cfg.env_file)
        if key is None:
            raise BuildError("no OpenAI API key: set OPENAI_API_KEY, or put OPENAI_API_KEY=... in "
                             f"{cfg.env_file or '.env'} (or use --dry-run / --backend espeak)")
        speaker = OpenAISpeaker(key, cfg.model, base_url, cfg.timeout, RetryPolicy(cfg.max_retries), sleep, client)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_folder(out):
        _prepare_folder(out, cfg, plan)
        ledger = _Ledger(out, plan, done, len(todo), cfg.progress)
        summary = BuildSummary(out, len(plan), skipped=len(done))
        start = time.perf_counter()
        try:
            ledger.flush()
            if todo and cfg.backend == "espeak":
                _run_espeak(cfg, plan, todo, out, ledger)
            elif todo:
                _run_openai(cfg, plan, todo, out, ledger, speaker)
        except AuthError as e:
            raise BuildError(f"{e}; stopped - the {ledger.generated} clips made so far are kept") from None
        finally:
            ledger.progress.close()
            ledger.flush(keep_listed=True)
            summary.seconds = time.perf_counter() - start
            summary.generated, summary.failed = ledger.generated, ledger.failed
            summary.requests = speaker.requests if speaker else 0
    return summary

