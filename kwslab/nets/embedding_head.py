"""A small keyword head on a TC-ResNet backbone: the network of keyword models trained on top of a pretrained speech
embedding (``kwslab/pretrained/speech_embedding.ckpt``, recipe ``configs/embedding.yaml``).

``backbone`` is built exactly as :class:`~kwslab.nets.TCResNet`'s (same arguments, same parameter names), so a
keyword classifier started from the embedding (``init_from: builtin:speech_embedding``) copies its weights, and
``freeze_backbone: true`` keeps them and their BatchNorm statistics fixed. ``head`` sees the backbone's whole
sequence of frame embeddings ``(B, C, T / 8)``: a 3-tap temporal conv, then the mean and the maximum over time
(the maximum finds a short word anywhere in the window), dropout and a linear layer.

``words=N`` adds the embedding's own word classifier as a frozen expert for the keywords it knows. The embedding was
trained on real speakers saying N words, and on real voices its classifier tells those words apart better than any
head trained on TTS alone (measured on the held-out Speech Commands speakers: docs/results.md, section 11). The
network's answer is then a three-step decision:

1. the head: ``_silence_`` or speech;
2. if speech, the word classifier: one of the keywords it knows, or something else. Its probability of a keyword is
   that word's probability, against the probability of the likeliest word that is *not* a keyword, normalised over
   the two;
3. if something else, the head again: which of the remaining classes (``_unknown_``, a keyword only TTS has said).

So the head trained here decides what the word classifier cannot: silence and noise, other words, and words the
embedding never heard. With no keyword among the embedding's words the probabilities are exactly the head's. The
outputs are these log-probabilities. The word classifier's weights and the class-to-word map come from
``init_from`` (:meth:`adopt_pretrained`) and are saved in the checkpoint.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from kwslab.data.manifest import SILENCE_LABEL
from kwslab.nets.tcresnet import TCResNet

_MASKED = -1e4  # a log-probability that is never chosen


class _MeanMaxPool(nn.Module):
    """``(B, C, T) -> (B, 2C)``: the mean and the maximum over time, side by side."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)


