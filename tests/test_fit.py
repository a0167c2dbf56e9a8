"""The training CLI end to end on a tiny generated dataset: fit + test, summary, resume, determinism, W&B,
fine-tuning with a frozen backbone, a user's own module by class path, DDP on CPU, and the CTC recogniser."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kwslab.checkpoint import load_checkpoint
from kwslab.fit import main
from tests.support.keyword_task import make_tiny_dataset, tiny_config

REPO = Path(__file__).resolve().parents[1]


def _final_val_acc(out: Path) -> list[float]:
    rows = list(csv.DictReader((out / "lightning_logs" / "version_0" / "metrics.csv").open()))
    return [float(r["val/acc"]) for r in rows if r.get("val/acc")]


def test_fit_trains_tests_and_summarises(tiny_data, tmp_path, capsys):
    cli = main(["--config", str(tiny_config(tiny_data, tmp_path, epochs=6))])
    out = capsys.readouterr().out
    assert "Best checkpoint:" in out and "python -m kwslab.predict --ckpt" in out and "python -m kwslab.adapt" in out
    assert "accuracy" in out and "precision" in out
    test_acc = cli.trainer.callback_metrics["test/acc"].item()
    assert test_acc >= 0.9, f"the tiny tone task should be learnt, test/acc={test_acc}"
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    ckpt = load_checkpoint(best)  # weights_only loading works on our own checkpoints
    hp = ckpt["hyper_parameters"]
    assert hp["labels"] == ["high", "low", "mid"] and hp["num_outputs"] == 3
    assert hp["feature_config"]["num_frames"] == 51 and hp["feature_config"]["n_mfcc"] == 13
    assert (tmp_path / "lightning_logs" / "version_0" / "config.yaml").is_file()  # resolved config saved
    # last.ckpt is the final epoch even though val/acc stopped improving before it (Lightning's save_last is not)
    assert load_checkpoint(tmp_path / "ckpt" / "last.ckpt")["epoch"] == 5 and ckpt["epoch"] < 5
    assert (tmp_path / "confusion_test.png").is_file()
    cm_cb = next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == "ConfusionMatrixCallback")
    result = cm_cb.results["test"]
    assert result["confusion"].sum() == 18 and result["report"]["accuracy"] == pytest.approx(test_acc, abs=1e-6)
    for file, true, predicted in result["misclassified"]:  # named by the dataset rows behind each prediction
        assert Path(file).is_file() and Path(file).name.startswith(true) and true != predicted


@pytest.mark.slow
def test_resume_after_a_crash_reaches_the_uninterrupted_metrics(tiny_data, tmp_path):
    full = main(["--config", str(tiny_config(tiny_data, tmp_path / "full", epochs=4)), "--test=false"])
    reference = _final_val_acc(tmp_path / "full")
    weights = {k: v.clone() for k, v in full.model.state_dict().items()}

    crash_cfg = tiny_config(tiny_data, tmp_path / "crash", epochs=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(["--config", str(crash_cfg), "--test=false",
              "--trainer.callbacks+=tests.support.callbacks.CrashAt", "--trainer.callbacks.epoch=2",
              "--trainer.callbacks.batch=1"])
    assert (tmp_path / "crash" / "ckpt" / "last.ckpt").is_file()
    resumed = main(["--config", str(crash_cfg), "--test=false", "--ckpt_path", "last"])
    assert resumed.trainer.current_epoch == 4
    for k, v in resumed.model.state_dict().items():
        assert torch.allclose(v.float(), weights[k].float(), atol=1e-5), f"{k} differs after resume"
    assert resumed.trainer.callback_metrics["val/acc"].item() == pytest.approx(reference[-1])


@pytest.mark.slow
def test_same_seed_same_metrics(tiny_data, tmp_path):
    a = main(["--config", str(tiny_config(tiny_data, tmp_path / "a", epochs=2)), "--test=false"])
    b = main(["--config", str(tiny_config(tiny_data, tmp_path / "b", epochs=2)), "--test=false"])
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert _final_val_acc(tmp_path / "a") == _final_val_acc(tmp_path / "b")


@pytest.mark.slow
def test_wandb_offline_run_files_and_run_id_in_checkpoint(tiny_data, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = main(["--config", str(tiny_config(tiny_data, tmp_path, epochs=1, logger="wandb")), "--test=false"])
    runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((tmp_path / "runs").rglob("*"))[:20]
    assert list(runs[0].glob("*.wandb")), "the offline run file was not written"
    ckpt = load_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert ckpt["wandb_run_id"] == cli.trainer.logger.version
    assert ckpt["wandb_run_id"] in runs[0].name
    import wandb

    wandb.finish()


def test_unknown_config_key_fails_before_training(tiny_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(tiny_config(tiny_data, tmp_path)), "--model.chanels=[8]"])
    assert exc.value.code != 0
    assert "chanels" in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()


def test_wrong_config_value_fails_before_training(tiny_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--config", str(tiny_config(tiny_data, tmp_path)), "--trainer.max_epochs=many"])
    assert "max_epochs" in capsys.readouterr().err


@pytest.mark.slow
def test_fine_tune_new_keywords_with_frozen_backbone(trained_keyword, tmp_path):
    data = make_tiny_dataset(tmp_path / "new", classes={"buzz": 5000.0, "hum": 150.0})
    source = torch.load(trained_keyword, map_location="cpu", weights_only=True)["state_dict"]
    cli = main(["--config", str(tiny_config(data, tmp_path / "ft", epochs=8)), "--test=false",
                f"--model.init_from={trained_keyword}", "--model.freeze_backbone=true"])
    tuned = cli.model.state_dict()
    assert cli.model.labels == ["buzz", "hum"]
    for name, value in tuned.items():
        if name.startswith("net.backbone."):
            assert torch.equal(value, source[name]), f"frozen {name} changed"
    assert tuned["net.head.3.weight"].shape[0] == 2  # re-initialised head for two new classes
    assert cli.trainer.callback_metrics["val/acc"].item() >= 0.9


@pytest.mark.slow
def test_user_defined_module_trains_by_class_path(tiny_data, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tests" / "fixtures_pkg"))
    cli = main(["--config", str(tiny_config(tiny_data, tmp_path, epochs=2)), "--test=false",
                "--model=userpkg.models.MeanPoolClassifier", "--model.lr=0.1"])
    assert type(cli.model).__name__ == "MeanPoolClassifier"
    assert cli.model.labels == ["high", "low", "mid"] and cli.model.linear.out_features == 3
    assert "val/acc" in cli.trainer.callback_metrics


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path, epochs=4)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "kwslab.fit", "--config", str(config),
                           "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Best checkpoint:" in proc.stdout
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    acc = float(proc.stdout.split("accuracy ")[1].split()[0])
    assert acc >= 0.9, proc.stdout


@pytest.mark.slow
def test_fit_ctc_through_the_cli_logs_wer_and_cer(trained_ctc):
    cli, tmp_path = trained_ctc
    metrics = cli.trainer.callback_metrics
    assert {"test/wer", "test/cer"} <= set(metrics)
    assert metrics["test/cer"].item() <= 0.2, metrics
    logged = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/wer", "val/cer", "train/loss_epoch"} <= set(logged)
    ckpt = torch.load(cli.trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert ckpt["hyper_parameters"]["labels"] == ["", "a", "b", "c"]


# -- bad config values and checkpoints: one line, before any training ---------------------------------------------
@pytest.mark.parametrize("flag, says", [
    ("--trainer.max_epochs=many", "error: trainer.max_epochs: Expected a <class 'int'> (given: many)"),
    ("--model.chanels=[8]", "error: model (kwslab.models.KeywordClassifier): Option 'chanels' is not accepted"),
    ("--trainer.max_epoch=2", "error: unrecognized arguments: --trainer.max_epoch=2"),
    ("--data.init_args.batch_size=-1", "error: config: batch_size must be >= 1"),
])
def test_bad_config_values_and_abbreviations_are_one_line(tiny_data, tmp_path, capsys, flag, says):
    """60-110 lines of jsonargparse around the right message; --trainer.max_epoch was silently taken for
    --trainer.max_epochs (a prefix abbreviation)."""
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(tiny_config(tiny_data, tmp_path)), flag])
    assert exc.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(says), err
    assert not (tmp_path / "ckpt").exists()


def test_resuming_from_another_models_checkpoint_is_one_line(tiny_data, tmp_path, capsys):
    """fit --ckpt_path with a checkpoint of another model printed Lightning's lists of every state_dict key."""
    from tests.support.checkpoints import ctc_checkpoint

    other = ctc_checkpoint(tmp_path / "ctc.ckpt")
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(tiny_config(tiny_data, tmp_path / "run")), f"--ckpt_path={other}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"--ckpt_path {other}: belongs to another model or config" in lines[0]
    assert "Traceback" not in err and "state_dict" not in err
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(SystemExit):
        main(["--config", str(tiny_config(tiny_data, tmp_path / "run")), f"--ckpt_path={tmp_path / 'empty.ckpt'}"])
    assert "empty.ckpt: is empty (0 bytes)" in capsys.readouterr().err


