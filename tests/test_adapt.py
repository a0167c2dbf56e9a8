"""The adaptation CLI (``python -m kwslab.adapt``): a keyword model whose BatchNorm statistics are off is restored
end to end, errors name what is wrong, and a CTC model adapts by BatchNorm (with a caution) or by self-training."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kwslab.adapt import main as adapt_main
from kwslab.adaptation import ADAPTATION_KEY
from kwslab.inference import load_model
from kwslab.inference.scoring import evaluate_keywords
from tests.support.ctc_task import make_tiny_ctc_dataset


@pytest.mark.slow
def test_adapting_restores_a_model_whose_statistics_are_off(tiny_data, trained_keyword, tmp_path, capsys):
    """A checkpoint whose BatchNorm statistics are wrong (as after a channel change) fails; adapting it on the
    unlabelled test audio brings it back, through the CLI, into a new file that everything else can load."""
    data, ckpt = tiny_data, trained_keyword
    good = evaluate_keywords(ckpt, data["test"])["accuracy"]
    assert good >= 0.9
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(0)
    state = {k: (3.0 * torch.randn(v.shape, generator=gen) if k.endswith("running_mean")
                 else v * 25.0 if k.endswith("running_var") else v) for k, v in saved["state_dict"].items()}
    off = tmp_path / "off.ckpt"
    torch.save({**saved, "state_dict": state}, off)
    assert evaluate_keywords(off, data["test"])["accuracy"] < good - 0.2

    out = tmp_path / "adapted" / "adapted.ckpt"
    wav_dir = Path(data["test"]).parent / "wav" / "test"  # a folder of unlabelled clips
    assert adapt_main(["--ckpt", str(off), "--out", str(out), str(wav_dir), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "clips give noisy statistics" in captured.err and "--strength 0.5" in captured.err  # 18 clips
    clips = len(list(wav_dir.glob("*.wav")))
    assert report["clips"] == clips and report["batchnorm_layers"] == 2
    assert evaluate_keywords(out, data["test"])["accuracy"] >= good - 0.05
    stored = torch.load(out, map_location="cpu", weights_only=True)
    assert stored[ADAPTATION_KEY]["source"] == str(off) and stored[ADAPTATION_KEY]["clips"] == clips
    var_keys = [k for k in state if k.endswith("running_var")]
    assert len(var_keys) == 2
    source = torch.load(off, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(source[k], state[k]) for k in var_keys)  # the source is untouched
    assert not any(torch.allclose(stored["state_dict"][k], state[k]) for k in var_keys)
    for name, value in stored["state_dict"].items():  # only BatchNorm statistics changed
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(value, state[name]), name
    assert not list(out.parent.glob(".*.tmp"))
    # from a manifest (its keyword column is ignored) the result is the same
    again = tmp_path / "again.ckpt"
    assert adapt_main(["--ckpt", str(off), "--out", str(again), "--manifest", str(data["test"])]) == 0
    assert "adapted 2 BatchNorm layers" in capsys.readouterr().out
    again_state = torch.load(again, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.allclose(again_state[k], stored["state_dict"][k], rtol=1e-5, atol=1e-6) for k in var_keys)
    assert load_model(again).labels == load_model(ckpt).labels
    half = tmp_path / "half.ckpt"
    assert adapt_main(["--ckpt", str(off), "--out", str(half), str(wav_dir), "--strength", "0.5"]) == 0
    assert "noisy" not in capsys.readouterr().err  # the advice is not repeated to someone who follows it


@pytest.mark.slow
def test_adapt_cli_errors_name_what_is_wrong(tiny_data, trained_keyword, tmp_path, capsys):
    data, ckpt = tiny_data, trained_keyword
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(ckpt), "--manifest", str(data["test"])]) == 2
    assert "source checkpoint" in capsys.readouterr().err
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "a.ckpt"), str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or folder" in capsys.readouterr().err
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "b.ckpt"), str(broken)]) == 2
    assert "broken.wav" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "c.ckpt"), str(tmp_path / "empty")]) == 2
    assert "no .wav file" in capsys.readouterr().err
    assert adapt_main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "d.ckpt"),
                       str(broken)]) == 2
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "f.ckpt"), "--method", "self-train",
                       "--manifest", str(data["test"])]) == 2
    assert "self-training is for CTC checkpoints" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.ckpt"))  # nothing written on any failure
    with pytest.raises(SystemExit):
        adapt_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "e.ckpt")])  # no audio given at all


@pytest.mark.slow
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


@pytest.mark.slow
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


def _clips(folder: Path, n: int = 4) -> list[Path]:
    import numpy as np

    from kwslab.audio import write_wav

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(folder / f"clip{i}.wav")
        write_wav(paths[-1], (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    return paths


def test_adapt_refuses_to_overwrite_another_checkpoint_unless_forced(tmp_path, capsys):
    """adapt --out replaced a trained 12-class model with an adapted 4-class one, and made it 0600."""
    import os

    from tests.support.checkpoints import keyword_checkpoint

    ckpt = keyword_checkpoint(tmp_path / "kw.ckpt")
    clips = _clips(tmp_path / "wav")
    other = keyword_checkpoint(tmp_path / "trained.ckpt", seed=5)
    os.chmod(other, 0o640)
    before = other.read_bytes()
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(other), *map(str, clips)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trained.ckpt: the file exists; pass --force" in err
    assert other.read_bytes() == before
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(other), "--force", *map(str, clips)]) == 0
    assert other.read_bytes() != before and other.stat().st_mode & 0o777 == 0o640
    old = os.umask(0o022)
    try:
        assert adapt_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "new.ckpt"), *map(str, clips)]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "new.ckpt").stat().st_mode & 0o777 == 0o644


def test_adapt_lists_every_unusable_file_in_one_run(tmp_path, capsys):
    """One bad file was reported per run (9 s each); empty and all-zero clips were accepted."""
    import numpy as np

    from kwslab.audio import write_wav
    from tests.support.checkpoints import keyword_checkpoint

    ckpt = keyword_checkpoint(tmp_path / "kw.ckpt")
    folder = tmp_path / "wav"
    _clips(folder)
    write_wav(folder / "empty.wav", np.zeros(0, np.float32), 16000)
    write_wav(folder / "zeros.wav", np.zeros(8000, np.float32), 16000)
    (folder / "notes.wav").write_text("OPENAI_API_KEY=sk-test-123\n")
    out = tmp_path / "adapted.ckpt"
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(out), str(folder), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing: no such file or folder" in err and not out.exists()
    assert adapt_main(["--ckpt", str(ckpt), "--out", str(out), str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 3 of 7 audio file(s) cannot be used")
    for name, says in (("empty.wav", "0 samples"), ("zeros.wav", "silent"), ("notes.wav", "")):
        assert any(name in line and says in line for line in err.splitlines()[1:]), name
    assert "sk-test" not in err and "Traceback" not in err and not out.exists()
