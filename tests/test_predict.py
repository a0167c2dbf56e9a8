"""The prediction CLI: keywords and top-k for files of a trained model, tone bursts found in a stream at their
times, and an ONNX model predicting (files and streams) in an interpreter without torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.evaluate import main as evaluate_main
from kwslab.predict import main as predict_main
from tests.support.keyword_task import noise, tone_stream

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_predict_and_evaluate_a_trained_model(trained_keyword, tiny_data, tmp_path, capsys):
    files = sorted((tiny_data["test"].parent / "wav" / "test").glob("*.wav"))
    assert predict_main(["--ckpt", str(trained_keyword), "--json", "--top-k", "2", *map(str, files)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == len(files) and all(len(r["top"]) == 2 for r in results)
    correct = sum(r["keyword"] == Path(r["file"]).name.split("_")[0] for r in results)
    assert correct / len(results) >= 0.9
    assert evaluate_main(["--ckpt", str(trained_keyword), "--manifest", str(tiny_data["test"]), "--json",
                          "--png", str(tmp_path / "cm.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] >= 0.9 and set(report["per_class"]) == {"high", "low", "mid"}
    assert sum(map(sum, report["confusion_matrix"])) == len(files) and (tmp_path / "cm.png").is_file()


@pytest.mark.slow
def test_tone_bursts_are_detected_at_their_times(tone_model, tmp_path, rng, capsys):
    truth = [("high", 2.0, 2.3), ("low", 5.1, 5.4), ("high", 8.45, 8.7), ("low", 11.0, 11.3)]
    write_wav(tmp_path / "s.wav", tone_stream(rng, truth, 13.0), 16000)
    assert predict_main(["--ckpt", str(tone_model), "--stream", str(tmp_path / "s.wav"), "--json",
                         "--threshold", "0.6", "--hop", "0.05"]) == 0
    found = json.loads(capsys.readouterr().out)["detections"]
    assert [d["keyword"] for d in found] == [k for k, _, _ in truth]
    for d, (_, start, end) in zip(found, truth):
        assert d["score"] >= 0.6 and d["start"] < d["end"]
        assert d["start"] < end and d["end"] > start, (d, start, end)  # overlaps the burst
        assert abs(d["start"] - start) < 0.3 and d["end"] - d["start"] <= 0.5 + 1e-9, (d, start, end)


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
