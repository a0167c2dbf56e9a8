"""Compatibility: the espeak-made datamodules moved to :mod:`kwslab.tts.datamodules`.

Configs and run folders written before the move name ``kwslab.data.synthetic.SyntheticKeywordDataModule`` (and
``SyntheticDigitsCTCDataModule``) by ``class_path``; this module keeps those paths working. It is the one module of
``kwslab.data`` that imports ``kwslab.tts`` (tests/test_architecture.py lists it apart); new code imports from
:mod:`kwslab.tts.datamodules`.
"""
from kwslab.tts.datamodules import SyntheticDigitsCTCDataModule, SyntheticKeywordDataModule, run_corpus_build

__all__ = ["SyntheticDigitsCTCDataModule", "SyntheticKeywordDataModule", "run_corpus_build"]
