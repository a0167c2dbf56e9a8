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
