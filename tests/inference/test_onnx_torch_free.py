"""The torch-free ONNX runtime needs only NumPy and ONNX Runtime: ``predict --onnx`` and ``serve --onnx`` run in a
fresh interpreter whose import system refuses torch, Lightning and torchmetrics, and the third-party packages
predict ends up with are exactly numpy and onnxruntime (the HTTP stack on top of them for serve)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.inference.keywords import predict_files_onnx

REPO = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "lightning", "pytorch_lightning", "torchmetrics", "torchaudio")

# Runs a module as `python -m MODULE ARGS` behind a meta-path finder that raises ImportError for BLOCKED packages and
# records every attempt; at the end writes {"attempts", "third_party"} (top-level non-stdlib modules imported since
# start) to the file in $KWSLAB_TORCH_FREE_REPORT.
PRELUDE = r"""
import importlib.abc, json, os, runpy, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # uvicorn re-raises SIGTERM after its clean shutdown
BLOCKED = %r
attempts = []
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{name} is blocked: the ONNX runtime must not import it")
        return None
sys.meta_path.insert(0, Block())
before = set(sys.modules)
module, sys.argv = sys.argv[1], [sys.argv[1]] + sys.argv[2:]
code = 0
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    new = {m.split(".")[0] for m in set(sys.modules) - before}
    third = sorted(m for m in new - set(sys.stdlib_module_names) if not m.startswith("_") and m != "cython_runtime")
    with open(os.environ["KWSLAB_TORCH_FREE_REPORT"], "w") as f:
        json.dump({"attempts": attempts, "third_party": third}, f)
sys.exit(code)
""" % (BLOCKED,)


def torch_free(tmp_path: Path, module: str, *args: str, **popen) -> tuple[subprocess.Popen, Path]:
    report = tmp_path / f"report_{module}.json"
    env = {**__import__("os").environ, "KWSLAB_TORCH_FREE_REPORT": str(report)}
    proc = subprocess.Popen([sys.executable, "-c", PRELUDE, module, *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    return proc, report


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    out = []
    for i, freq in enumerate((300.0, 3000.0)):
        t = np.arange(8000) / 16000
        out.append(tmp_path / f"clip{i}.wav")
        write_wav(out[-1], (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32),
                  16000)
    return out


def test_predict_onnx_imports_only_numpy_and_onnxruntime(exported, clips, tmp_path):
    _, onnx = exported
    proc, report = torch_free(tmp_path, "kwslab.predict", "--onnx", str(onnx), "--json", "--top-k", "2",
                              *map(str, clips))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    seen = json.loads(report.read_text())
    assert seen["attempts"] == [], f"tried to import {seen['attempts']}"
    assert set(seen["third_party"]) == {"kwslab", "numpy", "onnxruntime"}, seen["third_party"]
    expected, errors = predict_files_onnx(onnx, clips, top_k=2)
    assert errors == [] and json.loads(out) == expected


def test_the_blocker_really_blocks_torch(exported, clips, tmp_path):
    ckpt, _ = exported
    proc, report = torch_free(tmp_path, "kwslab.predict", "--ckpt", str(ckpt), str(clips[0]))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "blocked" in err
    assert json.loads(report.read_text())["attempts"], "the checkpoint path must have tried to import torch"


def test_serve_onnx_answers_without_torch(exported, clips, tmp_path):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    _, onnx = exported
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, report = torch_free(tmp_path, "kwslab.serve", "--onnx", str(onnx), "--port", str(port),
                              "--log-level", "warning")
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/predict?top_k=2", content=clips[1].read_bytes(),
                                    headers={"content-type": "audio/wav"}, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200, (answer, proc.poll())
    finally:
        proc.terminate()  # uvicorn shuts down cleanly on SIGTERM, so the prelude writes its report
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err[-2000:]
    seen = json.loads(report.read_text())
    assert seen["attempts"] == [], f"tried to import {seen['attempts']}"
    assert {"numpy", "onnxruntime", "fastapi", "uvicorn"} <= set(seen["third_party"])
    expected, _ = predict_files_onnx(onnx, clips[1:], top_k=2)
    got = answer.json()
    assert (got["keyword"], got["top"]) == (expected[0]["keyword"], expected[0]["top"])
