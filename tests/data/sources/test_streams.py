"""The test-stream builder (``kwslab.data.sources.streams``): keywords placed at recorded times with gaps, the same
streams from the same seed, and stream-manifest errors that name every problem (streaming detection itself is tested
through the CLI in test_predict.py and test_evaluate.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kwslab.audio import wav_info
from kwslab.data.sources.streams import StreamManifestError, compose_streams, read_stream_manifest


def test_builder_places_keywords_at_recorded_times(tone_data, tmp_path):
    path = compose_streams(tone_data["test"], tmp_path / "s", keywords=["high"], streams=2, duration=20.0, seed=3)
    entries = read_stream_manifest(path)
    doc = json.loads(path.read_text())
    assert len(entries) == 2 and doc["keywords"] == ["high"]
    for entry, raw in zip(entries, doc["streams"]):
        assert wav_info(entry.path).duration == pytest.approx(20.0)
        spans = sorted([(a, b) for _, a, b in entry.events] + [(d["start"], d["end"]) for d in raw["distractors"]])
        assert all(b1 + 1.0 <= a2 + 1e-6 for (_, b1), (a2, _) in zip(spans, spans[1:]))  # gaps >= 1 s
        assert all(k == "high" for k, _, _ in entry.events) and entry.events
        assert {d["label"] for d in raw["distractors"]} <= {"low"}
    assert compose_streams(tone_data["test"], tmp_path / "t", keywords=["high"], streams=2, duration=20.0,
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


def test_a_manifest_without_the_keywords_is_one_manifest_error_naming_them(tone_data, tmp_path):
    from kwslab.data.manifest import ManifestError

    with pytest.raises(ManifestError, match=r"no row has one of the keywords \['marvin'\]"):
        compose_streams(tone_data["test"], tmp_path / "s", keywords=["marvin"], streams=1, duration=10.0)


def test_real_recordings_as_background_and_keyword_times_that_hold_the_word(tmp_path):
    """Clips laid out like Speech Commands (a 0.3-s tone padded to 1 s with room noise) over a background taken from
    recordings: each event's span is the trimmed word (its tone), and the background is the recordings' sound."""
    import numpy as np

    from kwslab.audio import read_wav, write_wav
    from kwslab.data.manifest import write_manifest

    sr, rng, rows = 16000, np.random.default_rng(0), []
    tones = {"yes": 700.0, "bird": 2500.0}
    for word, hz in tones.items():
        for n in range(3):
            y = 0.01 * rng.standard_normal(sr)
            t = np.arange(int(0.3 * sr)) / sr
            y[6000:6000 + t.size] += 0.3 * np.sin(2 * np.pi * hz * t)
            path = tmp_path / word / f"abc{n}_nohash_0.wav"
            write_wav(path, y.astype(np.float32), sr)
            rows.append({"filename": str(path), "keyword": word})
    write_manifest(tmp_path / "test.csv", rows)
    hum = np.sin(2 * np.pi * 120.0 * np.arange(5 * sr) / sr).astype(np.float32)  # a "recording": mains hum
    write_wav(tmp_path / "noise" / "hum.wav", 0.2 * hum, sr)
    path = compose_streams(tmp_path / "test.csv", tmp_path / "s", keywords=["yes"], duration=30.0, snr_db=(30, 30),
                           noise_dir=tmp_path / "noise", trim_floor_db=10.0, seed=1)
    doc = json.loads(path.read_text())
    stream = doc["streams"][0]
    assert stream["background"].startswith("recordings in") and doc["settings"]["trim_floor_db"] == 10.0
    y, _ = read_wav(tmp_path / "s" / stream["filename"])
    spectrum = lambda x: np.abs(np.fft.rfft(x * np.hanning(len(x))))  # noqa: E731
    freqs = lambda x: np.fft.rfftfreq(len(x), 1 / sr)  # noqa: E731
    for ev in stream["events"]:
        assert ev["end"] - ev["start"] == pytest.approx(0.3, abs=0.03)  # the word, not its 1-s clip
        x = y[int(ev["start"] * sr):int(ev["end"] * sr)]
        assert freqs(x)[np.argmax(spectrum(x))] == pytest.approx(700.0, abs=10)
    assert stream["events"] and all(d["label"] == "bird" for d in stream["distractors"])
    quiet = y[:int(min(e["start"] for e in stream["events"] + stream["distractors"]) * sr)]
    assert freqs(quiet)[np.argmax(spectrum(quiet))] == pytest.approx(120.0, abs=3)  # the recording's hum
    with pytest.raises(ValueError, match="no WAV files in the noise folder"):
        compose_streams(tmp_path / "test.csv", tmp_path / "t", keywords=["yes"], noise_dir=tmp_path / "yes" / "x")


def test_keywords_from_other_manifests_join_the_test_manifests_distractors(tone_data, tmp_path):
    import csv

    with open(tone_data["test"]) as f:
        rows = list(csv.DictReader(f))
    only_low = tmp_path / "low.csv"  # the test speakers never said the keyword
    with open(only_low, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows([{**r, "filename": str((tone_data["test"].parent / r["filename"]).resolve())}
                     for r in rows if r["keyword"] != "high"])
    path = compose_streams(only_low, tmp_path / "s", keywords=["high"], keyword_manifests=[tone_data["train"]],
                           streams=1, duration=30.0, seed=1)
    doc = json.loads(path.read_text())
    with open(tone_data["train"]) as f:
        train_high = {str((tone_data["train"].parent / r["filename"]).resolve()) for r in csv.DictReader(f)
                      if r["keyword"] == "high"}
    events, others = doc["streams"][0]["events"], doc["streams"][0]["distractors"]
    assert events and {str(Path(e["source"]).resolve()) for e in events} <= train_high
    assert others and {d["label"] for d in others} == {"low"}
    assert not {str(Path(d["source"]).resolve()) for d in others} & train_high
    assert doc["settings"]["keyword_manifests"] == [str(tone_data["train"])]
