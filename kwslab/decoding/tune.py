"""Grid search of the shallow-fusion weights ``alpha`` (LM weight) and ``beta`` (word bonus) by WER."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kwslab.decoding.beam import beam_search_batch
from kwslab.decoding.lm import NGramLM
from kwslab.decoding.settings import DEFAULT_BEAM_WIDTH
from kwslab.text import CharVocab

__all__ = ["tune_alpha_beta"]


def tune_alpha_beta(
    log_probs_list: Sequence[np.ndarray],
    references: Sequence[str],
    vocab: CharVocab,
    lm: NGramLM,
    alphas: Sequence[float],
    betas: Sequence[float],
    beam_width: int = DEFAULT_BEAM_WIDTH,
    **search_kwargs: object,
) -> list[dict[str, float]]:
    """Decode every utterance for each ``(alpha, beta)`` and score the WER with jiwer.

    Args:
        log_probs_list: ``(T_n, V)`` log-probabilities per utterance.
        references: Reference transcripts (normalised with ``vocab.normalize``).
        vocab: The model's vocabulary.
        lm: The language model.
        alphas, betas: The grid.
        beam_width: Beam width of the search.
        **search_kwargs: Passed to :func:`~kwslab.decoding.beam.beam_search_batch` (e.g. ``token_min_logp``).

    Returns:
        ``[{"alpha", "beta", "wer"}, ...]`` sorted by WER (best first; ties keep grid order).
    """
    import jiwer  # noqa: PLC0415 (only needed here)

    if len(log_probs_list) != len(references):
        raise ValueError(f"{len(log_probs_list)} posteriors but {len(references)} references")
    if not references:
        raise ValueError("tune_alpha_beta needs at least one utterance")
    refs = [vocab.normalize(r) for r in references]
    results = []
    for a in alphas:
        for b in betas:
            out = beam_search_batch(log_probs_list, vocab, beam_width, lm=lm, alpha=float(a), beta=float(b),
                                    n_best=1, **search_kwargs)  # type: ignore[arg-type]
            hyps = [" ".join(o[0][0].split()) for o in out]
            # jiwer rejects empty references; score those utterances as one word each.
            pairs = [(r or "<empty>", h or ("<empty>" if not r else "")) for r, h in zip(refs, hyps)]
            wer = float(jiwer.wer([p[0] for p in pairs], [p[1] for p in pairs]))
            results.append({"alpha": float(a), "beta": float(b), "wer": wer})
    return sorted(results, key=lambda d: d["wer"])
