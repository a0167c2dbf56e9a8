"""The model-zoo networks: parameter counts against the papers, shapes, gradients, batch independence, ONNX.

Parameter counts are for each paper's input size and the 12-class Speech Commands task. Each test pins our
exact count (so any change to a layer shows up here) and checks it against the published figure within 5%.
Sources of the published figures (the papers' results tables that compare with prior work; the layer
details come from the authors' code, read for this and cited per model):
- BC-ResNet: Kim et al. 2021 (arXiv:2106.04140), Speech Commands v1/v2, 12 classes, 40 log-mels: BC-ResNet-1
  9.2k parameters, BC-ResNet-8 321k. Layers: the authors' Qualcomm-AI-research/bcresnet ``bcresnet.py``.
- MatchboxNet: Majumdar & Ginsburg 2020 (arXiv:2004.08531), 64 MFCC: 3x1x64 has 77k parameters. Layers:
  NeMo's ``examples/asr/conf/matchboxnet/matchboxnet_3x1x64_v2.yaml`` and ``JasperBlock``.
- TC-ResNet: Choi et al. 2019 (arXiv:1904.03814), 40 MFCC, 12 classes: TC-ResNet8 66k parameters and 3.0M
  FLOPs, TC-ResNet8-1.5 145k and 6.6M. Layers: the authors' hyperconnect/TC-ResNet ``tc_resnet.py``.
- DS-CNN: Zhang et al. 2017, "Hello Edge" (arXiv:1711.07128), summary of the best models: DS-CNN-S (10 MFCC
  x 49 frames) 94.4%, 38.6 KB memory, 5.4 M operations. Layers: the authors' ARM-software/ML-KWS-for-MCU
  ``train_commands.txt`` and ``models.py``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from kwslab.nets import DSCNN, BCResNet, MatchboxNet, TCResNet

NUM_CLASSES = 12
Factory = Callable[[], nn.Module]

# name: (builder, paper's input rows, paper's frame count, a second frame count)
ZOO: dict[str, tuple[Factory, int, int, int]] = {
    "bcresnet1": (lambda: BCResNet(40, NUM_CLASSES), 40, 101, 63),
    "bcresnet8": (lambda: BCResNet(40, NUM_CLASSES, width=8), 40, 101, 40),
    "matchboxnet": (lambda: MatchboxNet(64, NUM_CLASSES), 64, 128, 101),
    "tcresnet8": (lambda: TCResNet(40, NUM_CLASSES), 40, 98, 61),
    "tcresnet8_1.5": (lambda: TCResNet(40, NUM_CLASSES, width=1.5), 40, 98, 61),
    # TC-ResNet14 (paper: 137k): blocks that keep their width exercise the identity shortcut
    "tcresnet14": (lambda: TCResNet(40, NUM_CLASSES, channels=(16, 24, 24, 32, 32, 48, 48)), 40, 98, 61),
    "dscnn_s": (lambda: DSCNN(10, NUM_CLASSES), 10, 49, 98),
}
# the slower ones are left out of the ONNX round trip only where another width covers the same code
ONNX_ZOO = [name for name in ZOO if name not in ("bcresnet8", "tcresnet8_1.5")]


def build(name: str) -> tuple[nn.Module, int, int, int]:
    torch.manual_seed(0)
    factory, rows, frames, other = ZOO[name]
    return factory(), rows, frames, other


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def macs(net: nn.Module, rows: int, frames: int) -> int:
    """Multiply-accumulates of the convolutions and linear layers for one clip (hooks on a forward pass)."""
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            total += output[0].numel() * module.in_channels // module.groups * int(np.prod(module.kernel_size))
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net.eval()(torch.zeros(1, rows, frames))
    for h in handles:
        h.remove()
    return total


def features(batch: int, rows: int, frames: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, rows, frames, generator=torch.Generator().manual_seed(seed))


# --- (1) parameter counts against the papers ---------------------------------------------------------------

@pytest.mark.parametrize("name, ours, paper", [
    ("bcresnet1", 9_232, 9_200),
    ("bcresnet8", 321_068, 321_000),
    # 12 classes: 74,892 (-2.7%). The same layers with a 30-class decoder (GSC v1, all words) have 77,214, the
    # count that rounds to the paper's 77k; the 12-class head has 18 x 129 fewer weights. Pinned: the 12-class
    # count against 77k, and the 30-class count below.
    ("matchboxnet", 74_892, 77_000),
    # TC-ResNet: the authors' TensorFlow code has no bias in the final layer; ours has one (+12).
    ("tcresnet8", 65_180, 66_000),
    ("tcresnet8_1.5", 144_276, 145_000),
])
def test_parameter_count_matches_the_paper(name: str, ours: int, paper: int) -> None:
    net = build(name)[0]
    assert count(net) == ours
    assert abs(ours - paper) <= 0.05 * paper


def test_matchboxnet_with_a_30_class_decoder_has_the_papers_77k() -> None:
    assert count(MatchboxNet(64, 30)) == 77_214


def test_dscnn_s_count_and_operations() -> None:
    """DS-CNN-S cannot reach "38.6k parameters" with the paper's layers: 38.6 is its *memory* in KB.

    The faithful network (conv 10x4 stride 2x2 to 64 channels, 4 depthwise-separable layers of 64, BatchNorm,
    average pool, linear) has 23,180 parameters, as does the authors' TensorFlow code (conv biases and
    BatchNorm shifts there, BatchNorm scales and shifts here). Hello Edge reports memory in KB with 8-bit
    weights and activations: 23.2 KB of weights plus two 25x5x64 activation buffers of 8 KB come to about
    39 KB, close to the 38.6. Its 5.4 M operations (2 per multiply-accumulate) match this network within 2%,
    which pins the layer sizes; 38.6k parameters would need 67% more weights than the paper's layers have.
    """
    net, rows, frames, _ = build("dscnn_s")
    assert count(net) == 23_180
    ops = 2 * macs(net, rows, frames)
    assert ops == 5_313_536 and abs(ops - 5.4e6) <= 0.05 * 5.4e6


@pytest.mark.parametrize("name, paper_flops", [("tcresnet8", 3.0e6), ("tcresnet8_1.5", 6.6e6)])
def test_tcresnet_flops_match_the_paper(name: str, paper_flops: float) -> None:
    net, rows, frames, _ = build(name)
    flops = 2 * macs(net, rows, frames)  # 40 MFCC x 98 frames (1 s, 30 ms windows, 10 ms hop)
    assert abs(flops - paper_flops) <= 0.05 * paper_flops


# --- (2) shapes and gradients ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(ZOO))
def test_forward_backward_shapes_and_gradients(name: str) -> None:
    net, rows, frames, other = build(name)
    net.train()
    for batch, t in ((1, frames), (4, other)):
        x = features(batch, rows, t)
        logits = net(x)
        assert logits.shape == (batch, NUM_CLASSES)
        assert net.embed(x).shape == (batch, _embed_dim(net))
    net.zero_grad()
    x = features(4, rows, frames, seed=2)
    nn.functional.cross_entropy(net(x), torch.tensor([0, 3, 7, 11])).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


def _embed_dim(net: nn.Module) -> int:
    linear = [m for m in net.head.modules() if isinstance(m, nn.Linear)]
    assert len(linear) == 1, "head must end in one Linear"
    return linear[0].in_features


@pytest.mark.parametrize("name", list(ZOO))
def test_backbone_and_head_hold_every_parameter_and_only_batchnorm(name: str) -> None:
    """freeze_backbone trains only the head, so nothing may sit outside the two; BatchNorm adaptation needs
    every normalisation layer to keep running statistics."""
    net = build(name)[0]
    params = {id(p) for p in net.parameters()}
    split = {id(p) for p in net.backbone.parameters()} | {id(p) for p in net.head.parameters()}
    assert params == split and not ({id(p) for p in net.backbone.parameters()}
                                    & {id(p) for p in net.head.parameters()})
    other_norms = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.instancenorm._InstanceNorm)
    assert not [m for m in net.modules() if isinstance(m, other_norms)]
    batch_norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert batch_norms and all(m.track_running_stats for m in batch_norms)


# --- (3) eval mode: batch 1 and batch 4 agree --------------------------------------------------------------

@pytest.mark.parametrize("name", list(ZOO))
def test_eval_mode_batch_independence(name: str) -> None:
    net, rows, frames, _ = build(name)
    with torch.no_grad():
        net.train()
        net(features(8, rows, frames, seed=3) * 2 + 1)  # move the running statistics away from 0 and 1
        net.eval()
        x = features(4, rows, frames)
        together = net(x)
        alone = torch.cat([net(x[i:i + 1]) for i in range(4)])
        again = net(x)
        head_of_embed = net.head(net.embed(x))
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-5)
    assert torch.equal(again, together)
    torch.testing.assert_close(head_of_embed, together, atol=1e-6, rtol=1e-6)


# --- (4) ONNX export and onnxruntime parity ----------------------------------------------------------------

@pytest.mark.parametrize("name", ONNX_ZOO)
def test_onnx_export_matches_torch(name: str, tmp_path) -> None:
    net, rows, frames, other = build(name)
    with torch.no_grad():
        net.train()
        net(features(8, rows, frames, seed=3) * 2 + 1)
    net.eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(net, (features(2, rows, frames),), str(path), dynamo=False, opset_version=17,
                      input_names=["features"], output_names=["logits"],
                      dynamic_axes={"features": {0: "batch", 2: "frames"}, "logits": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, t in ((1, frames), (3, other)):  # another batch size and another clip length than exported
        x = features(batch, rows, t, seed=4)
        with torch.no_grad():
            expected = net(x).numpy()
        (got,) = session.run(None, {"features": x.numpy()})
        assert got.shape == (batch, NUM_CLASSES)
        assert np.abs(got - expected).max() < 1e-4


# --- input checks ------------------------------------------------------------------------------------------

def test_bcresnet_other_mel_counts() -> None:
    """Every stage's rows must split into the sub-bands: 80 mels work with 5, 64 mels need another count."""
    assert BCResNet(80, NUM_CLASSES)(features(2, 80, 30)).shape == (2, NUM_CLASSES)
    assert BCResNet(64, NUM_CLASSES, sub_bands=4)(features(2, 64, 30)).shape == (2, NUM_CLASSES)
    with pytest.raises(ValueError, match="sub_bands=5"):
        BCResNet(64, NUM_CLASSES)
    with pytest.raises(ValueError, match="at least 5"):
        BCResNet(20, NUM_CLASSES)


def test_subspectral_norm_normalises_each_band_apart() -> None:
    """Training-mode SubSpectral Norm gives each (channel, sub-band) zero mean and unit variance, which one
    BatchNorm over the whole frequency axis would not when the bands differ."""
    from kwslab.nets.bcresnet import SubSpectralNorm

    x = features(6, 2 * 20, 7).reshape(6, 2, 20, 7)
    x = x + torch.arange(20.0).view(1, 1, 20, 1)  # bands with different means
    y = SubSpectralNorm(2, sub_bands=5).train()(x)
    bands = y.reshape(6, 2, 5, 4, 7).permute(1, 2, 0, 3, 4).reshape(2, 5, -1)
    torch.testing.assert_close(bands.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(bands.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)
