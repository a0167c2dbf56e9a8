"""The test-stream builder, and streaming detection end to end with a tiny trained tone model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kwslab.audio import wav_info, write_wav
from kwslab.data.sources.streams import StreamManifestError, compose_streams, read_stream_manifest
from kwslab.evaluate import main as evaluate_main
from kwslab.fit import main as fit_main
from kwslab.predict import main as predict_main
from tests.support.keyword_task import FEATURES, make_tone_dataset, tiny_config, tone_stream


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Path]:
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def tone_model(tones, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tone_model")
    config = tiny_config(tones, out, epochs=6)
    cli = fit_main(["--config", str(config), "--test=false",
                    f"--data.features={json.dumps(FEATURES)}"])
    return Path(cli.trainer.checkpoint_callback.best_model_path)


def test_builder_places_keywords_at_recorded_times(tones, tmp_path):
    path = compose_streams(tones["test"], tmp_path / "s", keywords=["high"], streams=2, duration=20.0, seed=3)
    entries = read_stream_manifest(path)
    doc = json.loads(path.read_text())
    assert len(entries) == 2 and doc["keywords"] == ["high"]
    for entry, raw in zip(entries, doc["streams"]):
        assert wav_info(entry.path).duration == pytest.approx(20.0)
        spans = sorted([(a, b) for _, a, b in entry.events] + [(d["start"], d["end"]) for d in raw["distractors"]])
        assert all(b1 + 1.0 <= a2 + 1e-6 for (_, b1), (a2, _) in zip(spans, spans[1:]))  # gaps >= 1 s
        assert all(k == "high" for k, _, _ in entry.events) and entry.events
        assert {d["label"] for d in raw["distractors"]} <= {"low"}
    assert compose_streams(tones["test"], tmp_path / "t", keywords=["high"], streams=2, duration=20.0,
                           seed=3).read_text().replace("/t/", "/s/") == path.read_text()


def test_stream_manifest_errors_name_every_problem(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    doc = {"streams": [{"filename": "a.wav", "duration": 5, "events": [{"keyword": "x", "start": 2, "end": 1}]},
                       {"filename": "missing.wav", "duration": -1}]}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with pytest.raises(StreamManifestError) as exc:
        read_stream_manifest(tmp_path / "m.json")
    msg = str(exc.value)
    assert "3 problem(s)" in msg and "streams[0].events[0]" in msg and "missing.wav" in msg and "duration" in msg
    (tmp_path / "n.json").write_text("{")
    with pytest.raises(StreamManifestError, match="not a readable JSON"):
        read_stream_manifest(tmp_path / "n.json")


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


def test_evaluate_streams_stores_a_threshold_that_predict_uses(tone_model, tones, tmp_path, capsys):
    manifest = compose_streams(tones["test"], tmp_path / "streams", keywords=["high", "low"], streams=1,
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
