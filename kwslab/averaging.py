"""Weight averaging for training: an exponential moving average (EMA) of the weights, validated and saved.

:class:`EMA` is Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` with one fix for how
``kwslab.fit`` works (fit, then ``trainer.test(ckpt_path="best")``). Lightning's callback swaps the averaged
weights in for validation and writes them as the checkpoint's ``state_dict`` (the raw weights go to
``current_model_state``), so ``ModelCheckpoint`` ranks and saves the averaged model. But when a checkpoint is
loaded again in the same process *for testing*, Lightning's callback puts the raw weights back into the model, so
the test would score the raw weights of the best epoch rather than the averaged ones that were validated. Here the
raw weights are restored only when resuming training; testing, validating and predicting from a checkpoint use
its ``state_dict``, the averaged weights, exactly as :func:`kwslab.inference.load_model` does.

Use it from YAML::

    trainer:
      callbacks:
        - class_path: kwslab.averaging.EMA
          init_args: {decay: 0.995}
"""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn

__all__ = ["EMA"]


class EMA(EMAWeightAveraging):
    """EMA of the weights (and BatchNorm buffers), used for validation, checkpoints and the final model.

    After every ``update_every_n_steps``-th optimizer step: ``avg = decay * avg + (1 - decay) * weights`` (the first
    update copies the weights). Validation runs on ``avg``; checkpoints hold ``avg`` as ``state_dict``.

    Args:
        decay: EMA decay per update, in (0, 1). Default 0.995 (an average over roughly the last 200 steps).
        update_every_n_steps: update after every n-th optimizer step. Default 1.
        update_starting_at_step: first step (0-based) that updates the average; None: from the start.
        use_buffers: also average buffers (BatchNorm running statistics). Default True.
        device: where to keep the averaged copy (None: the model's device).
    """

    def __init__(self, decay: float = 0.995, update_every_n_steps: int = 1,
                 update_starting_at_step: int | None = None, use_buffers: bool = True,
                 device: str | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA.decay must be in (0, 1), got {decay!r}")
        if not isinstance(update_every_n_steps, int) or update_every_n_steps < 1:
            raise ValueError(f"EMA.update_every_n_steps must be an integer >= 1, got {update_every_n_steps!r}")
        super().__init__(device=device, use_buffers=use_buffers, decay=decay,
                         update_every_n_steps=update_every_n_steps, update_starting_at_step=update_starting_at_step)
        self.decay = decay

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Resuming training: restore raw and averaged weights. Otherwise keep the checkpoint's averaged weights."""
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
