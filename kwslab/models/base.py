"""What every kwslab LightningModule shares: the default optimizer and building optimizer + scheduler from the
LightningCLI callables given in the config."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch


def default_adamw(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW(lr=3e-3, weight_decay=1e-2): the optimizer when the config names none."""
    return torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-2)


def build_optimizers(module: torch.nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                     scheduler: Callable[..., Any] | None) -> Any:
    """``configure_optimizers`` for trainable parameters: the optimizer, plus the scheduler stepped per epoch
    (ReduceLROnPlateau monitors ``val/loss``)."""
    opt = optimizer([p for p in module.parameters() if p.requires_grad])
    if scheduler is None:
        return opt
    sched = scheduler(opt)
    config = {"scheduler": sched, "interval": "epoch"}
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        config["monitor"] = "val/loss"
    return {"optimizer": opt, "lr_scheduler": config}
