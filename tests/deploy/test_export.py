"""ONNX export: parity with PyTorch, metadata round trip, CTC with a dynamic time axis, torch-free prediction."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kwslab.export import export_onnx
from kwslab.export import main as export_main
from kwslab.inference import load_model
from kwslab.inference.onnx import OnnxModel, OnnxModelError
from kwslab.predict import main as predict_main
from tests.support.checkpoints import ctc_checkpoint, keyword_checkpoint
from tests.support.keyword_task import noise, tone_stream

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = {"threshold": 0.42, "target_fa_per_hour": 1.0, "stream": {"hop": 0.05, "smooth": 2},
               "curve": [[0.42, 0.1, 0.5]]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("export")
    ckpt = keyword_checkpoint(d / "kw.ckpt", kwslab_threshold=CALIBRATION)
    assert export_main(["--ckpt", str(ckpt), "--out", str(d / "kw.onnx")]) == 0
    return ckpt, d / "kw.onnx"


def test_keyword_parity_and_metadata(exported, rng):
    ckpt, onnx = exported
    model, om = load_model(ckpt), OnnxModel(onnx)
    x = rng.standard_normal((5, 13, 51)).astype(np.float32) * 2
    with torch.no_grad():
        ref = model.module(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(om.logits(x) - ref)) <= 1e-4
    assert om.kind == "keyword" and om.labels == model.labels and om.input_frames == 51
    assert om.feature_config == model.feature_config
    assert om.calibration == CALIBRATION
    with pytest.raises(Exception):  # the frame count is fixed in the graph
        om.logits(x[:, :, :40])


def test_ctc_export_has_a_dynamic_time_axis(tmp_path, rng):
    ckpt = ctc_checkpoint(tmp_path / "ctc.ckpt")
    result = export_onnx(ckpt, tmp_path / "ctc.onnx")
    assert result["kind"] == "ctc" and result["max_abs_diff"] <= 1e-4
    model, om = load_model(ckpt), OnnxModel(tmp_path / "ctc.onnx")
    assert om.labels == model.labels and om.metadata["blank"] == model.module.vocab.blank
    for frames in (23, 250):
        x = rng.standard_normal((1, 13, frames)).astype(np.float32)
        lp, lens = om.log_probs(x)
        with torch.no_grad():
            ref, ref_lens = model.module(torch.from_numpy(x), torch.tensor([frames]))
        assert lp.shape == tuple(ref.shape) and lens.tolist() == ref_lens.tolist()
        assert np.max(np.abs(lp - ref.numpy())) <= 1e-4
    with pytest.raises(OnnxModelError, match="ctc"):
        om.logits(x)


def test_export_errors_are_one_line(tmp_path, capsys):
    assert export_main(["--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()
    (tmp_path / "bad.onnx").write_bytes(b"junk")
    with pytest.raises(OnnxModelError, match="bad.onnx"):
        OnnxModel(tmp_path / "bad.onnx")


# Runs predict in a fresh interpreter where importing torch (or Lightning) raises ImportError.
GUARD = """
import sys
for name in ("torch", "lightning", "pytorch_lightning"):
    sys.modules[name] = None
from kwslab.predict import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules or sys.modules["torch"] is None
sys.exit(code)
"""


def _torch_free(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", GUARD, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_predict_with_onnx_runs_without_torch(exported, tmp_path, rng, capsys):
    from kwslab.audio import write_wav

    ckpt, onnx = exported
    files = []
    for i, (label, seconds) in enumerate((("high", 0.5), ("low", 0.7))):
        files.append(tmp_path / f"{i}.wav")
        write_wav(files[-1], tone_stream(rng, [(label, 0.1, 0.35)], seconds), 16000)
    proc = _torch_free("--onnx", str(onnx), "--json", "--top-k", "3", *map(str, files))
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert predict_main(["--ckpt", str(ckpt), "--json", "--top-k", "3", *map(str, files)]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert [r["keyword"] for r in got] == [r["keyword"] for r in ref]
    for g, r in zip(got, ref):
        assert [p for _, p in g["top"]] == pytest.approx([p for _, p in r["top"]], abs=1e-5)

    # streaming: same detections with ONNX Runtime (no torch) and PyTorch; the stored calibration is the default
    write_wav(tmp_path / "long.wav", np.concatenate([noise(8000, rng), tone_stream(rng, [("low", 1, 2)], 6)]), 16000)
    proc = _torch_free("--onnx", str(onnx), "--stream", str(tmp_path / "long.wav"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert predict_main(["--ckpt", str(ckpt), "--stream", str(tmp_path / "long.wav"), "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert got["threshold"] == ref["threshold"] == 0.42
    assert got["settings"]["hop"] == 0.05 and got["settings"]["smooth"] == 2
    assert [(d["keyword"], d["start"]) for d in got["detections"]] == \
        [(d["keyword"], d["start"]) for d in ref["detections"]]
    assert got["duration"] == 6.5

    bad = _torch_free("--ckpt", str(ckpt), str(files[0]))  # the guard really blocks torch
    assert bad.returncode != 0 and ("torch" in bad.stderr or "lightning" in bad.stderr)
