"""scripts/fsdd_experiments.py: one run through the real CLI on the tiny dataset, scored plain and adapted."""
from __future__ import annotations

import pytest
import yaml

from tests.support.keyword_task import make_tiny_dataset, tiny_config
from tests.support.scripts import load_script


@pytest.mark.slow
def test_run_fit_scores_the_best_and_last_checkpoints_and_the_adapted_best(tmp_path):
    script = load_script("fsdd_experiments")
    data = make_tiny_dataset(tmp_path / "data")
    config = tiny_config(data, tmp_path / "cfg", epochs=4)
    cfg = yaml.safe_load(config.read_text())
    checkpoint = cfg["trainer"]["callbacks"][0]["init_args"]  # the file names the script reads the accuracy from
    checkpoint.update(filename="epoch{epoch:02d}-acc{val/acc:.4f}", auto_insert_metric_name=False)
    config.write_text(yaml.safe_dump(cfg))
    manifests = {split: str(data[split]) for split in ("train", "val", "test")}
    result = script.run_fit(tmp_path / "run", [config], manifests, seed=0, epochs=3)
    assert (tmp_path / "run" / "overlay.yaml").exists() and (tmp_path / "run" / "fit.log").exists()
    assert len(result["val_curve"]) == 3 and result["val_acc_best"] == max(result["val_curve"])
    assert 0.0 <= result["best_epoch"] <= 2
    for key in ("test_acc", "test_acc_last", "test_acc_adapted"):
        assert 0.0 <= result[key] <= 1.0
    assert result["test_acc"] > 0.5  # the tone classes are learnt in three epochs
    table = script.markdown({"tiny": [result, {**result, "run": "again", "test_acc_adapted": 0.5}]})
    assert "test acc (best ckpt, adapted)" in table
    mean_row = table.splitlines()[-1]
    assert f"**{(result['test_acc_adapted'] + 0.5) / 2:.4f}**" in mean_row


def test_overlays_apply_on_top_of_the_fsdd_configs_and_a_missing_one_is_refused(tmp_path, capsys):
    import pytest

    from kwslab.fit import main as fit_main

    configs = load_script("fsdd_experiments").REPO / "configs"
    overlays = sorted((configs / "overlays").glob("*.yaml"))
    assert overlays
    for overlay in overlays:
        with pytest.raises(SystemExit) as exc:
            fit_main(["--config", str(configs / "cnn_fsdd.yaml"), "--config", str(configs / "cnn_fsdd_speaker.yaml"),
                      "--config", str(configs / "cnn_fsdd_speaker_synth.yaml"), "--config", str(overlay),
                      "--print_config"])
        assert exc.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["data"]["init_args"]["features"]["deltas"] == (2 if overlay.stem == "delta_deltas" else 1)
    with pytest.raises(SystemExit):
        load_script("fsdd_experiments").main(["--overlay", str(tmp_path / "nope.yaml"), "--data", str(tmp_path)])
    assert "nope.yaml: no such file" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was prepared
