"""MFCC speed on ONE thread: kwslab.dsp vs librosa vs python_speech_features, as a markdown table.

    python scripts/bench_features.py [--rounds 40] [--long-rounds 5]

Same settings for all three: 16 kHz, n_fft 512 (32 ms), hop 160 (10 ms), Hann window, 40 mel bands, 13
coefficients (python_speech_features keeps its own pre-emphasis, lifter and energy term). Clips are seeded noise:
one of 1 s and one of 60 s. The libraries are timed in alternation, round by round, so load from other
processes hits all of them alike; the table gives the median over rounds and (in brackets) the best round.
The thread variables are set before NumPy is imported, so BLAS and FFT run on one core.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

from kwslab.dsp import FeatureConfig, FeatureExtractor, mfcc  # noqa: E402

SR, N_FFT, HOP, N_MELS, N_MFCC = 16000, 512, 160, 40, 13


def methods() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> MFCC function of a float32 clip."""
    import librosa
    import python_speech_features as psf

    cfg = FeatureConfig(sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, n_mfcc=N_MFCC)
    return {
        "kwslab": lambda y: mfcc(y, cfg),
        "librosa": lambda y: librosa.feature.mfcc(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                                  n_mfcc=N_MFCC),
        "python_speech_features": lambda y: psf.mfcc(y, samplerate=SR, winlen=N_FFT / SR, winstep=HOP / SR,
                                                     numcep=N_MFCC, nfilt=N_MELS, nfft=N_FFT, winfunc=np.hanning),
    }


def time_rounds(funcs: dict[str, Callable], y: np.ndarray, rounds: int, calls: int) -> dict[str, np.ndarray]:
    """Seconds per call for each function, one batch of ``calls`` per round, functions alternating."""
    out: dict[str, list[float]] = {name: [] for name in funcs}
    for fn in funcs.values():  # warm-up: caches, lazy imports, first-call allocations
        fn(y)
    for _ in range(rounds):
        for name, fn in funcs.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn(y)
            out[name].append((time.perf_counter() - start) / calls)
    return {name: np.array(v) for name, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40, help="rounds for the 1-s clip (20 calls each)")
    parser.add_argument("--long-rounds", type=int, default=5, help="rounds for the 60-s clip (1 call each)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # python_speech_features' frame-length notices
    import librosa

    rng = np.random.default_rng(0)
    funcs = methods()
    short = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    long = (0.1 * rng.standard_normal(60 * SR)).astype(np.float32)
    ref = librosa.feature.mfcc(y=short.astype(np.float64), sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                               n_mfcc=N_MFCC)
    parity = np.abs(funcs["kwslab"](short) - ref).max() / np.abs(ref).max()
    results = {"1 s": time_rounds(funcs, short, args.rounds, 20), "60 s": time_rounds(funcs, long, args.long_rounds, 1)}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"numpy {np.__version__}, librosa {librosa.__version__}, 1 thread, load average {load:.2f}; "
          f"kwslab vs librosa on the 1-s clip: relative max error {parity:.1e}")
    print()
    print("| clip | kwslab (ms) | librosa (ms) | python_speech_features (ms) | librosa / kwslab "
          "| python_speech_features / kwslab |")
    print("|---|---:|---:|---:|---:|---:|")
    for clip, times in results.items():
        med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        best = {k: 1e3 * float(np.min(v)) for k, v in times.items()}
        cells = " | ".join(f"{med[k]:.3f} ({best[k]:.3f})" for k in ("kwslab", "librosa", "python_speech_features"))
        ratios = " | ".join(f"{med[k] / med['kwslab']:.1f}x ({best[k] / best['kwslab']:.1f}x)"
                            for k in ("librosa", "python_speech_features"))
        print(f"| {clip} | {cells} | {ratios} |")
    print()
    print("median over rounds (best round); ratios > 1 mean kwslab is faster")
    full = FeatureExtractor(FeatureConfig(sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, n_mfcc=N_MFCC,
                                          deltas=2, cmvn=True, num_frames=101))
    times = time_rounds({"full": full}, short, args.rounds, 20)["full"]
    print(f"kwslab full pipeline (MFCC + deltas + delta-deltas, CMVN, 101 frames), 1-s clip: "
          f"{1e3 * np.median(times):.3f} ms ({1e3 * times.min():.3f} ms best round)")


if __name__ == "__main__":
    main()
