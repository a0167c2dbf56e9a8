"""Signal processing from the signal up: teaching transforms (``fft``), pure feature functions (``features``), the
shared ``FeatureConfig`` and the ``FeatureExtractor`` that precomputes its matrices once; ``waveform`` holds what
data making shares (coloured noise, mixing at an SNR, silence trimming).

NumPy only: this package imports neither torch, Lightning, librosa nor scipy (those are test references).
"""
from kwslab.dsp.config import FeatureConfig
from kwslab.dsp.extractor import FeatureExtractor, cached_extractor, log_mel, mfcc
from kwslab.dsp.features import (
    cmvn,
    dct_matrix,
    delta,
    fit_waveform,
    frame,
    get_window,
    hz_to_mel,
    lifter_weights,
    mel_filterbank,
    mel_to_hz,
    pad_or_crop,
    power_spectrum,
    power_to_db,
    spectrogram,
)
from kwslab.dsp.fft import dft, fft_recursive

__all__ = [
    "FeatureConfig", "FeatureExtractor", "cached_extractor", "mfcc", "log_mel",
    "cmvn", "dct_matrix", "delta", "frame", "get_window", "hz_to_mel", "lifter_weights", "mel_filterbank",
    "mel_to_hz", "fit_waveform", "pad_or_crop", "power_spectrum", "power_to_db", "spectrogram", "dft", "fft_recursive",
]
