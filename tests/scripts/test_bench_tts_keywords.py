"""scripts/bench_tts_keywords.py re-reading finished runs: each run scored at the top class and at the threshold
chosen on the validation speakers' real clips, grouped per keyword list."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kwslab.audio import write_wav
from kwslab.data.manifest import write_manifest
from tests.support.checkpoints import keyword_checkpoint
from tests.support.scripts import load_script


def test_finished_runs_are_scored_both_ways(tmp_path: Path, capsys):
    bench = load_script("bench_tts_keywords")
    rng = np.random.default_rng(0)
    for split, speakers in (("train", "ab"), ("val", "c"), ("test", "de")):
        rows = []
        for spk in speakers:
            for word in ("high", "low", "dog"):
                path = tmp_path / "clips" / word / f"{spk}_nohash_0.wav"
                write_wav(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
                rows.append({"filename": str(path), "keyword": word, "speaker": spk})
        write_manifest(tmp_path / "sc35" / f"{split}.csv", rows)
    for seed in (0, 1):
        ckpt = tmp_path / "runs" / "high-low" / f"seed{seed}" / "checkpoints" / "last.ckpt"
        ckpt.parent.mkdir(parents=True)
        keyword_checkpoint(ckpt, seed=seed)
    out = tmp_path / "b.json"
    assert bench.main(["--skip-train", "--keywords", "high,low", "--seeds", "0", "1", "--data", str(tmp_path / "sc35"),
                       "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| TTS-only high+low, seed 1, real-val | `low` |" in text and "high,low (top): mean ± sd over 2" in text
    results = json.loads(out.read_text())["results"]
    assert [r["threshold_on"] for r in results] == ["top", "real-val", "top", "real-val"]
    assert results[0]["threshold"] is None and 0.0 <= results[1]["threshold"] <= 1.0
    assert results[1]["other_words"]["clips"] == 2  # the test speakers' "dog"
