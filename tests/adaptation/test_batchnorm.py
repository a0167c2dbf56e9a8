"""BatchNorm adaptation (``kwslab.adaptation.batchnorm``): exact statistics in the forward order, blending with the
trained statistics, unpadded CTC utterances, and models without statistics refused."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kwslab.adaptation import AdaptationError, adapt_batchnorm, adapt_model, batchnorm_layers
from kwslab.inference import LoadedModel
from kwslab.nets.crnn import CRNN


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and unbiased variance over every other axis of ``(N, C, ...)``, in float64."""
    flat = x.double().transpose(0, 1).reshape(x.shape[1], -1)
    return flat.mean(1), flat.var(1, unbiased=True)


class Swapped(nn.Module):
    """Defines ``late`` before ``early`` but calls ``early`` first: adaptation must follow the forward order."""

    def __init__(self) -> None:
        super().__init__()
        self.late = nn.BatchNorm1d(4)
        self.conv2 = nn.Conv1d(4, 4, 3, padding=1)
        self.early = nn.BatchNorm1d(4)
        self.conv1 = nn.Conv1d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(self.conv2(torch.relu(self.early(self.conv1(x)))))


def test_statistics_are_exact_and_layers_follow_the_forward_pass():
    torch.manual_seed(0)
    net = Swapped().eval()
    # inputs of different lengths, as a CTC model gets them: statistics must pool every frame, no padding
    inputs = [3.0 + 2.0 * torch.randn(2, 3, t) for t in (7, 20, 13)]
    assert batchnorm_layers(net, inputs[0]) == [net.early, net.late]
    assert adapt_batchnorm(net, inputs) == 2
    with torch.no_grad():
        h1 = torch.cat([net.conv1(x) for x in inputs], dim=2)
        mean1, var1 = _stats(h1)
        assert torch.allclose(net.early.running_mean.double(), mean1, atol=1e-5)
        assert torch.allclose(net.early.running_var.double(), var1, rtol=1e-4)
        # the second layer's statistics are of its input once the first layer is adapted
        h2 = torch.cat([net.conv2(torch.relu(net.early(net.conv1(x)))) for x in inputs], dim=2)
        mean2, var2 = _stats(h2)
        assert torch.allclose(net.late.running_mean.double(), mean2, atol=1e-5)
        assert torch.allclose(net.late.running_var.double(), var2, rtol=1e-4)
        out = torch.cat([net(x) for x in inputs], dim=2)  # adapted: every channel of the output is standardised
        assert torch.allclose(out.mean(dim=(0, 2)), torch.zeros(4), atol=1e-3)
    assert not net.training


def test_strength_blends_with_the_trained_statistics():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv1d(2, 3, 1), nn.BatchNorm1d(3)).eval()
    trained_mean = torch.tensor([1.0, -1.0, 0.5])
    net[1].running_mean.copy_(trained_mean)
    net[1].running_var.fill_(4.0)
    inputs = [torch.randn(8, 2, 10)]
    measured, _ = _stats(net[0](inputs[0]).detach())
    adapt_batchnorm(net, inputs, strength=0.25)
    assert torch.allclose(net[1].running_mean.double(), 0.75 * trained_mean.double() + 0.25 * measured, atol=1e-5)
    with pytest.raises(AdaptationError, match="strength"):
        adapt_batchnorm(net, inputs, strength=0.0)
    with pytest.raises(AdaptationError, match="no audio"):
        adapt_batchnorm(net, [])


def test_the_ctc_network_adapts_on_unpadded_utterances():
    torch.manual_seed(2)
    net = CRNN(in_features=5, vocab_size=4, conv_channels=[6, 6], kernel_size=3, subsample=2, rnn_hidden=4).eval()
    inputs = [torch.randn(1, 5, t) + 1.0 for t in (11, 30)]
    assert adapt_batchnorm(net, inputs) == 2
    with torch.no_grad():
        first = torch.cat([net.conv[0][0](x) for x in inputs], dim=2)  # the strided conv before the first BN
    mean, var = _stats(first)
    assert torch.allclose(net.conv[0][1].running_mean.double(), mean, atol=1e-5)
    assert torch.allclose(net.conv[0][1].running_var.double(), var, rtol=1e-4)


def test_a_model_without_batchnorm_statistics_is_refused(tmp_path):
    for module in (nn.Linear(3, 2), nn.Sequential(nn.Conv1d(3, 3, 1), nn.BatchNorm1d(3, track_running_stats=False))):
        model = LoadedModel(module, None, ["a", "b"], tmp_path / "m.ckpt", {})
        with pytest.raises(AdaptationError, match="no BatchNorm"):
            adapt_model(model, [tmp_path / "x.wav"])
    mixed = nn.Sequential(nn.Conv1d(3, 3, 1), nn.BatchNorm1d(3, track_running_stats=False), nn.BatchNorm1d(3))
    assert batchnorm_layers(mixed.eval(), torch.randn(2, 3, 5)) == [mixed[2]]
