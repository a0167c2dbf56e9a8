"""scripts/bench_ctc_speech_commands.py end to end on a tiny corpus laid out like Speech Commands: the config
header's prepare commands, both variants (every word; `stop` never in training), training, WER with the LM tuned on
validation, keyword search per word, speed, and the table. No ``../shared`` needed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.data.manifest import read_manifest
from tests.support.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
WORDS = ("yes no up down left right on off stop go zero one two three four five six seven eight nine bird").split()
SR = 16000


def _bench():
    return load_script("bench_ctc_speech_commands")


def _corpus(root: Path) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(0.3 * SR)) / SR
    for w, word in enumerate(WORDS):
        for s in range(10):
            y = 0.005 * rng.standard_normal(SR)
            y[5000:5000 + t.size] += 0.3 * np.sin(2 * np.pi * (300 + 150 * w) * t)
            write_wav(root / word / f"{0xc0de00 + s:08x}_nohash_0.wav", y.astype(np.float32), SR)
    write_wav(root / "_background_noise_" / "pink.wav", (0.1 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    return root


@pytest.mark.slow
def test_the_bench_prepares_trains_scores_and_prints_its_table(tmp_path: Path, capsys: pytest.CaptureFixture):
    bench = _bench()
    corpus = _corpus(tmp_path / "speech_commands")
    out = tmp_path / "bench.json"
    assert bench.main(["--seeds", "0", "--epochs", "1", "--count", "40", "--corpus", str(corpus), "--data-root",
                       str(tmp_path), "--runs", str(tmp_path / "runs"), "--speed-utts", "2", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| all_words | 1 |" in table and "| stop_held_out | 1 |" in table and "beam 16 + LM" in table
    # the data came from the configs' header commands, under --data-root
    held = tmp_path / "data" / "sc_ctc_nostop"
    assert not any("stop" in r.transcript.split() for r in read_manifest(held / "train.csv", need_transcript=True))
    assert any("stop" in r.transcript.split() for s in ("val", "test")
               for r in read_manifest(held / f"{s}.csv", need_transcript=True))
    assert (tmp_path / "data" / "sc_ctc" / "lm.arpa").is_file() and (held / "segments.jsonl").is_file()
    numbers = json.loads(out.read_text())
    for name in ("all_words", "stop_held_out"):
        (run,) = numbers["results"][name]
        assert set(run["wer"]) == {"greedy", "beam", "beam_lm"} and all(v >= 0 for v in run["wer"].values())
        assert set(run["spotting"]["words"]) == set(bench.COMMANDS)
        segments = sum(c["hits"] + c["misses"] for c in run["spotting"]["words"].values())
        assert segments > 0 and run["test_strings"] > 0 and run["train_seconds"] > 0
    speed = numbers["speed"]
    assert speed["utterances"] == 2 and speed["features_and_network_ms"] > 0 and speed["rtf_beam_lm"] > 0
    # a second call re-reads the finished runs
    assert bench.main(["--seeds", "0", "--skip-train", "--data-root", str(tmp_path), "--runs",
                       str(tmp_path / "runs"), "--speed-utts", "0"]) == 0
    assert "| stop_held_out | 1 |" in capsys.readouterr().out
    # a probe: the same data and scoring, with a config merged after the variant's
    probe = tmp_path / "probe.yaml"
    probe.write_text("data:\n  init_args:\n    features:\n      n_mfcc: 20\n")
    assert bench.main(["--seeds", "0", "--epochs", "1", "--variants", "all_words", "--overlay", str(probe),
                       "--corpus", str(corpus), "--data-root", str(tmp_path), "--runs", str(tmp_path / "probe"),
                       "--speed-utts", "0"]) == 0
    from kwslab.checkpoint import load_checkpoint

    (ckpt,) = (tmp_path / "probe" / "all_words" / "seed0" / "checkpoints").glob("epoch*.ckpt")
    assert load_checkpoint(ckpt)["hyper_parameters"]["feature_config"]["n_mfcc"] == 20


def test_missing_corpus_names_the_prepare_commands(tmp_path: Path):
    bench = _bench()
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--seeds", "0", "--corpus", str(tmp_path / "absent"), "--data-root", str(tmp_path),
                    "--variants", "all_words"])
    message = str(exit_.value.code)
    assert "no Speech Commands corpus" in message and "python -m kwslab.prepare sequences" in message