def test_a_manifest_the_datamodule_refuses_at_fit_start_is_an_error_not_a_traceback(tiny_data, tmp_path, capsys):
    """A NaN clip refused by the manifest reader when fit set up its data gave a 30-line traceback."""
    import numpy as np

    from kwslab.audio import wav_bytes
    from kwslab.data.manifest import write_manifest

    data = bytearray(wav_bytes(np.full(8000, 0.1, np.float32), 16000, float_format=True))
    start = data.find(b"data") + 8
    data[start:start + 40] = np.full(10, np.nan, np.float32).tobytes()
    (tmp_path / "nan.wav").write_bytes(bytes(data))
    manifest = tmp_path / "train.csv"
    good = list(csv.DictReader(tiny_data["train"].open()))
    write_manifest(manifest, [{"filename": str(tmp_path / "nan.wav"), "keyword": "high"}]
                   + [{"filename": r["filename"], "keyword": r["keyword"]} for r in good])
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(tiny_config(tiny_data, tmp_path / "run")), f"--data.init_args.train_manifest={manifest}",
              "--test=false"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: manifest" in err and "nan.wav" in err


def _config_without_progress_key(config: Path, value: object = "unset") -> Path:
    import yaml

    loaded = yaml.safe_load(config.read_text())
    loaded["trainer"].pop("enable_progress_bar")
    if value != "unset":
        loaded["trainer"]["enable_progress_bar"] = value
    config.write_text(yaml.safe_dump(loaded))
    return config


