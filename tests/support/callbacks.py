"""A callback that raises mid-epoch, to test resuming from ``last.ckpt``."""
from lightning.pytorch.callbacks import Callback


class CrashAt(Callback):
    """Raise ``RuntimeError('simulated crash')`` at training batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int = 1, batch: int = 0) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise RuntimeError("simulated crash")
