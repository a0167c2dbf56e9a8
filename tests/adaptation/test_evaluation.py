"""Cross-fold adapted evaluation (``kwslab.adaptation.evaluation``): each clip is scored by a fresh model adapted on
the other folds of its speaker, never on itself."""
from __future__ import annotations

import pytest

from kwslab.adaptation import AdaptationError
from kwslab.inference.scoring import evaluate_keywords


@pytest.mark.slow
def test_cross_fold_evaluation_never_adapts_on_the_clips_it_scores(tiny_data, trained_keyword, monkeypatch):
    import kwslab.adaptation.evaluation as evaluate
    from kwslab.data.manifest import read_manifest

    data, ckpt = tiny_data, trained_keyword
    calls: list[tuple[object, set[str]]] = []
    real_adapt = evaluate.adapt_model

    def spy_adapt(model, files, strength=1.0, **kwargs):
        calls.append((model, set(map(str, files))))
        return real_adapt(model, files, strength, **kwargs)

    monkeypatch.setattr(evaluate, "adapt_model", spy_adapt)
    result = evaluate.evaluate_adapted(ckpt, data["test"], folds=3)
    rows = read_manifest(data["test"], need_keyword=True)
    speakers = {r.speaker for r in rows}
    assert set(result["groups"]) == speakers and len(calls) == 3 * len(speakers)
    assert len({id(model) for model, _ in calls}) == len(calls)  # a fresh copy of the model for every fold
    for name in speakers:
        members = {str(r.path) for r in rows if r.speaker == name}
        adapted_sets = [files for _, files in calls if files <= members]
        assert len(adapted_sets) == 3
        # each clip is left out of exactly one adaptation set: the one of the fold that scores it
        assert all(sum(clip not in files for files in adapted_sets) == 1 for clip in members)
    assert result["accuracy"] == pytest.approx(evaluate_keywords(ckpt, data["test"])["accuracy"])
    assert 0.0 <= result["adapted_accuracy"] <= 1.0
    with pytest.raises(AdaptationError, match="folds"):
        evaluate.evaluate_adapted(ckpt, data["test"], folds=1)
