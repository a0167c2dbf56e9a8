"""Self-training of a CTC model (``kwslab.adaptation.self_train``): pseudo-labels are the beam search's, kept by
margin, and every refusal names its reason."""
from __future__ import annotations

import pytest
import torch


@pytest.mark.slow
def test_pseudo_labels_and_self_training_errors(trained_ctc, ctc_data, tmp_path, capsys):
    from kwslab.adaptation import AdaptationError, pseudo_label, self_train
    from kwslab.adapt import main as adapt_main
    from kwslab.data.manifest import read_manifest
    from kwslab.inference import load_model
    from kwslab.inference.ctc import DecoderSettings, decode, posteriors

    cli, _ = trained_ctc
    ckpt = cli.trainer.checkpoint_callback.best_model_path
    files = [r.path for r in read_manifest(ctc_data["test"], need_transcript=True)]
    model = load_model(ckpt)
    labels = pseudo_label(model, files, DecoderSettings(8, None), min_margin=1.0)
    beam = decode(posteriors(model, files), model.module.vocab, DecoderSettings(8, None))["beam"]
    assert [lab["text"] for lab in labels] == beam and [lab["path"] for lab in labels] == [str(f) for f in files]
    assert all(lab["margin"] > 0 for lab in labels)
    assert [lab["kept"] for lab in labels] == [bool(lab["text"]) and lab["margin"] >= 1.0 for lab in labels]
    with pytest.raises(AdaptationError, match="beam-width >= 2"):
        pseudo_label(model, files, DecoderSettings(1, None))
    with pytest.raises(AdaptationError, match="lower --min-margin"):
        self_train(ckpt, tmp_path / "a.ckpt", files, DecoderSettings(8, None), min_margin=float("inf"))
    with pytest.raises(AdaptationError, match="missing.csv: replay manifest not found.*--replay none"):
        self_train(ckpt, tmp_path / "a.ckpt", files, DecoderSettings(8, None), replay=[str(tmp_path / "missing.csv")])
    with pytest.raises(AdaptationError, match="--out is the source checkpoint"):
        self_train(ckpt, ckpt, files, DecoderSettings(8, None))
    with pytest.raises(AdaptationError, match="--epochs must be a positive integer"):
        self_train(ckpt, tmp_path / "a.ckpt", files, DecoderSettings(8, None), epochs=0)
    with pytest.raises(AdaptationError, match="--rounds must be a positive integer"):
        self_train(ckpt, tmp_path / "a.ckpt", files, DecoderSettings(8, None), rounds=0)
    bare = torch.load(ckpt, map_location="cpu", weights_only=True)
    del bare["datamodule_hyper_parameters"]
    torch.save(bare, tmp_path / "bare.ckpt")
    with pytest.raises(AdaptationError, match="does not record its data settings"):
        self_train(tmp_path / "bare.ckpt", tmp_path / "a.ckpt", files, DecoderSettings(8, None))
    two = self_train(ckpt, tmp_path / "two.ckpt", files[:4], DecoderSettings(8, None), epochs=1, rounds=2)
    assert two["rounds"] == 2 and len(two["kept_per_round"]) == 2 and two["kept"] == two["kept_per_round"][-1]
    assert adapt_main(["--ckpt", ckpt, "--out", str(tmp_path / "b.ckpt"), "--method", "self-train", "--min-margin",
                       "inf", str(files[0])]) == 2
    assert "lower --min-margin" in capsys.readouterr().err
    assert not (tmp_path / "a.ckpt").exists() and not (tmp_path / "b.ckpt").exists()
