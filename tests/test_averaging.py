"""kwslab.averaging.EMA: validated and saved weights are the moving average, and testing a checkpoint after fit
scores those averaged weights (Lightning's own callback would put the raw weights back)."""
from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, TensorDataset

from kwslab.averaging import EMA


class _Linear(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):  # noqa: ANN001
        x, y = batch
        self.log("val/loss", torch.nn.functional.cross_entropy(self(x), y))

    def test_step(self, batch, batch_idx):  # noqa: ANN001
        x, y = batch
        self.log("test/loss", torch.nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)


@pytest.mark.parametrize("kwargs", [{"decay": 0.0}, {"decay": 1.0}, {"update_every_n_steps": 0}])
def test_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="EMA"):
        EMA(**kwargs)


def test_loading_outside_fit_keeps_the_averaged_weights() -> None:
    model = _Linear()
    ema = EMA(decay=0.5)
    ema.setup(SimpleNamespace(), model, "fit")
    averaged = {k: torch.full_like(v, 1.0) for k, v in model.state_dict().items()}
    raw = {k: torch.full_like(v, -1.0) for k, v in model.state_dict().items()}
    model.load_state_dict(averaged)
    checkpoint = {"state_dict": averaged, "current_model_state": raw, "averaging_state": {"n_averaged": torch.tensor(3)}}
    ema.on_load_checkpoint(SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.TESTING)), model, checkpoint)
    assert all(torch.equal(v, averaged[k]) for k, v in model.state_dict().items())
    ema.on_load_checkpoint(SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.FITTING)), model, checkpoint)
    assert all(torch.equal(v, raw[k]) for k, v in model.state_dict().items())  # resuming: raw weights return


@pytest.mark.slow
def test_fit_then_test_uses_the_averaged_checkpoint(tmp_path) -> None:  # noqa: ANN001
    model = _Linear()
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/loss", save_top_k=1)
    trainer = L.Trainer(max_epochs=3, callbacks=[ckpt_cb, EMA(decay=0.9)], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", deterministic=True)
    trainer.fit(model, _loader(), _loader())
    saved = torch.load(ckpt_cb.best_model_path, weights_only=True)
    averaged, raw = saved["state_dict"], saved["current_model_state"]
    assert not torch.allclose(averaged["layer.weight"], raw["layer.weight"])
    trainer.test(model, _loader(), ckpt_path="best", verbose=False)
    assert torch.equal(model.layer.weight.detach(), averaged["layer.weight"])
