"""Unsupervised BatchNorm adaptation (``kwslab.adapt``): exact statistics, forward order, the CLI end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from kwslab.adaptation import ADAPTATION_KEY, AdaptationError, adapt_batchnorm, adapt_model, batchnorm_layers
from kwslab.adapt import main as adapt_main
from kwslab.inference.scoring import evaluate_keywords
from kwslab.fit import main as fit_main
from kwslab.inference import LoadedModel, load_model
from kwslab.nets.crnn import CRNN
from tests.support.keyword_task import make_tiny_dataset, tiny_config


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and unbiased variance over every other axis of ``(N, C, ...)``, in float64."""
    flat = x.double().transpose(0, 1).reshape(x.shape[1], -1)
    return flat.mean(1), flat.var(1, unbiased=True)


class Swapped(nn.Module):
    """Defines ``late`` before ``early`` but calls ``early`` first: adaptation must follow the forward order."""

    def __init__(self) -> None:
        super().__init__()
        self.late = nn.BatchNorm1d(4)
        self.conv2 = nn.Conv1d(4, 4, 3, padding=1)
        self.early = nn.BatchNorm1d(4)
        self.conv1 = nn.Conv1d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(self.conv2(torch.relu(self.early(self.conv1(x)))))


def test_statistics_are_exact_and_layers_follow_the_forward_pass():
    torch.manual_seed(0)
    net = Swapped().eval()
    # inputs of different lengths, as a CTC model gets them: statistics must pool every frame, no padding
    inputs = [3.0 + 2.0 * torch.randn(2, 3, t) for t in (7, 20, 13)]
    assert batchnorm_layers(net, inputs[0]) == [net.early, net.late]
    assert adapt_batchnorm(net, inputs) == 2
    with torch.no_grad():
        h1 = torch.cat([net.conv1(x) for x in inputs], dim=2)
        mean1, var1 = _stats(h1)
        assert torch.allclose(net.early.running_mean.double(), mean1, atol=1e-5)
        assert torch.allclose(net.early.running_var.double(), var1, rtol=1e-4)
        # the second layer's statistics are of its input once the first layer is adapted
        h2 = torch.cat([net.conv2(torch.relu(net.early(net.conv1(x)))) for x in inputs], dim=2)
        mean2, var2 = _stats(h2)
        assert torch.allclose(net.late.running_mean.double(), mean2, atol=1e-5)
        assert torch.allclose(net.late.running_var.double(), var2, rtol=1e-4)
        out = torch.cat([net(x) for x in inputs], dim=2)  # adapted: every channel of the output is standardised
        assert torch.allclose(out.mean(dim=(0, 2)), torch.zeros(4), atol=1e-3)
    assert not net.training


def test_strength_blends_with_the_trained_statistics():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv1d(2, 3, 1), nn.BatchNorm1d(3)).eval()
    trained_mean = torch.tensor([1.0, -1.0, 0.5])
    net[1].running_mean.copy_(trained_mean)
    net[1].running_var.fill_(4.0)
    inputs = [torch.randn(8, 2, 10)]
    measured, _ = _stats(net[0](inputs[0]).detach())
    adapt_batchnorm(net, inputs, strength=0.25)
    assert torch.allclose(net[1].running_mean.double(), 0.75 * trained_mean.double() + 0.25 * measured, atol=1e-5)
    with pytest.raises(AdaptationError, match="strength"):
        adapt_batchnorm(net, inputs, strength=0.0)
    with pytest.raises(AdaptationError, match="no audio"):
        adapt_batchnorm(net, [])


def test_the_ctc_network_adapts_on_unpadded_utterances():
    torch.manual_seed(2)
    net = CRNN(in_features=5, vocab_size=4, conv_channels=[6, 6], kernel_size=3, subsample=2, rnn_hidden=4).eval()
    inputs = [torch.randn(1, 5, t) + 1.0 for t in (11, 30)]
    assert adapt_batchnorm(net, inputs) == 2
    with torch.no_grad():
        first = torch.cat([net.conv[0][0](x) for x in inputs], dim=2)  # the strided conv before the first BN
    mean, var = _stats(first)
    assert torch.allclose(net.conv[0][1].running_mean.double(), mean, atol=1e-5)
    assert torch.allclose(net.conv[0][1].running_var.double(), var, rtol=1e-4)


def test_a_model_without_batchnorm_statistics_is_refused(tmp_path):
    for module in (nn.Linear(3, 2), nn.Sequential(nn.Conv1d(3, 3, 1), nn.BatchNorm1d(3, track_running_stats=False))):
        model = LoadedModel(module, None, ["a", "b"], tmp_path / "m.ckpt", {})
        with pytest.raises(AdaptationError, match="no BatchNorm"):
            adapt_model(model, [tmp_path / "x.wav"])
    mixed = nn.Sequential(nn.Conv1d(3, 3, 1), nn.BatchNorm1d(3, track_running_stats=False), nn.BatchNorm1d(3))
    assert batchnorm_layers(mixed.eval(), torch.randn(2, 3, 5)) == [mixed[2]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    data = make_tiny_dataset(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("trained")
    cli = fit_main(["--config", str(tiny_config(data, out, epochs=6)), "--test=false"])
    return data, Path(cli.trainer.checkpoint_callback.best_model_path)


def test_adapting_restores_a_model_whose_statistics_are_off(tiny, tmp_path, capsys):
    """A checkpoint whose BatchNorm statistics are wrong (as after a channel change) fails; adapting it on the
    unlabelled test audio brings it back, through the CLI, into a new file that everything else can load."""
    data, ckpt = tiny
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


def test_adapt_cli_errors_name_what_is_wrong(tiny, tmp_path, capsys):
    data, ckpt = tiny
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


def test_cross_fold_evaluation_never_adapts_on_the_clips_it_scores(tiny, monkeypatch):
    import kwslab.adaptation.evaluation as evaluate
    from kwslab.data.manifest import read_manifest

    data, ckpt = tiny
    calls: list[tuple[object, set[str]]] = []
    real_adapt = evaluate.adapt_model

    def spy_adapt(model, files, strength=1.0, **kwargs):
        calls.append((model, set(map(str, files))))
        return real_adapt(model, files, strength, **kwargs)

    monkeypatch.setattr(evaluate, "adapt_model", spy_adapt)
    result = evaluate.evaluate_adapted(ckpt, data["test"], folds=3)
    rows = read_manifest(data["test"], need_keyword=True)
    speakers = {r.speaker for r in rows}
    assert set(result["groups"]) == speakers and len(calls) == 3 * len(speakers)
    assert len({id(model) for model, _ in calls}) == len(calls)  # a fresh copy of the model for every fold
    for name in speakers:
        members = {str(r.path) for r in rows if r.speaker == name}
        adapted_sets = [files for _, files in calls if files <= members]
        assert len(adapted_sets) == 3
        # each clip is left out of exactly one adaptation set: the one of the fold that scores it
        assert all(sum(clip not in files for files in adapted_sets) == 1 for clip in members)
    assert result["accuracy"] == pytest.approx(evaluate_keywords(ckpt, data["test"])["accuracy"])
    assert 0.0 <= result["adapted_accuracy"] <= 1.0
    with pytest.raises(AdaptationError, match="folds"):
        evaluate.evaluate_adapted(ckpt, data["test"], folds=1)


def test_evaluate_cli_scores_adaptation_cross_fold_for_an_ensemble(tiny, tmp_path, capsys):
    from kwslab.evaluate import main as evaluate_main

    data, ckpt = tiny
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
