"""scripts/fsdd_onsets.py: clips trimmed into the word are flagged by their onset ratio, per index decade, and a
CTC model's word errors are counted per recording decade."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from tests.support.scripts import load_script


def word(rng: np.random.Generator, lead_s: float) -> np.ndarray:
    """A 300-ms vowel-like burst after ``lead_s`` of faint noise (0: the clip starts at full loudness)."""
    t = np.arange(int(0.3 * 8000)) / 8000
    burst = 0.4 * np.sin(2 * np.pi * rng.uniform(150, 250) * t) * np.minimum(1.0, 20 * (0.3 - t))
    lead = 0.002 * rng.standard_normal(int(lead_s * 8000))
    return np.concatenate([lead, burst]).astype(np.float32)


def test_onset_table_flags_the_decade_that_starts_inside_the_word(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(20):  # indices 10-19 were trimmed into the word, 0-9 were not
        write_wav(tmp_path / f"{i % 10}_amy_{i}.wav", word(rng, 0.0 if i >= 10 else 0.05), 8000)
    write_wav(tmp_path / "3_bob_0.wav", word(rng, 0.05), 8000)
    script = load_script("fsdd_onsets")
    rows = script.onset_table(tmp_path)
    assert [(r["speaker"], r["indices"], r["clips"]) for r in rows] == [("amy", "0-9", 10), ("amy", "10-19", 10),
                                                                       ("bob", "0-9", 1)]
    assert rows[0]["onset_ratio"] < 0.05 and rows[1]["onset_ratio"] > 0.9
    assert rows[0]["length_s"] == pytest.approx(0.35, abs=0.001)
    assert rows[1]["length_s"] == pytest.approx(0.3, abs=0.001)
    assert script.decade("7_george_34.wav") == ("george", 30)
    with pytest.raises(ValueError, match="not an FSDD file name"):
        script.decade("noise.wav")
    with pytest.raises(SystemExit, match="no WAV files"):
        script.onset_table(tmp_path / "empty")


@pytest.mark.slow
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
