"""Two fits sharing a checkpoint folder (issue 18, defect 8): the second is refused while the first runs, with a
message naming the folder, the other run and what to do; a lock left by a killed run does not block; resuming
after the first run ended works.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest

from kwslab.checkpoint import load_checkpoint
from kwslab.fit import main
from tests.support.keyword_task import tiny_config

REPO = Path(__file__).resolve().parents[2]


class HoldAtEpoch(L.Callback):
    """Test helper for the first run: after ``epoch`` epochs (their checkpoints written), touch ``ready`` and
    keep the fit alive (at most ``hold_s`` seconds) so a second run can try the same folder."""

    def __init__(self, ready: str, epoch: int = 1, hold_s: float = 120.0) -> None:
        self.ready, self.epoch, self.hold_s = ready, epoch, hold_s

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            Path(self.ready).touch()
            time.sleep(self.hold_s)


def _wait_for_file(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the first fit exited ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the first fit did not reach its second epoch in {timeout} s")
        time.sleep(0.1)


def test_second_fit_into_a_live_runs_folder_is_refused_and_a_killed_runs_lock_does_not_block(tiny_data, tmp_path,
                                                                                            capsys):
    config = tiny_config(tiny_data, tmp_path, epochs=3)
    ckpt_dir = tmp_path / "ckpt"
    ready = tmp_path / "first-run-ready"
    first = subprocess.Popen(
        [sys.executable, "-m", "kwslab.fit", "--config", str(config), "--test=false",
         f"--trainer.callbacks+={__name__}.HoldAtEpoch", f"--trainer.callbacks.ready={ready}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    try:
        _wait_for_file(ready, first, timeout=180)
        first_last = (ckpt_dir / "last.ckpt").read_bytes()
        capsys.readouterr()
        with pytest.raises(SystemExit) as refused:
            main(["--config", str(config), "--test=false"])
        assert refused.value.code == 2  # one line from kwslab.fit, not a Lightning traceback
        message = capsys.readouterr().err.strip()
        assert "in use by another fit" in message and "\n" not in message and "Traceback" not in message
        for part in (str(ckpt_dir.resolve()), f"pid {first.pid}", socket.gethostname(), "started",
                     "another dirpath", "wait"):
            assert part in message, (part, message)
        assert (ckpt_dir / "last.ckpt").read_bytes() == first_last, "the refused run wrote into the folder"
    finally:
        first.send_signal(signal.SIGKILL)  # leaves its lock file behind, naming a dead pid
        first.wait(timeout=30)
    assert str(first.pid) in (ckpt_dir / ".fit.lock").read_text()

    second = main(["--config", str(config), "--test=false", "--trainer.max_epochs=1"])
    assert second.trainer.current_epoch == 1 and load_checkpoint(ckpt_dir / "last.ckpt")["epoch"] == 0
    resumed = main(["--config", str(config), "--test=false", "--trainer.max_epochs=2", "--ckpt_path", "last"])
    assert resumed.trainer.current_epoch == 2 and load_checkpoint(ckpt_dir / "last.ckpt")["epoch"] == 1
