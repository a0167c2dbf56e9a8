"""Time the teaching transforms against numpy.fft and print a markdown table.

    python scripts/bench_fft.py [--max-n 4096] [--repeats 3]

The O(N^2) DFT grows 4x per doubling of N, the O(N log N) recursive FFT a little over 2x; numpy.fft (compiled
pocketfft) is the floor. Each cell is the best of ``--repeats`` runs, in milliseconds.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

from kwslab.dsp.fft import dft, fft_recursive  # noqa: E402


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` runs (after one warm-up), in ms; fast functions run in batches."""
    fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    batch = max(1, int(0.02 / max(once, 1e-9)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        times.append((time.perf_counter() - start) / batch)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-n", type=int, default=4096, help="largest N (a power of two, from 64)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the best is shown")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| N | dft (ms) | fft_recursive (ms) | numpy.fft.fft (ms) | dft / fft_recursive | fft_recursive / numpy |")
    print("|---:|---:|---:|---:|---:|---:|")
    n = 64
    while n <= args.max_n:
        x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
        ref = np.fft.fft(x)
        err = max(np.abs(dft(x) - ref).max(), np.abs(fft_recursive(x) - ref).max()) / np.abs(ref).max()
        if err > 1e-9:
            raise SystemExit(f"N={n}: the teaching transforms disagree with numpy.fft (relative error {err:.1e})")
        t_dft = best_ms(lambda: dft(x), args.repeats)
        t_rec = best_ms(lambda: fft_recursive(x), args.repeats)
        t_np = best_ms(lambda: np.fft.fft(x), args.repeats)
        print(f"| {n} | {t_dft:.3f} | {t_rec:.3f} | {t_np:.4f} | {t_dft / t_rec:.1f}x | {t_rec / t_np:.0f}x |")
        n *= 2


if __name__ == "__main__":
    main()
