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


# -- bad input: one line each, and no confident answer about audio that was not scored -------------------------------
@pytest.fixture
def untrained_keyword(tmp_path) -> Path:
    from tests.support.checkpoints import keyword_checkpoint

    return keyword_checkpoint(tmp_path / "kw.ckpt")  # a 0.5 s window (51 frames at 16 kHz)


def test_predict_warns_that_a_long_file_is_scored_on_its_first_window_only(untrained_keyword, tmp_path, rng, capsys):
    """A 1-hour file was scored on its first second with high confidence and no word about the rest."""
    write_wav(tmp_path / "long.wav", noise(16000 * 30, rng), 16000)
    write_wav(tmp_path / "short.wav", noise(8000, rng), 16000)
    assert predict_main(["--ckpt", str(untrained_keyword), str(tmp_path / "long.wav"), str(tmp_path / "short.wav"),
                         "--json"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "long.wav: 30.0 s long" in warnings[0] and "first 0.50 s" in warnings[0] and "--stream" in warnings[0]
    results = {Path(r["file"]).name: r for r in json.loads(captured.out)}
    assert "warning" in results["long.wav"] and "warning" not in results["short.wav"]


def test_predict_flags_empty_and_silent_clips_instead_of_scoring_them(untrained_keyword, tmp_path, rng, capsys):
    """A 0-sample file got `_unknown_ 0.693`; an all-zero one a confident label too."""
    write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    write_wav(tmp_path / "zeros.wav", np.zeros(8000, np.float32), 16000)
    write_wav(tmp_path / "ok.wav", noise(8000, rng), 16000)
    files = [str(tmp_path / n) for n in ("empty.wav", "zeros.wav", "ok.wav")]
    assert predict_main(["--ckpt", str(untrained_keyword), *files]) == 1
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert len(errors) == 2 and "empty.wav" in errors[0] and "0 samples" in errors[0]
    assert "zeros.wav" in errors[1] and "silent" in errors[1]
    assert "ok.wav" in captured.out and "empty.wav" not in captured.out and "zeros.wav" not in captured.out


@pytest.mark.parametrize("flags, says", [
    (["--top-k", "-1"], "argument --top-k: expected an integer >= 1"),
    (["--top-k", "0"], "argument --top-k: expected an integer >= 1"),
    (["--hotwords", "w:abc"], "argument --hotwords: expected WORD:WEIGHT with a finite number"),
    (["--beam-width", "-3"], "argument --beam-width: expected an integer >= 0"),
    (["--alpha", "nan"], "argument --alpha: expected a finite number >= 0"),
    (["--beta", "inf"], "argument --beta: expected a finite number"),
])
def test_predict_bad_flag_values_are_one_parser_line(tmp_path, capsys, flags, says):
    with pytest.raises(SystemExit) as exc:
        predict_main(["--ckpt", str(tmp_path / "any.ckpt"), str(tmp_path / "a.wav"), *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert says in err.splitlines()[-1] and "Traceback" not in err


def test_predict_ctc_beam_width_0_is_greedy_and_a_malformed_lm_is_one_line(tmp_path, rng, capsys):
    from tests.support.checkpoints import ctc_checkpoint

    ckpt = ctc_checkpoint(tmp_path / "ctc.ckpt")
    write_wav(tmp_path / "a.wav", noise(16000, rng, 0.1), 16000)
    assert predict_main(["--ckpt", str(ckpt), str(tmp_path / "a.wav"), "--beam-width", "0", "--json"]) == 0
    assert "beam" not in json.loads(capsys.readouterr().out)[0]
    lm = tmp_path / "bad.arpa"
    lm.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0 a\nSECRET_TOKEN=abc a b c\n\\end\\\n")
    assert predict_main(["--ckpt", str(ckpt), str(tmp_path / "a.wav"), "--lm", str(lm)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{lm}:6:" in err and "SECRET_TOKEN" not in err and "Traceback" not in err


def _evil_module(tmp_path: Path, monkeypatch) -> Path:
    """A module that leaves a marker file when it is imported (what a checkpoint must never cause)."""
    pkg = tmp_path / "site"
    pkg.mkdir()
    marker = tmp_path / "imported.marker"
    (pkg / "kwslab_evil_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport torch\nclass Net(torch.nn.Module):\n    pass\n")
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.delitem(sys.modules, "kwslab_evil_mod", raising=False)  # a run before this one imported it
    return marker


@pytest.mark.parametrize("where", ["_class_path", "net.class_path"])
def test_a_checkpoint_cannot_make_kwslab_import_a_module_outside_it(tmp_path, monkeypatch, capsys, rng, where):
    """``hyper_parameters._class_path`` (and the network's class path) went to importlib before any check."""
    from tests.support.checkpoints import keyword_checkpoint

    marker = _evil_module(tmp_path, monkeypatch)
    monkeypatch.delenv("KWSLAB_ALLOW_CLASSES", raising=False)
    ckpt = keyword_checkpoint(tmp_path / "kw.ckpt")
    data = torch_load(ckpt)
    if where == "_class_path":
        data["hyper_parameters"]["_class_path"] = "kwslab_evil_mod.Net"
    else:
        data["hyper_parameters"]["net"]["class_path"] = "kwslab_evil_mod.Net"
    torch_save(data, ckpt)
    write_wav(tmp_path / "a.wav", noise(8000, rng), 16000)
    assert predict_main(["--ckpt", str(ckpt), str(tmp_path / "a.wav")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(ckpt) in err and "'kwslab_evil_mod.Net'" in err
    assert "--allow-class kwslab_evil_mod.Net" in err
    assert not marker.exists()
    # the user names it: now it is imported (and then found not to be a usable model/network)
    assert predict_main(["--ckpt", str(ckpt), str(tmp_path / "a.wav"), "--allow-class", "kwslab_evil_mod"]) == 2
    assert marker.exists() and "is not a kwslab class" not in capsys.readouterr().err


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def torch_save(data: dict, path: Path) -> None:
    import torch

    torch.save(data, path)
