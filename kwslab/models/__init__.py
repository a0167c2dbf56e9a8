"""Thin LightningModules. They know nothing of files: batches in, losses and metrics out."""
from kwslab.models.ctc import CTCRecognizer
from kwslab.models.keyword import KeywordClassifier

__all__ = ["CTCRecognizer", "KeywordClassifier"]
