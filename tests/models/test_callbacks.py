"""The confusion-matrix callback and the plain metrics behind the summaries."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kwslab.callbacks import ConfusionMatrixCallback
from kwslab.metrics import classification_report, confusion_matrix


def test_confusion_matrix_and_report_by_hand():
    cm = confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    report = classification_report(cm, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert report["per_class"]["c"]["f1"] == 0.0
    assert report["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


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
