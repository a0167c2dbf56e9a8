"""What the benchmark scripts share to train a config in a run folder of its own: the overlay that moves a run's
seed, checkpoints and CSV log into the folder, and the ``python -m kwslab.fit`` subprocess that writes its log there.
(``fsdd_experiments.rooted_callbacks`` moves the callbacks' folders.)"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fsdd_experiments import rooted_callbacks  # noqa: E402

__all__ = ["write_overlay", "fit_in", "save_json", "run_prepare"]


def write_overlay(config: Path, run_dir: Path, seed: int, epochs: int | None = None,
                  data: dict[str, Any] | None = None) -> Path:
    """``run_dir/overlay.yaml`` for one run of ``config`` (its callbacks rooted in ``run_dir``, a CSV logger there,
    the seed, optionally ``max_epochs`` and ``data.init_args`` entries); a previous run's checkpoints are removed
    first, so a rerun never picks them up."""
    base = yaml.safe_load(config.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in (run_dir / "checkpoints").glob("*.ckpt"):
        old.unlink()
    trainer: dict[str, Any] = {
        "default_root_dir": str(run_dir), "enable_progress_bar": False,
        "callbacks": rooted_callbacks(base["trainer"].get("callbacks"), run_dir),
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                   "init_args": {"save_dir": str(run_dir), "name": "csv", "version": 0}}}
    if epochs:
        trainer["max_epochs"] = epochs
    overlay = run_dir / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"seed_everything": seed, "trainer": trainer,
                                       "data": {"init_args": {"seed": seed, **(data or {})}}}, sort_keys=False))
    return overlay


def fit_in(run_dir: Path, cmd: list[str], cwd: Path, threads: int, what: str) -> float:
    """Run ``cmd`` (a ``kwslab.fit`` command line) with its output in ``run_dir/fit.log``, ``threads`` torch
    threads and W&B offline unless set; exit with one line naming the log when it fails. Returns the wall time."""
    print(f"[{what}] " + " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    t0 = time.perf_counter()
    with open(run_dir / "fit.log", "w") as log:
        rc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if rc != 0:
        sys.exit(f"error: training {what} failed; see {run_dir / 'fit.log'}")
    return time.perf_counter() - t0


def save_json(path: Path | None, doc: dict[str, Any]) -> None:
    """Write a benchmark's numbers (the ``--out`` file), making its folder."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1))


def run_prepare(command: str, root: Path, paths: dict[str, str], flags: dict[str, str] | None = None) -> None:
    """Run one prepare command of a config's header (``python -m kwslab.prepare ...``) in ``root``, unless the folder
    it writes (``--out``) already holds train/val/test manifests. ``paths`` replaces folders named in it (the shared
    corpora, by where they are here); ``flags`` replaces option values (``{"--count": "40"}``). Exits with one line
    naming the command when it fails."""
    argv = shlex.split(command)
    out = argv[argv.index("--out") + 1] if "--out" in argv else None
    if out and all((root / out / f"{s}.csv").is_file() for s in ("train", "val", "test")):
        return
    for old, new in paths.items():
        argv = [a.replace(old, new) for a in argv]
    for flag, value in (flags or {}).items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
    print("preparing:", " ".join(argv), flush=True)
    if subprocess.run([sys.executable, *argv[1:]], cwd=root, check=False).returncode != 0:
        sys.exit(f"error: preparing {out} failed (see above); run it yourself: {command}")
