"""ONNX export: parity with PyTorch, metadata round trip, CTC with a dynamic time axis, one-line errors (prediction
from the exported model without torch is in test_predict.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kwslab.export import export_onnx
from kwslab.export import main as export_main
from kwslab.inference import load_model
from kwslab.inference.onnx import OnnxModel, OnnxModelError
from tests.support.checkpoints import CALIBRATION, ctc_checkpoint


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


def test_export_refuses_a_folder_or_an_existing_file_and_writes_with_the_umask_mode(tmp_path, capsys):
    """--out pointing at a folder was a traceback; an existing file was replaced silently; the ONNX file was 0600."""
    import os

    from tests.support.checkpoints import keyword_checkpoint

    ckpt = keyword_checkpoint(tmp_path / "kw.ckpt")
    assert export_main(["--ckpt", str(ckpt), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder" in err and "Traceback" not in err
    other = tmp_path / "other.onnx"
    other.write_bytes(b"someone else's model")
    os.chmod(other, 0o640)
    assert export_main(["--ckpt", str(ckpt), "--out", str(other)]) == 2
    assert "the file exists; pass --force" in capsys.readouterr().err
    assert other.read_bytes() == b"someone else's model"
    old = os.umask(0o022)
    try:
        assert export_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "new.onnx")]) == 0
        assert export_main(["--ckpt", str(ckpt), "--out", str(other), "--force"]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "new.onnx").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert other.stat().st_mode & 0o777 == 0o640 and OnnxModel(other).kind == "keyword"  # replaced, mode kept
