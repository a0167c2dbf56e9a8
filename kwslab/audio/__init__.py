"""Audio files and sample rates, in NumPy only (no torch, no Lightning, no scipy/soundfile/librosa).

``read_wav``/``read_wav_bytes``/``wav_info`` parse RIFF WAV themselves and raise :class:`WavError` with a
message naming the file; ``write_wav``/``wav_bytes`` write PCM or float WAV (atomically on disk);
``resample`` is a band-limited polyphase resampler; ``load_audio`` reads, mixes to mono and resamples;
``WavReader`` reads a long file range by range. ``clip_problem``/``check_clip`` say whether decoded samples
are usable (not empty, not all zero, no NaN/Inf) and name the file when they are not; ``check_wav`` is the
up-front check of a file (header, 0 frames, NaN/Inf in float files) that manifests and preparers run.
"""

from .checks import check_clip, check_wav, clip_problem
from .io import (WavError, WavInfo, WavReader, load_audio, read_wav, read_wav_bytes, special_file_problem, wav_bytes,
                 wav_info, write_wav)
from .resample import resample

__all__ = [
    "WavError",
    "WavInfo",
    "WavReader",
    "check_clip",
    "check_wav",
    "clip_problem",
    "load_audio",
    "read_wav",
    "read_wav_bytes",
    "resample",
    "special_file_problem",
    "wav_bytes",
    "wav_info",
    "write_wav",
]
