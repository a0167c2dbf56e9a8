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
