"""CRNN (``kwslab.nets.crnn``): output lengths match the frames it produces, and padding never changes them."""
from __future__ import annotations

import pytest
import torch

from kwslab.nets import CRNN


@pytest.mark.parametrize("subsample", [1, 2, 3])
def test_crnn_output_lengths_match_the_frames_it_produces(subsample):
    net = CRNN(20, 5, conv_channels=(8, 8), subsample=subsample, rnn_hidden=8, rnn_layers=1).eval()
    x = torch.randn(3, 20, 47)
    lengths = torch.tensor([47, 30, 11])
    log_probs, out_lens = net(x, lengths)
    assert log_probs.shape[:2] == (3, out_lens[0].item()) and log_probs.shape[2] == 5
    for i, n in enumerate(lengths.tolist()):  # padding never changes what the valid frames produce
        alone, alone_len = net(x[i:i + 1, :, :n])
        assert alone_len.item() == out_lens[i].item()
        assert torch.allclose(alone[0], log_probs[i, :out_lens[i]], atol=1e-5)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-5)
