"""The evaluation CLI: accuracy and confusion of a trained keyword model's ensemble, unknown keywords, cross-fold
adaptation, a CTC model's error rates with and without a language model, and streams (a threshold stored for
predict)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kwslab.data.sources.streams import compose_streams
from kwslab.evaluate import main as evaluate_main
from kwslab.inference.scoring import evaluate_keywords
from kwslab.predict import main as predict_main


@pytest.mark.slow
def test_evaluate_an_ensemble_of_checkpoints(trained_keyword, tiny_data, tmp_path, capsys):
    from kwslab.data.manifest import read_manifest
    from kwslab.inference import load_model
    from kwslab.metrics import confusion_matrix

    ckpt = torch.load(trained_keyword, map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(0)
    noisy = {k: v + 1.0 * v.std() * torch.randn(v.shape, generator=gen) if v.is_floating_point() and v.numel() > 1
             else v for k, v in ckpt["state_dict"].items()}
    other = tmp_path / "noisy.ckpt"
    torch.save({**ckpt, "state_dict": noisy}, other)
    assert evaluate_main(["--ckpt", str(trained_keyword), str(other), "--manifest", str(tiny_data["test"]), "--json",
                          "--png", str(tmp_path / "cm.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoints"] == [str(trained_keyword), str(other)]
    models = [load_model(trained_keyword), load_model(other)]  # the rule by hand: argmax of the mean probability
    rows = read_manifest(tiny_data["test"], need_keyword=True)
    probs = sum(torch.softmax(m.logits([m.features(r.path) for r in rows]), dim=-1) for m in models)
    targets = [models[0].labels.index(r.keyword) for r in rows]
    assert report["confusion_matrix"] == confusion_matrix(targets, probs.argmax(-1).numpy(), 3).tolist()
    alone = models[0].logits([models[0].features(r.path) for r in rows]).argmax(-1)
    assert not torch.equal(alone, probs.argmax(-1))  # the second model changes some answers: both are used
    hp = dict(ckpt["hyper_parameters"])
    torch.save({**ckpt, "hyper_parameters": {**hp, "labels": list(reversed(hp["labels"]))}}, tmp_path / "rev.ckpt")
    assert evaluate_main(["--ckpt", str(trained_keyword), "--ckpt", str(tmp_path / "rev.ckpt"),
                          "--manifest", str(tiny_data["test"])]) == 2
    assert "rev.ckpt" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_reports_unknown_keywords_and_predict_reports_bad_files(trained_keyword, tmp_path, capsys,
                                                                          monkeypatch):
    from tests.support.keyword_task import make_tiny_dataset

    monkeypatch.chdir(tmp_path)  # the default confusion PNG goes to the working directory

    other = make_tiny_dataset(tmp_path, per_class={"test": 2}, classes={"buzz": 5000.0, "low": 300.0})
    assert evaluate_main(["--ckpt", str(trained_keyword), "--manifest", str(other["test"])]) == 2
    err = capsys.readouterr().err
    assert "'buzz' (2 rows)" in err and "--skip-unknown" in err
    assert evaluate_main(["--ckpt", str(trained_keyword), "--manifest", str(other["test"]), "--skip-unknown"]) == 0
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"ID3\x03\x00" + bytes(100))
    good = next((tmp_path / "wav" / "test").glob("low_*.wav"))
    assert predict_main(["--ckpt", str(trained_keyword), str(broken), str(good)]) == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err and "MP3" in captured.err and "low" in captured.out
    assert predict_main(["--ckpt", str(tmp_path / "missing.ckpt"), str(good)]) == 2


@pytest.mark.slow
def test_evaluate_cli_scores_adaptation_cross_fold_for_an_ensemble(tiny_data, trained_keyword, tmp_path, capsys):
    from kwslab.evaluate import main as evaluate_main

    data, ckpt = tiny_data, trained_keyword
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(3)
    other = tmp_path / "other.ckpt"
    torch.save({**saved, "state_dict": {k: v + 0.3 * v.std() * torch.randn(v.shape, generator=gen)
                                        if v.is_floating_point() and v.numel() > 1 else v
                                        for k, v in saved["state_dict"].items()}}, other)
    assert evaluate_main(["--ckpt", str(ckpt), str(other), "--manifest", str(data["test"]), "--adapt-folds", "2",
                          "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoints"] == [str(ckpt), str(other)] and report["folds"] == 2
    assert set(report["groups"]) == {"s0", "s1", "s2"}
    plain = evaluate_keywords([ckpt, other], data["test"])["accuracy"]
    assert report["accuracy"] == pytest.approx(plain)  # without adaptation: the ensemble's usual accuracy
    assert evaluate_main(["--ckpt", str(ckpt), "--manifest", str(data["test"]), "--adapt-folds", "2"]) == 0
    out = capsys.readouterr().out
    assert "adapted" in out and "s1" in out and "never on the clips scored" in out
    assert evaluate_main(["--ckpt", str(ckpt), "--manifest", str(data["test"]), "--adapt-folds", "1"]) == 2
    assert "folds must be at least 2" in capsys.readouterr().err


@pytest.mark.slow
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


@pytest.mark.slow
def test_evaluate_streams_stores_a_threshold_that_predict_uses(tone_model, tone_data, tmp_path, capsys):
    manifest = compose_streams(tone_data["test"], tmp_path / "streams", keywords=["high", "low"], streams=1,
                               duration=40.0, gap=(0.6, 1.5), snr_db=(20.0, 30.0), noise_dbfs=-40.0, seed=1)
    out_ckpt = tmp_path / "calibrated.ckpt"
    assert evaluate_main(["--ckpt", str(tone_model), "--stream-manifest", str(manifest), "--json", "--hop", "0.05",
                          "--target-fa-per-hour", "200", "--png", str(tmp_path / "det.png"),
                          "--out-ckpt", str(out_ckpt)]) == 0
    report = json.loads(capsys.readouterr().out)
    chosen = report["chosen"]
    assert chosen["fa_per_hour"] <= 200 and chosen["frr"] <= 0.2, chosen
    assert (tmp_path / "det.png").is_file() and report["stored_in"] == str(out_ckpt)
    frr = [r["frr"] for r in report["curve"]]
    assert frr[-1] >= frr[0]  # stricter thresholds miss more
    stored = torch.load(out_ckpt, weights_only=True)["kwslab_threshold"]
    assert stored["threshold"] == chosen["threshold"] and stored["stream"]["hop"] == 0.05
    assert "kwslab_threshold" not in torch.load(tone_model, weights_only=True)  # the original is untouched
    wav = str(manifest.parent / "stream_000.wav")
    assert predict_main(["--ckpt", str(out_ckpt), "--stream", wav, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == chosen["threshold"] and result["settings"]["hop"] == 0.05
    assert predict_main(["--ckpt", str(tone_model), "--stream", wav, "--target-fa-per-hour", "1"]) == 2
    assert "calibrated" in capsys.readouterr().err


# -- bad input: results are never lost to a plot, and unusable clips are named -------------------------------------
def _keyword_manifest(tmp_path: Path, extra: dict[str, "object"] | None = None) -> Path:
    import numpy as np

    from kwslab.audio import write_wav
    from kwslab.data.manifest import write_manifest

    rng = np.random.default_rng(0)
    rows = []
    for i, keyword in enumerate(["high", "low", "high", "low"]):
        path = tmp_path / "wav" / f"{keyword}{i}.wav"
        write_wav(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
        rows.append({"filename": str(path), "keyword": keyword})
    for name, samples in (extra or {}).items():
        write_wav(tmp_path / "wav" / name, samples, 16000)
        rows.append({"filename": str(tmp_path / "wav" / name), "keyword": "high"})
    manifest = tmp_path / "test.csv"
    write_manifest(manifest, rows)
    return manifest


def test_evaluate_prints_its_report_and_writes_the_png_to_the_working_directory(tmp_path, monkeypatch, capsys):
    """The PNG went beside the checkpoint by default, and a read-only checkpoint folder raised PermissionError
    before the report was printed. Now: report first, default PNG in the working directory, a failed write warns."""
    from tests.support.checkpoints import keyword_checkpoint

    ckpt_dir = tmp_path / "models"
    ckpt_dir.mkdir()
    ckpt = keyword_checkpoint(ckpt_dir / "kw.ckpt")
    manifest = _keyword_manifest(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert evaluate_main(["--ckpt", str(ckpt), "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix PNG: confusion_test.png" in out and (work / "confusion_test.png").is_file()
    assert list(ckpt_dir.iterdir()) == [ckpt]  # nothing written beside the checkpoint
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert evaluate_main(["--ckpt", str(ckpt), "--manifest", str(manifest), "--png", str(blocked / "cm.png")]) == 0
    captured = capsys.readouterr()
    assert "accuracy" in captured.out and "confusion matrix (rows: true" in captured.out
    assert captured.err.startswith("warning: ") and "cm.png: could not write the plot" in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_evaluate_bad_values_and_an_existing_out_ckpt_are_one_line(tmp_path, capsys):
    from tests.support.checkpoints import keyword_checkpoint

    ckpt = keyword_checkpoint(tmp_path / "kw.ckpt")
    manifest = _keyword_manifest(tmp_path)
    with pytest.raises(SystemExit) as exc:
        evaluate_main(["--ckpt", str(ckpt), "--manifest", str(manifest), "--batch-size", "0"])
    assert exc.value.code == 2
    assert "argument --batch-size: expected an integer >= 1" in capsys.readouterr().err
    existing = tmp_path / "other.ckpt"
    existing.write_bytes(b"keep me")
    assert evaluate_main(["--ckpt", str(ckpt), "--stream-manifest", str(tmp_path / "s.json"),
                          "--out-ckpt", str(existing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out-ckpt" in err and "pass --force" in err
    assert existing.read_bytes() == b"keep me"


def test_keyword_evaluate_refuses_empty_and_silent_clips_naming_each(tmp_path, capsys):
    """Keyword evaluate scored 0-sample and all-zero clips as if they were speech."""
    import numpy as np

    from tests.support.checkpoints import keyword_checkpoint

    ckpt = keyword_checkpoint(tmp_path / "kw.ckpt")
    silent = {"zeros.wav": np.zeros(8000, np.float32), "zeros2.wav": np.zeros(4000, np.float32)}
    manifest = _keyword_manifest(tmp_path / "silent", silent)
    assert evaluate_main(["--ckpt", str(ckpt), "--manifest", str(manifest), "--png", str(tmp_path / "cm.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2 of 6 audio file(s) cannot be used") and "Traceback" not in err
    assert all(any(name in line and "silent" in line for line in err.splitlines()) for name in silent)
    manifest = _keyword_manifest(tmp_path / "empty", {"empty.wav": np.zeros(0, np.float32)})
    assert evaluate_main(["--ckpt", str(ckpt), "--manifest", str(manifest), "--png", str(tmp_path / "cm.png")]) == 2
    err = capsys.readouterr().err  # refused by the manifest reader or by the model, naming the file either way
    assert "empty.wav" in err and "0 samples" in err and "Traceback" not in err
    assert not (tmp_path / "cm.png").exists()


def _composed_strings(tmp_path: Path) -> Path:
    """Connected words composed by kwslab.prepare sequences (so a segments.jsonl lies beside the manifests)."""
    import numpy as np

    from kwslab.audio import write_wav
    from kwslab.data.manifest import write_manifest
    from kwslab.data.sources import compose_sequences

    rows = []
    for s, split in enumerate(("train", "val", "test")):
        for w, hz in (("yes", 600.0), ("no", 1200.0)):
            t = np.arange(3200) / 16000
            path = tmp_path / "clips" / f"{w}{s}.wav"
            write_wav(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)
            rows.append({"filename": path, "transcript": w, "speaker": f"s{s}", "split": split})
    write_manifest(tmp_path / "words.csv", rows)
    return compose_sequences(tmp_path / "words.csv", tmp_path / "strings", count=12, max_words=3).manifests["test"]


def test_evaluate_spots_words_in_a_ctc_model_and_refuses_bad_requests(tmp_path, capsys):
    from tests.support.checkpoints import ctc_checkpoint

    ckpt = str(ctc_checkpoint(tmp_path / "ctc.ckpt"))
    test = _composed_strings(tmp_path)
    val = test.parent / "val.csv"
    assert evaluate_main(["--ckpt", ckpt, "--manifest", str(test), "--beam-width", "0", "--spot", "yes,no",
                          "--spot-val", str(val), "--json"]) == 0
    spot = json.loads(capsys.readouterr().out)["spotting"]
    segments = [json.loads(ln) for ln in (test.parent / "segments.jsonl").read_text().splitlines()]
    truth = [s["word"] for item in segments if item["filename"].startswith("audio/test/") for s in item["segments"]]
    for w in ("yes", "no"):  # every test segment counted once: a hit or a miss
        c = spot["words"][w]
        assert c["hits"] + c["misses"] == truth.count(w)
    assert spot["chosen_on"] == str(val) and spot["val"] is not None and spot["utterances"] == len(
        {item["filename"] for item in segments if item["filename"].startswith("audio/test/")})
    assert evaluate_main(["--ckpt", ckpt, "--manifest", str(test), "--beam-width", "0", "--spot", "yes",
                          "--spot-threshold", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "keyword search: threshold 0.5 (given)" in out and "\nyes " in out
    # refused with one line each: no threshold source, a word the model cannot spell, strings without segments
    with pytest.raises(SystemExit):
        evaluate_main(["--ckpt", ckpt, "--manifest", str(test), "--spot", "yes"])
    assert "--spot needs --spot-val" in capsys.readouterr().err
    assert evaluate_main(["--ckpt", ckpt, "--manifest", str(test), "--spot", "yes,r2d2", "--spot-threshold",
                          "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the model cannot spell 'r2d2'") and "Traceback" not in err
    (test.parent / "segments.jsonl").unlink()
    assert evaluate_main(["--ckpt", ckpt, "--manifest", str(test), "--spot", "yes", "--spot-threshold", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "segments.jsonl" in err and len(err.strip().splitlines()) == 1
