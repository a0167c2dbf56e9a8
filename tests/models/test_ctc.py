"""The CTC recogniser: network shapes, vocabulary/blank consistency, overfitting one batch, the CLI."""
from __future__ import annotations

import json

from pathlib import Path

import pytest
import torch

from kwslab.data.datamodules import CTCDataModule
from kwslab.decoding.greedy import greedy
from kwslab.fit import main
from kwslab.models import CTCRecognizer
from kwslab.nets import CRNN
from kwslab.text import CharVocab
from tests.support.ctc_task import CHARS, make_tiny_ctc_dataset, tiny_ctc_config


@pytest.fixture(scope="module")
def ctc_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_tiny_ctc_dataset(tmp_path_factory.mktemp("ctc"))


@pytest.mark.parametrize("subsample", [1, 2, 3])
def test_crnn_output_lengths_match_the_frames_it_produces(subsample):
    net = CRNN(20, 5, conv_channels=(8, 8), subsample=subsample, rnn_hidden=8, rnn_layers=1).eval()
    x = torch.randn(3, 20, 47)
    lengths = torch.tensor([47, 30, 11])
    log_probs, out_lens = net(x, lengths)
    assert log_probs.shape[:2] == (3, out_lens[0].item()) and log_probs.shape[2] == 5
    for i, n in enumerate(lengths.tolist()):  # padding never changes what the valid frames produce
        alone, alone_len = net(x[i:i + 1, :, :n])
        assert alone_len.item() == out_lens[i].item()
        assert torch.allclose(alone[0], log_probs[i, :out_lens[i]], atol=1e-5)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-5)


@pytest.mark.parametrize("blank_first", [True, False])
def test_model_and_decoders_share_the_vocabulary_blank(blank_first):
    vocab = CharVocab(CHARS, blank_first=blank_first)
    model = CTCRecognizer(len(vocab), vocab.tokens, {"n_mfcc": 13})
    assert model.vocab == vocab and model.vocab.blank == vocab.blank == (0 if blank_first else len(CHARS))
    assert model.hparams["labels"] == vocab.tokens
    with pytest.raises(ValueError, match="num_outputs"):
        CTCRecognizer(len(vocab) + 1, vocab.tokens, {"n_mfcc": 13})


