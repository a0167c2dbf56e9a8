"""The plain metrics behind the summaries (``kwslab.metrics``): confusion matrix and classification report."""
from __future__ import annotations

import numpy as np
import pytest

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