class EmbeddingHead(nn.Module):
    """TC-ResNet backbone + a small temporal head.

    Args:
        in_features, num_classes: feature rows per frame; output classes (filled in from the data).
        width, channels, kernel_size, first_kernel: the backbone, as in :class:`~kwslab.nets.TCResNet` (they must
            match the pretrained embedding's for its weights to load; ``configs/keyword_from_tts.yaml`` has them).
        hidden: channels of the head's conv. Default 64.
        dropout: before the final linear layer. Default 0.3.
        words: size of the pretrained embedding's word vocabulary, to let its word classifier score the keywords it
            knows (31 for ``builtin:speech_embedding``); 0 (default): the head alone.

    Shapes: ``(B, F, T) -> (B, num_classes)``.
    """

    def __init__(self, in_features: int, num_classes: int, width: float = 1.5,
                 channels: Sequence[int] = (16, 24, 32, 48), kernel_size: int = 9, first_kernel: int = 3,
                 hidden: int = 64, dropout: float = 0.3, words: int = 0) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"EmbeddingHead needs hidden >= 1, got {hidden}")
        self.backbone = TCResNet(in_features, 1, width, channels, kernel_size, first_kernel).backbone
        dim = int(channels[-1] * width)
        self.head = nn.Sequential(nn.Conv1d(dim, hidden, 3, padding=1, bias=False), nn.BatchNorm1d(hidden),
                                  nn.ReLU(inplace=True), _MeanMaxPool(), nn.Dropout(dropout),
                                  nn.Linear(2 * hidden, num_classes))
        if words < 0:
            raise ValueError(f"EmbeddingHead needs words >= 0, got {words}")
        self.words: nn.Linear | None = None
        if words:
            self.words = nn.Linear(dim, words).requires_grad_(False)
            # class -> its word's index in the vocabulary (-1: not a word the embedding knows); which words are keywords
            self.register_buffer("class_word", torch.full((num_classes,), -1, dtype=torch.long))
            self.register_buffer("word_is_class", torch.zeros(words, dtype=torch.bool))
            self.register_buffer("class_is_silence", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_classes)`` logits (with ``words``: log-probabilities)."""
        seq = self.backbone(x)
        logits = self.head(seq)
        if self.words is None:
            return logits
        log_p = torch.log_softmax(self.words(seq.mean(dim=-1)), dim=-1)  # (B, words)
        known, silent = self.class_word >= 0, self.class_is_silence
        # 1. speech: everything but silence, under the head
        log_head = torch.log_softmax(logits, dim=-1)
        log_speech = torch.logsumexp(log_head.masked_fill(silent, _MASKED), dim=-1, keepdim=True)
        # 2. the keywords the word classifier knows, against the likeliest other word (-1e4 rather than -inf: no NaN)
        other = log_p.masked_fill(self.word_is_class, _MASKED).amax(dim=-1, keepdim=True)  # (B, 1)
        keyword = log_p[:, self.class_word.clamp(min=0)].masked_fill(~known, _MASKED)  # (B, num_classes)
        norm = torch.logsumexp(torch.cat([keyword, other], dim=-1), dim=-1, keepdim=True)
        # 3. the head among the remaining classes
        rest = torch.log_softmax(logits.masked_fill(known | silent, _MASKED), dim=-1)
        speech = log_speech + torch.where(known, keyword - norm, other - norm + rest)
        return torch.where(silent, log_head, speech)

    def adopt_pretrained(self, state_dict: Mapping[str, torch.Tensor], source_labels: Sequence[str],
                         labels: Sequence[str]) -> list[str]:
        """Take the word classifier of a pretrained TC-ResNet (its ``head.1`` linear layer, keys without the
        ``net.`` prefix) and map ``labels`` onto its words ``source_labels``. Called by ``KeywordClassifier`` after
        ``init_from``'s matching weights are copied. Returns the classes the expert scores (possibly none).

        Raises:
            ValueError: the vocabulary size or the embedding dimension differs from this network's.
        """
        if self.words is None:
            return []
        if "words.weight" in state_dict:  # an EmbeddingHead with its expert: its weights and map were copied by name
            if list(source_labels) != list(labels):
                raise ValueError("EmbeddingHead(words=...): init_from is a keyword model with other classes "
                                 f"({', '.join(source_labels)}); start from the embedding itself "
                                 "(builtin:speech_embedding) to map new keywords onto its words")
            return [c for c, w in zip(labels, self.class_word.tolist()) if w >= 0]
        weight, bias = state_dict.get("head.1.weight"), state_dict.get("head.1.bias")
        if weight is None or bias is None or weight.ndim != 2:
            raise ValueError("EmbeddingHead(words=...): the init_from checkpoint has no word classifier (head.1) "
                             "to use; set words: 0 or start from a TC-ResNet embedding")
        if tuple(weight.shape) != tuple(self.words.weight.shape) or len(source_labels) != weight.shape[0]:
            raise ValueError(f"EmbeddingHead(words={self.words.out_features}): the init_from checkpoint's word "
                             f"classifier has {weight.shape[0]} words of dimension {weight.shape[1]} "
                             f"({len(source_labels)} labels); set words: {weight.shape[0]}")
        with torch.no_grad():
            self.words.weight.copy_(weight)
            self.words.bias.copy_(bias)
            index = {w: i for i, w in enumerate(source_labels)}
            self.class_word.copy_(torch.tensor([index.get(c, -1) for c in labels], dtype=torch.long))
            self.word_is_class.zero_()
            self.word_is_class[self.class_word[self.class_word >= 0]] = True
            self.class_is_silence.copy_(torch.tensor([c == SILENCE_LABEL for c in labels]))
        return [c for c in labels if c in index]
