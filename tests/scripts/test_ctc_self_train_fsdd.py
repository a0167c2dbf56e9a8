"""scripts/ctc_self_train_fsdd.py: cross-fold self-training never scores a word with a model adapted on its own
recording, and adapting lowers the word error rate."""
from __future__ import annotations

import json

import pytest

from tests.support.ctc_task import make_tiny_ctc_dataset


@pytest.mark.slow
def test_cross_fold_self_training_script_never_scores_a_word_with_a_model_adapted_on_its_recording(
        trained_ctc, tmp_path, capsys):
    from kwslab.data.manifest import read_manifest
    from kwslab.inference.ctc import DecoderSettings
    from tests.support.scripts import load_script

    cli, _ = trained_ctc
    ckpt = cli.trainer.checkpoint_callback.best_model_path
    manifest = make_tiny_ctc_dataset(tmp_path, {"test": 40}, seed=1, pitch=1.3)["test"]
    rows = read_manifest(manifest, need_transcript=True)
    # each utterance is one "word" whose source recording is the utterance itself
    (tmp_path / "segments.jsonl").write_text("".join(
        json.dumps({"filename": str(r.path), "segments": [{"word": r.transcript, "start": 0.0, "end": 1.0,
                                                           "source": str(r.path)}]}) + "\n" for r in rows))
    script = load_script("ctc_self_train_fsdd")
    trained_on = []
    real_self_train = script.self_train

    def spy(ckpt_path, out, files, *args, **kwargs):
        trained_on.append({str(f) for f in files})
        return real_self_train(ckpt_path, out, files, *args, **kwargs)

    script.self_train = spy
    report = script.cross_fold(ckpt, str(manifest), DecoderSettings(8, None), tmp_path / "folds", folds=2,
                               min_margin=0.0, lr=0.005)
    assert len(trained_on) == 2 and trained_on[0].isdisjoint(trained_on[1])
    assert trained_on[0] | trained_on[1] == {str(r.path) for r in rows}
    scored = set(report["adapted"])
    for k, fold in enumerate(report["folds"]):
        held = {src for src in scored if src not in trained_on[k]}
        assert fold["words"] == sum(report["adapted"][src][1] for src in held) > 0
        assert fold["adaptation_clips"] == len(trained_on[k]) and fold["pseudo_label_accuracy_pct"] is None
    assert scored <= {str(r.path) for r in rows} and len(scored) >= 30
    base = sum(e for e, _ in report["base"].values()) / sum(n for _, n in report["base"].values())
    adapted = sum(e for e, _ in report["adapted"].values()) / sum(n for _, n in report["adapted"].values())
    assert adapted < base, (base, adapted)
    assert script.main(["--ckpt", ckpt, "--manifest", str(tmp_path / "missing" / "test.csv")]) == 2
    assert "error:" in capsys.readouterr().err
