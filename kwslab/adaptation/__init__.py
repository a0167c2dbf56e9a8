"""Unsupervised adaptation of a trained model to a new speaker, microphone or domain from unlabelled audio.

- :mod:`~kwslab.adaptation.batchnorm`: BatchNorm statistics re-estimated on the new audio (any model with
  BatchNorm; the default for keyword models).
- :mod:`~kwslab.adaptation.self_train`: CTC models fine-tuned on their own confident beam (+ LM) transcripts.
- :mod:`~kwslab.adaptation.evaluation`: what adaptation gains, measured cross-fold.

``python -m kwslab.adapt`` and ``python -m kwslab.evaluate --adapt-folds`` are the commands over them.
"""
from kwslab.adaptation.batchnorm import adapt_batchnorm, adapt_checkpoint, adapt_model, batchnorm_layers, model_inputs
from kwslab.adaptation.common import ADAPTATION_KEY, AdaptationError, audio_files, save_adapted
from kwslab.adaptation.evaluation import evaluate_adapted
from kwslab.adaptation.self_train import pseudo_label, self_train

__all__ = ["ADAPTATION_KEY", "AdaptationError", "adapt_batchnorm", "adapt_checkpoint", "adapt_model", "audio_files",
           "batchnorm_layers", "evaluate_adapted", "model_inputs", "pseudo_label", "save_adapted", "self_train"]
