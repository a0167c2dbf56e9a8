"""The confusion-matrix callback (``kwslab.callbacks``): misclassified files named, the PNG written (the metrics
behind it are in test_metrics.py)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from kwslab.callbacks import ConfusionMatrixCallback


def test_callback_names_misclassified_files_and_writes_png(tmp_path):
    rows = [SimpleNamespace(path=Path(f"/clips/{i}.wav")) for i in range(6)]
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, log_dir=str(tmp_path),
                              default_root_dir=str(tmp_path), current_epoch=3, global_step=10, loggers=[],
                              datamodule=SimpleNamespace(datasets={"val": SimpleNamespace(rows=rows)}))
    module = SimpleNamespace(labels=["no", "yes"])
    cb = ConfusionMatrixCallback()
    cb.on_validation_epoch_start(trainer, module)
    # two batches; items 4 and 1 are wrong (the batches arrive out of dataset order, as with bucketing)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    cb.on_validation_batch_end(trainer, module, {"logits": logits, "targets": torch.tensor([0, 0, 1])},
                               (None, None, torch.tensor([5, 4, 3])), 0)
    cb.on_validation_batch_end(trainer, module, {"logits": torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]),
                                                 "targets": torch.tensor([0, 1, 0])},
                               (None, None, torch.tensor([0, 1, 2])), 1)
    cb.on_validation_epoch_end(trainer, module)
    result = cb.results["val"]
    assert result["confusion"].tolist() == [[2, 2], [1, 1]]
    assert result["misclassified"] == [("/clips/4.wav", "no", "yes"), ("/clips/0.wav", "no", "yes"),
                                       ("/clips/1.wav", "yes", "no")]
    assert Path(result["png"]).is_file() and Path(result["png"]).stat().st_size > 1000


def test_epoch_line_puts_losses_first_and_drops_step_values():
    from kwslab.callbacks import EpochLines

    metrics = {"val/acc": torch.tensor(0.9125), "train/loss_step": torch.tensor(9.0), "val/loss": torch.tensor(0.38712),
               "train/loss_epoch": torch.tensor(0.41234), "train/acc": torch.tensor(0.875), "lr-Adam": 0.01}
    assert EpochLines.line(3, 10, metrics, 12.43) == \
        "epoch 3/9  train/loss 0.4123  train/acc 0.8750  val/loss 0.3871  val/acc 0.9125  12.4 s"
    # an epoch without validation (check_val_every_n_epoch) does not repeat the last epoch's val metrics
    assert EpochLines.line(4, 10, metrics, 1.0, validated=False) == "epoch 4/9  train/loss 0.4123  train/acc 0.8750  1.0 s"
