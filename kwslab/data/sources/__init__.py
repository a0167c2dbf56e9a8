"""Preparers that turn corpora on disk into train/val/test manifests (see ``python -m kwslab.prepare``)."""

from kwslab.data.sources.common import PrepareResult, count_table, write_splits
from kwslab.data.sources.folder import prepare_folder
from kwslab.data.sources.fsdd import DIGIT_WORDS, prepare_fsdd
from kwslab.data.sources.sequences import compose_sequences
from kwslab.data.sources.speech_commands import COMMAND_WORDS, prepare_speech_commands

__all__ = [
    "COMMAND_WORDS",
    "DIGIT_WORDS",
    "PrepareResult",
    "compose_sequences",
    "count_table",
    "prepare_folder",
    "prepare_fsdd",
    "prepare_speech_commands",
    "write_splits",
]
