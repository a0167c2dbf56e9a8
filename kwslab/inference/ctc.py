"""CTC checkpoints at inference: posteriors for audio files, decoding, transcription, WER/CER on a manifest.

Used by ``python -m kwslab.predict`` and ``python -m kwslab.evaluate`` when the checkpoint holds a CTC model, by
self-training adaptation and by ``scripts/tune_lm.py``. Hotwords come as ``word`` or ``word:weight`` strings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from kwslab.audio import WavError
from kwslab.decoding import beam_search_batch, greedy
from kwslab.decoding.settings import DecoderSettings
from kwslab.inference.keywords import read_error
from kwslab.inference.loaded import LoadedModel
from kwslab.metrics import error_rates
from kwslab.text import CharVocab

__all__ = ["DecoderSettings", "decode", "evaluate_ctc", "posteriors", "posteriors_of_features", "transcribe_files"]


def posteriors(model: LoadedModel, paths: Sequence[str | Path], batch_size: int = 16) -> list[np.ndarray]:
    """``(T_i, V)`` log-probabilities per file (batched by similar length; padding never changes results).

    Raises:
        UnusableAudioError: listing every file that cannot be used (unreadable, empty, silent).
    """
    return posteriors_of_features(model, model.features_of(paths), batch_size)


@torch.no_grad()
def posteriors_of_features(model: LoadedModel, feats: Sequence[np.ndarray], batch_size: int = 16) -> list[np.ndarray]:
    """``(T_i, V)`` log-probabilities for ``(F, T_i)`` feature matrices, batched by similar length."""
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[1])
    out: list[np.ndarray] = [np.empty(0)] * len(feats)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        lengths = torch.tensor([feats[i].shape[1] for i in idx])
        x = torch.zeros(len(idx), feats[idx[0]].shape[0], int(lengths.max()))
        for j, i in enumerate(idx):
            x[j, :, :feats[i].shape[1]] = torch.from_numpy(feats[i])
        log_probs, out_lens = model.module(x.to(model.module.device), lengths.to(model.module.device))
        for j, i in enumerate(idx):
            out[i] = log_probs[j, : out_lens[j]].float().cpu().numpy()
    return out


def decode(log_probs: Sequence[np.ndarray], vocab: CharVocab, settings: DecoderSettings) -> dict[str, list[str]]:
    """Greedy transcripts, and beam (+LM/hotwords) transcripts when ``settings.beam_width > 0``."""
    texts = {"greedy": [" ".join(greedy(lp, vocab).split()) for lp in log_probs]}
    if settings.beam_width > 0:
        beams = beam_search_batch(list(log_probs), vocab, settings.beam_width, n_best=1, **settings.load(vocab))
        texts["beam"] = [" ".join(b[0][0].split()) if b else "" for b in beams]
    return texts


def evaluate_ctc(model: LoadedModel, rows: Sequence[Any], settings: DecoderSettings) -> dict[str, Any]:
    """WER/CER per decoder on manifest rows with transcripts, plus per-utterance results."""
    vocab: CharVocab = model.module.vocab
    refs = [vocab.normalize(r.transcript) for r in rows]
    texts = decode(posteriors(model, [r.path for r in rows]), vocab, settings)
    result = {name: error_rates(refs, hyps) for name, hyps in texts.items()}
    result["utterances"] = [{"file": str(r.path), "reference": ref, **{k: v[i] for k, v in texts.items()}}
                            for i, (r, ref) in enumerate(zip(rows, refs))]
    return result


def transcribe_files(model: LoadedModel, files: Sequence[str | Path],
                     settings: DecoderSettings) -> tuple[list[dict], list[str]]:
    """``{"file", "text", "greedy"[, "beam"]}`` per readable file, and one message per unreadable one."""
    readable, feats, errors = [], [], []
    for f in files:
        try:
            feats.append(model.features(f))
            readable.append(f)
        except (WavError, OSError, ValueError) as exc:
            errors.append(read_error(f, exc))
    texts = decode(posteriors_of_features(model, feats), model.module.vocab, settings) if readable else {}
    results = [{"file": str(f), "text": texts.get("beam", texts.get("greedy"))[i],
                **{k: v[i] for k, v in texts.items()}} for i, f in enumerate(readable)]
    return results, errors
