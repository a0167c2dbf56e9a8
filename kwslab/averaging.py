"""Weight averaging for training: an exponential moving average (EMA) of the weights, validated and saved.

:class:`EMA` is Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` with one fix for how
``kwslab.fit`` works (fit, then ``trainer.test(ckpt_path="best")``). Lightning's callback swaps the averaged
weights in for validation and writes them as the checkpoint's ``state_dict`` (the raw weights go to
``current_model_state``), so ``ModelCheckpoint`` ranks and saves the averaged model. But when a checkpoint is
loaded again in the same process *for testing*, Lightning's callback puts the raw weights back into the model, so
the test would score the raw weights of the best epoch rather than the averaged ones that were validated. Here the
raw weights are restored only when resuming training; testing, validating and predicting from a checkpoint use
its ``state_dict``, the averaged weights, exactly as :func:`kwslab.inference.load_model` does.

The average can be sized in epochs (``half_life_epochs``) rather than as a per-step decay, so the same config
averages over the same share of training on a 3,000-clip subset (11 steps per epoch) and on the full corpus
(330): a fixed decay of 0.999 spans ~3 epochs of the full corpus but ~90 epochs of the subset.

Use it from YAML::

    trainer:
      callbacks:
        - class_path: kwslab.averaging.EMA
          init_args: {half_life_epochs: 1.0}   # or {decay: 0.995}, per optimizer step
"""
from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch.optim.swa_utils import get_ema_avg_fn
from lightning.pytorch.trainer.states import TrainerFn

__all__ = ["EMA"]


class EMA(EMAWeightAveraging):
    """EMA of the weights (and BatchNorm buffers), used for validation, checkpoints and the final model.

    After every ``update_every_n_steps``-th optimizer step: ``avg = decay * avg + (1 - decay) * weights`` (the first
    update copies the weights). Validation runs on ``avg``; checkpoints hold ``avg`` as ``state_dict``.

    Args:
        decay: EMA decay per update, in (0, 1). Default 0.995 (an average over roughly the last 200 steps).
        half_life_epochs: if set, the decay is chosen when training starts so that a weight's share in the
            average halves every ``half_life_epochs`` epochs, whatever the number of steps per epoch (``decay`` is
            then ignored). The decay used is logged as ``ema_decay`` in the callback's state.
        update_every_n_steps: update after every n-th optimizer step. Default 1.
        update_starting_at_step: first step (0-based) that updates the average; None: from the start.
        use_buffers: also average buffers (BatchNorm running statistics). Default True.
        device: where to keep the averaged copy (None: the model's device).
    """

    def __init__(self, decay: float = 0.995, update_every_n_steps: int = 1,
                 update_starting_at_step: int | None = None, use_buffers: bool = True,
                 device: str | None = None, half_life_epochs: float | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA.decay must be in (0, 1), got {decay!r}")
        if half_life_epochs is not None and not (isinstance(half_life_epochs, (int, float)) and half_life_epochs > 0):
            raise ValueError(f"EMA.half_life_epochs must be a number > 0 (or null to use decay), got "
                             f"{half_life_epochs!r}")
        if not isinstance(update_every_n_steps, int) or update_every_n_steps < 1:
            raise ValueError(f"EMA.update_every_n_steps must be an integer >= 1, got {update_every_n_steps!r}")
        super().__init__(device=device, use_buffers=use_buffers, decay=decay,
                         update_every_n_steps=update_every_n_steps, update_starting_at_step=update_starting_at_step)
        self.decay = decay
        self.half_life_epochs = half_life_epochs

    @staticmethod
    def decay_for(half_life_epochs: float, updates_per_epoch: float) -> float:
        """The per-update decay whose weight halves after ``half_life_epochs`` epochs of ``updates_per_epoch``."""
        return 0.5 ** (1.0 / max(half_life_epochs * updates_per_epoch, 1e-9))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """With ``half_life_epochs``, size the decay from this run's optimizer steps per epoch."""
        super().on_train_start(trainer, pl_module)
        if self.half_life_epochs is None or self._average_model is None:
            return
        batches = trainer.num_training_batches
        if not math.isfinite(batches) or batches < 1:
            return  # an iterable without a length: keep ``decay``
        steps = math.ceil(batches / max(1, trainer.accumulate_grad_batches))
        self.decay = self.decay_for(self.half_life_epochs, steps / self.update_every_n_steps)
        self._average_model.avg_fn = get_ema_avg_fn(decay=self.decay)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Resuming training: restore raw and averaged weights. Otherwise keep the checkpoint's averaged weights."""
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
