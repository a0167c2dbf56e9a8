"""The test-stream builder (``kwslab.data.sources.streams``): keywords placed at recorded times with gaps, the same
streams from the same seed, and stream-manifest errors that name every problem (streaming detection itself is tested
through the CLI in test_predict.py and test_evaluate.py)."""
from __future__ import annotations

import json

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
