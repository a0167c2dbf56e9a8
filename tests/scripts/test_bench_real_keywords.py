"""scripts/bench_real_keywords.py: which clips count as accepted, the threshold chosen on validation negatives, and
the whole report on a tiny corpus laid out like the prepared Speech Commands manifests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.data.manifest import write_manifest
from kwslab.inference import load_model
from tests.support.checkpoints import keyword_checkpoint
from tests.support.scripts import load_script

LABELS = ["_silence_", "_unknown_", "marvin", "yes"]


def test_accepted_by_top_class_or_by_the_keywords_score():
    bench = load_script("bench_real_keywords")
    probs = np.array([[0.1, 0.1, 0.7, 0.1],    # marvin, sure
                      [0.1, 0.1, 0.4, 0.4],    # a tie: the first top class (marvin) at 0.4
                      [0.0, 0.6, 0.3, 0.1],    # _unknown_ on top: never a keyword
                      [0.1, 0.1, 0.1, 0.7]])   # yes
    kws = ["marvin", "yes"]
    assert bench.accepted(probs, LABELS, kws, None) == ["marvin", "marvin", None, "yes"]  # top class
    assert bench.accepted(probs, LABELS, ["yes"], None) == [None, None, None, "yes"]
    assert bench.accepted(probs, LABELS, kws, 0.5) == ["marvin", None, None, "yes"]
    assert bench.accepted(probs, LABELS, kws, 0.3) == ["marvin", "marvin", "marvin", "yes"]  # under _unknown_ too
    # 100 validation negatives whose marvin score rises 0.00, 0.01, ... 0.99 (and on top from 0.34 on)
    p = np.linspace(0.0, 0.99, 100)
    neg = np.stack([np.zeros(100), 1 - p - 0.01, p, np.full(100, 0.01)], axis=1)
    t = bench.choose_threshold(neg, LABELS, kws, np.ones(100, bool), target=0.02)
    assert sum(a is not None for a in bench.accepted(neg, LABELS, kws, t)) <= 2
    assert sum(a is not None for a in bench.accepted(neg, LABELS, kws, t - 0.01)) > 2
    assert bench.choose_threshold(neg[:3], LABELS, kws, np.ones(3, bool), target=0.0) == 0.03  # above them all


def test_the_report_scores_held_out_speakers_and_never_heard_words_on_everyone(tmp_path: Path, capsys):
    bench = load_script("bench_real_keywords")
    rng = np.random.default_rng(0)
    rows = {"train": [], "val": [], "test": []}
    for split, speakers in (("train", "ab"), ("val", "c"), ("test", "de")):
        for spk in speakers:
            for word in ("high", "low", "marvin", "dog"):
                path = tmp_path / "clips" / word / f"{spk}_nohash_0.wav"
                write_wav(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
                rows[split].append({"filename": str(path), "keyword": word, "speaker": spk})
    data = tmp_path / "sc35"
    for split, r in rows.items():
        write_manifest(data / f"{split}.csv", r)
    ckpt = keyword_checkpoint(tmp_path / "model.ckpt")  # labels _silence_ _unknown_ high low
    out = tmp_path / "real.json"
    assert bench.main(["--ckpt", str(ckpt), "--label", "tiny", "--data", str(data), "--never-heard", "low",
                       "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| tiny | `high` | 2 (2, test speakers) |" in table
    assert "| tiny | `low` | 5 (5, every speaker (never heard)) |" in table
    import json

    res = json.loads(out.read_text())["results"][0]
    assert res["other_words"]["clips"] == 4  # the test speakers' marvin and dog clips
    assert res["threshold"] is None and res["threshold_from"] == "top class"
    with pytest.raises(SystemExit) as err:
        bench.main(["--ckpt", str(ckpt), "--data", str(tmp_path / "absent")])
    assert "python -m kwslab.prepare speech-commands" in str(err.value.code)
    # --ensemble: the checkpoints' mean probabilities, scored as one model
    other = keyword_checkpoint(tmp_path / "other.ckpt", seed=1)
    paths = [r["filename"] for r in rows["test"]]
    both = bench.probabilities([load_model(ckpt), load_model(other)], paths)
    assert np.allclose(both, (bench.probabilities(load_model(ckpt), paths)
                              + bench.probabilities(load_model(other), paths)) / 2, atol=1e-6)
    assert bench.main(["--ckpt", str(ckpt), str(other), "--ensemble", "--data", str(data), "--never-heard", "low",
                       "--out", str(out)]) == 0
    assert "| ensemble of 2 | `high` | 2 (2, test speakers) |" in capsys.readouterr().out
    assert json.loads(out.read_text())["results"][0]["ckpt"] == [str(ckpt), str(other)]
