"""``python -m kwslab.demo``: every step from a WAV file to features, on a clip made on the spot.

Synthesises a short two-syllable "word" (a pitch glide through two vowel formant patterns, with noise),
writes it as 16-bit WAV, reads it back with our RIFF parser, inspects it, and computes log-mel and MFCC
features with the from-scratch DSP core, printing each stage's shapes and timings and a coarse spectrogram.
No network, no data, no torch.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from kwslab.audio import load_audio, read_wav, wav_info, write_wav
from kwslab.dsp import FeatureConfig, FeatureExtractor, log_mel, mfcc

SHADES = " .:-=+*#%@"


def synth_word(sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A 0.8-s voiced 'word': glottal-like pulse train through two formant pairs, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.8 * sample_rate)) / sample_rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 1.2 * t)  # pitch glide
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    source = sum(np.sin(k * phase) / k for k in range(1, 30))
    first = t < 0.4
    formants = np.where(first[:, None], [700.0, 1200.0], [300.0, 2300.0])  # "a" then "i"
    y = source * sum(np.sin(2 * np.pi * formants[:, i] * t) for i in range(2))
    envelope = np.minimum(1, 20 * t) * np.minimum(1, 20 * (t[-1] - t)) * (0.6 + 0.4 * first)
    y = envelope * y + 0.005 * rng.standard_normal(len(t))
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def ascii_spectrogram(feats: np.ndarray, width: int = 64) -> str:
    """Rows: mel bands (high at top); columns: time; darker = louder."""
    cols = np.linspace(0, feats.shape[1] - 1, min(width, feats.shape[1])).astype(int)
    f = feats[::-1, cols]
    f = (f - f.min()) / max(float(np.ptp(f)), 1e-9)
    return "\n".join("".join(SHADES[int(v * (len(SHADES) - 1))] for v in row) for row in f)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav", type=Path, help="use this WAV instead of the synthesised word")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.wav
        if path is None:
            path = Path(tmp) / "word.wav"
            write_wav(path, synth_word(), 16000)
            print(f"1. wrote a synthesised word to {path.name} (16-bit PCM, 16 kHz)")
        info = wav_info(path)
        samples, sr = read_wav(path)
        print(f"2. read_wav: {info.encoding}, {info.channels} ch, {sr} Hz, {info.duration:.3f} s, "
              f"samples {samples.shape} {samples.dtype}, peak {np.abs(samples).max():.3f}")
        y = load_audio(path, 16000)
        print(f"3. load_audio (mono, 16 kHz): {y.shape}")
    cfg = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=40, n_mfcc=13)
    t0 = time.perf_counter()
    mel = log_mel(y, cfg)
    coeffs = mfcc(y, cfg)
    t1 = time.perf_counter()
    print(f"4. log_mel {mel.shape}, mfcc {coeffs.shape} in {1e3 * (t1 - t0):.2f} ms (first call builds the mel bank)")
    full = FeatureConfig(sample_rate=16000, deltas=2, cmvn=True, num_frames=101)
    extract = FeatureExtractor(full)
    t0 = time.perf_counter()
    for _ in range(100):
        feats = extract(y)
    t1 = time.perf_counter()
    print(f"5. FeatureExtractor(mfcc + deltas + delta-deltas, CMVN, 101 frames): {feats.shape}, "
          f"{1e3 * (t1 - t0) / 100:.3f} ms per clip")
    print("6. log-mel spectrogram (mel bands x time):")
    print(ascii_spectrogram(mel))


if __name__ == "__main__":
    main()
