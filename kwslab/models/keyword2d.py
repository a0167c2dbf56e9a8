"""Kept so configs and checkpoints that name ``kwslab.models.keyword2d.KeywordClassifier2d`` still work.

New configs pick the 2-D CNN as the keyword classifier's network instead::

    model:
      class_path: kwslab.models.KeywordClassifier
      init_args:
        net:
          class_path: kwslab.nets.KeywordCNN2d
          init_args: {channels: [32, 64, 128], kernel_size: 3}
"""
from __future__ import annotations

from typing import Any, Sequence

from kwslab.models.keyword import KeywordClassifier


class KeywordClassifier2d(KeywordClassifier):
    """Deprecated: :class:`KeywordClassifier` with ``net`` = :class:`kwslab.nets.KeywordCNN2d` built from these
    arguments (defaults ``channels=(32, 64, 128)``, ``kernel_size=3``, ``pool=2``, ``hidden=128``,
    ``dropout=0.2``). Other arguments: as :class:`KeywordClassifier`. Its checkpoints load as KeywordClassifier."""

    def __init__(self, num_outputs: int = 2, labels: Sequence[str] | None = None,
                 feature_config: dict[str, Any] | None = None, channels: Sequence[int] = (32, 64, 128),
                 kernel_size: int = 3, pool: int = 2, hidden: int = 128, dropout: float = 0.2,
                 **kwargs: Any) -> None:
        net = {"class_path": "kwslab.nets.cnn2d.KeywordCNN2d",
               "init_args": {"channels": list(channels), "kernel_size": kernel_size, "pool": pool,
                             "hidden": hidden, "dropout": dropout}}
        super().__init__(num_outputs, labels, feature_config, net=net, **kwargs)
