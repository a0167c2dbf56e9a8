"""KeywordCNN2d (``kwslab.nets.cnn2d``): shapes for any frame count, filters that slide over frequency, argument
checks."""
from __future__ import annotations

import pytest
import torch

from kwslab.nets.cnn import KeywordCNN
from kwslab.nets.cnn2d import KeywordCNN2d

FEATURES = {"sample_rate": 8000, "n_fft": 256, "win_length": 200, "hop_length": 80, "n_mels": 40,
            "kind": "log_mel", "cmvn": True, "num_frames": 100}


@pytest.mark.parametrize("frames", [100, 37])
def test_shapes_any_frame_count(frames: int) -> None:
    net = KeywordCNN2d(40, 10, (8, 16, 32))
    x = torch.randn(3, 40, frames)
    assert net.embed(x).shape == (3, 64)
    assert net(x).shape == (3, 10)


def test_filters_slide_over_frequency() -> None:
    # A pattern shifted along the feature axis excites the same (shared) filters: with one block, no pooling, a
    # bias-free linear head and the max over (F, T), the shifted input gives the same max embedding.
    torch.manual_seed(0)
    net = KeywordCNN2d(16, 2, (4,), pool=1, hidden=0, dropout=0.0).eval()
    x = torch.zeros(1, 16, 20)
    x[0, 3:6, 5:8] = torch.randn(3, 3)
    shifted = torch.roll(x, shifts=6, dims=1)
    e, e_shifted = net.embed(x), net.embed(shifted)
    assert torch.allclose(e[:, 4:], e_shifted[:, 4:], atol=1e-6)  # max part
    assert not torch.allclose(KeywordCNN(16, 2, (4,), pool=1, hidden=0, dropout=0.0).eval().embed(x),
                              KeywordCNN(16, 2, (4,), pool=1, hidden=0, dropout=0.0).eval().embed(shifted))


@pytest.mark.parametrize("kwargs, match", [
    ({"in_features": 0}, "in_features"),
    ({"channels": ()}, "channels"),
    ({"in_features": 3, "channels": (4, 4, 4)}, "too few"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"in_features": 40, "num_classes": 10, "channels": (4, 8)} | kwargs
    with pytest.raises(ValueError, match=match):
        KeywordCNN2d(**args)