def test_output_that_is_not_a_terminal_gets_one_line_per_epoch_and_no_bar(tiny_data, tmp_path, capsys):
    """capsys' stdout is not a terminal (as in CI, nohup, a log file): no progress-bar redraws, one line per epoch
    with the epoch, train and val losses, val/acc and seconds."""
    config = _config_without_progress_key(tiny_config(tiny_data, tmp_path, epochs=2))
    cli = main(["--config", str(config), "--test=false"])
    captured = capsys.readouterr()
    assert cli.trainer.progress_bar_callback is None
    assert "\r" not in captured.out + captured.err
    lines = [line for line in captured.out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["0/1", "1/1"]
    for line in lines:
        assert re.fullmatch(r"epoch \d/1  train/loss \d\.\d{4}  train/acc \d\.\d{4}  train/f1 \d\.\d{4}  "
                            r"val/loss \d\.\d{4}  val/acc \d\.\d{4}  val/f1 \d\.\d{4}  \d+\.\d s", line), line
    logged = list(csv.DictReader((tmp_path / "lightning_logs" / "version_0" / "metrics.csv").open()))
    val_acc = [float(r["val/acc"]) for r in logged if r.get("val/acc")]
    assert [float(line.split("val/acc ")[1].split()[0]) for line in lines] == pytest.approx(val_acc, abs=5e-5)


def test_a_config_that_asks_for_the_progress_bar_gets_it(tiny_data, tmp_path, capsys):
    config = _config_without_progress_key(tiny_config(tiny_data, tmp_path, epochs=1), True)
    cli = main(["--config", str(config), "--test=false"])
    out = capsys.readouterr().out
    assert cli.trainer.progress_bar_callback is not None
    assert not [line for line in out.splitlines() if line.startswith("epoch ")]  # the bar, not both


def test_a_training_manifest_with_one_class_names_the_manifest(tmp_path, capsys):
    """torchmetrics says 'num_classes ... larger than 1, but got 1'; the user needs to know it came from the data."""
    data = make_tiny_dataset(tmp_path / "one", per_class={"train": 2, "val": 1, "test": 1}, classes={"high": 3000.0})
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(tiny_config(data, tmp_path, epochs=1)), "--test=false"])
    assert exc.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"data.init_args.train_manifest {data['train']}: it needs two or more" in errors[0]


def test_trainer_settings_lightning_refuses_at_the_start_are_one_line(tiny_data, tmp_path, capsys):
    """A learning-rate monitor with the logger switched off: Lightning's MisconfigurationException, raised when
    training starts, was a 30-line traceback."""
    import yaml

    config = tiny_config(tiny_data, tmp_path / "run")
    loaded = yaml.safe_load(config.read_text())
    loaded["trainer"]["callbacks"] = [{"class_path": "lightning.pytorch.callbacks.LearningRateMonitor"}]
    config.write_text(yaml.safe_dump(loaded))
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config), "--trainer.logger=false", "--test=false"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error: the trainer settings do not fit together: Cannot use `LearningRateMonitor`" in err