def test_overfit_one_batch_reaches_the_exact_transcripts(ctc_data):
    dm = CTCDataModule(str(ctc_data["train"]), chars=CHARS, batch_size=8, bucket_by_length=False,
                       features={"kind": "log_mel", "n_mels": 24, "cmvn": True})
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    feats, feat_lens, targets, target_lens = batch
    torch.manual_seed(0)
    model = CTCRecognizer(dm.num_outputs, dm.labels, dm.feature_config.to_dict(), conv_channels=(32, 32),
                          rnn_hidden=48, rnn_layers=1, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    refs = [dm.vocab.decode(t[:n].tolist()) for t, n in zip(targets, target_lens.tolist())]
    for step in range(300):
        loss = model._step(batch, "train")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 24:
            model.eval()
            with torch.no_grad():
                lp, lens = model(feats, feat_lens)
            model.train()
            hyps = [greedy(lp[i, :lens[i]].numpy(), dm.vocab) for i in range(len(refs))]
            if hyps == refs:
                break
    assert hyps == refs, list(zip(refs, hyps))


@pytest.fixture(scope="module")
def trained_ctc(ctc_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctc_fit")
    return main(["--config", str(tiny_ctc_config(ctc_data, out, epochs=25))]), out


def test_fit_ctc_through_the_cli_logs_wer_and_cer(trained_ctc):
    cli, tmp_path = trained_ctc
    metrics = cli.trainer.callback_metrics
    assert {"test/wer", "test/cer"} <= set(metrics)
    assert metrics["test/cer"].item() <= 0.2, metrics
    logged = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/wer", "val/cer", "train/loss_epoch"} <= set(logged)
    ckpt = torch.load(cli.trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert ckpt["hyper_parameters"]["labels"] == ["", "a", "b", "c"]


def test_evaluate_and_predict_a_ctc_checkpoint(trained_ctc, ctc_data, tmp_path, capsys):
    import json

    from kwslab.data.manifest import read_manifest
    from kwslab.decoding.lm import NGramLM
    from kwslab.evaluate import main as evaluate_main
    from kwslab.predict import main as predict_main

    cli, _ = trained_ctc
    ckpt = cli.trainer.checkpoint_callback.best_model_path
    lm = tmp_path / "lm.arpa"
    NGramLM.train([r.transcript for r in read_manifest(ctc_data["train"])], order=2).save_arpa(lm)
    assert evaluate_main(["--ckpt", ckpt, "--manifest", str(ctc_data["test"]), "--json", "--beam-width", "8",
                          "--lm", str(lm), "--alpha", "0.3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"greedy", "beam", "utterances"} and len(report["utterances"]) == 8
    assert report["greedy"]["cer"] <= 0.2 and report["beam"]["cer"] <= 0.25
    for row in report["utterances"]:
        assert row["reference"] == Path(row["file"]).stem.split("_")[1]
    files = sorted(str(p) for p in (ctc_data["test"].parent / "wav" / "test").glob("*.wav"))[:4]
    assert predict_main(["--ckpt", ckpt, "--json", "--beam-width", "0", *files]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in results] == files and all(r["text"] == r["greedy"] for r in results)
    correct = sum(r["text"] == Path(r["file"]).stem.split("_")[1] for r in results)
    assert correct >= 3, results


def test_adapt_a_ctc_checkpoint_on_unpadded_utterances_with_a_caution(trained_ctc, ctc_data, tmp_path, capsys):
    from kwslab.adaptation import ADAPTATION_KEY
    from kwslab.adapt import main as adapt_main
    from kwslab.evaluate import main as evaluate_main

    cli, _ = trained_ctc
    ckpt = cli.trainer.checkpoint_callback.best_model_path
    out = tmp_path / "adapted.ckpt"
    assert adapt_main(["--ckpt", ckpt, "--out", str(out), "--manifest", str(ctc_data["test"]), "--json",
                       "--method", "batchnorm"]) == 0
    captured = capsys.readouterr()
    assert "made the CTC recogniser worse" in captured.err and "--method self-train" in captured.err
    report = json.loads(captured.out)
    assert report["model"] == "ctc" and report["method"] == "batchnorm" and report["batchnorm_layers"] >= 1
    stored = torch.load(out, map_location="cpu", weights_only=True)
    assert stored[ADAPTATION_KEY]["clips"] == report["clips"]
    source = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    means = [k for k in source if k.endswith("running_mean")]
    assert means and all(not torch.equal(stored["state_dict"][k], source[k]) for k in means)
    assert evaluate_main(["--ckpt", str(out), "--manifest", str(ctc_data["test"]), "--json", "--beam-width", "0"]) == 0
    assert "greedy" in json.loads(capsys.readouterr().out)


def _error_rates(ckpt, manifest, capsys) -> dict:
    from kwslab.evaluate import main as evaluate_main

    capsys.readouterr()
    assert evaluate_main(["--ckpt", str(ckpt), "--manifest", str(manifest), "--json", "--beam-width", "8"]) == 0
    return json.loads(capsys.readouterr().out)


def test_self_training_adapts_a_ctc_model_to_an_unseen_voice(trained_ctc, tmp_path, capsys):
    """Tones 30% higher than in training: self-training on 20 unlabelled clips fixes the other 20."""
    from kwslab.adaptation import ADAPTATION_KEY
    from kwslab.adapt import main as adapt_main
    from kwslab.data.manifest import read_manifest, write_manifest

    cli, _ = trained_ctc
    ckpt = cli.trainer.checkpoint_callback.best_model_path
    rows = read_manifest(make_tiny_ctc_dataset(tmp_path / "voice", {"test": 40}, seed=1, pitch=1.3)["test"],
                         need_transcript=True)
    adapt_on, held_out = tmp_path / "adapt.csv", tmp_path / "held_out.csv"
    write_manifest(adapt_on, [{**r.to_dict(), "filename": str(r.path), "transcript": ""} for r in rows[:20]])
    write_manifest(held_out, [{**r.to_dict(), "filename": str(r.path)} for r in rows[20:]])
    before = _error_rates(ckpt, held_out, capsys)
    out = tmp_path / "self_trained.ckpt"
    assert adapt_main(["--ckpt", ckpt, "--out", str(out), "--manifest", str(adapt_on), "--beam-width", "8",
                       "--min-margin", "0", "--lr", "0.005", "--json"]) == 0  # auto: self-training for CTC
    report = json.loads(capsys.readouterr().out)
    after = _error_rates(out, held_out, capsys)
    assert before["greedy"]["cer"] > 0.2 and after["greedy"]["cer"] < before["greedy"]["cer"] / 2, (before, after)
    assert after["beam"]["cer"] <= before["beam"]["cer"]
    assert report["method"] == "self-train" and report["clips"] == 20 and report["kept"] == 20
    assert report["replay"] == [str(Path(cli.datamodule.hparams["train_manifest"]))]  # the checkpoint's own data
    stored = torch.load(out, map_location="cpu", weights_only=True)
    assert stored[ADAPTATION_KEY]["epochs"] == 3 and stored[ADAPTATION_KEY]["kept"] == 20
    source = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(stored["state_dict"][k], v) for k, v in source.items())
    assert not list(tmp_path.glob("*.tmp*")) and not list(Path(ckpt).parent.glob("*.tmp*"))


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


def test_fsdd_onsets_script_counts_word_errors_per_recording_decade(trained_ctc, ctc_data, tmp_path):
    from kwslab.data.manifest import read_manifest, write_manifest
    from kwslab.inference import load_model
    from kwslab.inference.ctc import DecoderSettings, decode, posteriors
    from tests.support.scripts import load_script

    cli, _ = trained_ctc
    ckpt = cli.trainer.checkpoint_callback.best_model_path
    rows = read_manifest(ctc_data["test"], need_transcript=True)
    manifest = tmp_path / "test.csv"
    write_manifest(manifest, [{**r.to_dict(), "filename": str(r.path)} for r in rows])
    # each tiny utterance is one "word" (its letters) from a pretend FSDD recording: even rows 0-9, odd rows 30-39
    segments = [{"filename": str(r.path), "segments": [{"word": r.transcript, "start": 0.0, "end": 1.0,
                                                        "source": f"1_amy_{30 * (i % 2) + i}.wav"}]}
                for i, r in enumerate(rows)]
    (tmp_path / "segments.jsonl").write_text("".join(json.dumps(s) + "\n" for s in segments))
    table, confusions = load_script("fsdd_onsets").error_table(ckpt, str(manifest), None, beam_width=8)
    model = load_model(ckpt)
    hyps = decode(posteriors(model, [r.path for r in rows]), model.module.vocab, DecoderSettings(8, None))["beam"]
    expected = {"0-9": [0, 0], "30-39": [0, 0]}
    for i, (r, h) in enumerate(zip(rows, hyps)):
        if len(h.split()) == 1:
            expected["0-9" if i % 2 == 0 else "30-39"][1] += 1
            expected["0-9" if i % 2 == 0 else "30-39"][0] += h != r.transcript
    got = {row["indices"]: [row["errors"], row["words"]] for row in table}
    assert got == {k: v for k, v in expected.items() if v[1]} and sum(v[1] for v in got.values()) >= 6
    assert sum(n for _, n in confusions) == sum(v[0] for v in got.values())
    (tmp_path / "segments.jsonl").unlink()
    with pytest.raises(SystemExit, match="no segments.jsonl"):
        load_script("fsdd_onsets").error_table(ckpt, str(manifest), None)
