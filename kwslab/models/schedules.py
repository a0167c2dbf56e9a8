"""Learning-rate schedules sized as fractions of training, not in optimizer steps.

A schedule written in steps only works at one dataset size: 1,000 warm-up steps are three epochs of the full
Speech Commands corpus and ninety of a 3,000-clip subset. :class:`WarmupCosine` is given fractions; the model's
``configure_optimizers`` (:func:`kwslab.models.base.build_optimizers`) tells it the run's total number of
optimizer steps (``trainer.estimated_stepping_batches``) and steps it every optimizer step.
"""
from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["WarmupCosine"]


class WarmupCosine(LRScheduler):
    """Linear warm-up from ~0 to the optimizer's learning rate over the first ``warmup`` fraction of training, then
    a half cosine down to ``final`` times it at the end.

    Args:
        optimizer: the optimizer (LightningCLI passes it).
        warmup: fraction of all optimizer steps spent warming up, in [0, 1). Default 0.05.
        final: learning rate at the end, as a fraction of the peak, in [0, 1]. Default 0.01.
        total_steps: optimizer steps in the whole run; left None in configs, where
            :func:`~kwslab.models.base.build_optimizers` sets it with :meth:`set_total_steps`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup: float = 0.05, final: float = 0.01,
                 total_steps: int | None = None, last_epoch: int = -1) -> None:
        if not (isinstance(warmup, (int, float)) and 0.0 <= warmup < 1.0):
            raise ValueError(f"WarmupCosine.warmup is a fraction of training in [0, 1), got {warmup!r}")
        if not (isinstance(final, (int, float)) and 0.0 <= final <= 1.0):
            raise ValueError(f"WarmupCosine.final is a fraction of the peak learning rate in [0, 1], got {final!r}")
        self.warmup, self.final, self.total_steps = float(warmup), float(final), total_steps
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        """The learning rate after ``step`` optimizer steps, as a fraction of the peak (1 until the total is known)."""
        if not self.total_steps:
            return 1.0
        total = max(int(self.total_steps), 1)
        warm = self.warmup * total
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = min((step - warm) / max(total - warm, 1.0), 1.0)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    def set_total_steps(self, total_steps: int) -> None:
        """Fix the run's length (optimizer steps) and set the current learning rate accordingly."""
        if not (isinstance(total_steps, int) and total_steps >= 1):
            raise ValueError(f"WarmupCosine: total_steps must be a positive integer, got {total_steps!r}")
        self.total_steps = total_steps
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
