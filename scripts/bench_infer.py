"""End-to-end inference latency per 1-s clip (read WAV, features, model) for PyTorch and ONNX Runtime on one
thread, and the real-time factor of streaming detection. Prints a markdown table.

    python scripts/bench_infer.py --ckpt checkpoints/cnn/last.ckpt [--onnx model.onnx] [--clips 200]

Clips: 1-s WAVs written to a temp folder from seeded noise + tones (so the file read is part of the time). The
ONNX model is exported to a temp file when ``--onnx`` is not given. Goal: <= 5 ms per clip, ONNX <= PyTorch.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kwslab.audio import load_audio, write_wav
from kwslab.dsp import FeatureExtractor
from kwslab.export import export_onnx
from kwslab.inference import load_model
from kwslab.inference.onnx import OnnxModel
from kwslab.inference.backend import onnx_backend, torch_backend
from kwslab.stream import StreamConfig, StreamingDetector, iter_wav_blocks


def _clips(folder: Path, n: int, sr: int, rng: np.random.Generator) -> list[Path]:
    paths = []
    t = np.arange(sr) / sr
    for i in range(n):
        y = 0.05 * rng.standard_normal(sr) + 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
        paths.append(folder / f"clip_{i:04d}.wav")
        write_wav(paths[-1], y.astype(np.float32), sr)
    return paths


def _time_clips(paths: list[Path], sr: int, extract: FeatureExtractor, run) -> dict[str, float]:
    stages = {"read": [], "features": [], "model": [], "total": []}
    for p in paths:
        t0 = time.perf_counter()
        y = load_audio(p, sr)
        t1 = time.perf_counter()
        f = extract(y)
        t2 = time.perf_counter()
        run(f[None])
        t3 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            stages[k].append(v * 1000)
    out = {k: statistics.median(v) for k, v in stages.items()}
    out["p90"] = float(np.percentile(stages["total"], 90))
    return out


def _rtf(backend, wav: Path, duration: float) -> float:
    det = StreamingDetector(backend.feature_config, backend.labels, backend.probabilities, StreamConfig())
    t0 = time.perf_counter()
    det.run(iter_wav_blocks(wav, backend.feature_config.sample_rate, 0.1))
    return (time.perf_counter() - t0) / duration


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="checkpoints/cnn/last.ckpt")
    p.add_argument("--onnx", default=None, help="exported model (default: export to a temp file)")
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--stream-seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    rng = np.random.default_rng(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        onnx = Path(a.onnx) if a.onnx else Path(export_onnx(a.ckpt, tmp / "model.onnx")["path"])
        model, om = load_model(a.ckpt), OnnxModel(onnx, threads=1)
        sr = model.feature_config.sample_rate
        paths = _clips(tmp, a.clips, sr, rng)
        extract = FeatureExtractor(model.feature_config)
        runs = {"PyTorch": lambda f: model.module(torch.from_numpy(f)), "ONNX Runtime": om.logits}
        for run in runs.values():  # warm-up
            _time_clips(paths[:10], sr, extract, run)
        stream = tmp / "stream.wav"
        write_wav(stream, (0.05 * rng.standard_normal(int(a.stream_seconds * sr))).astype(np.float32), sr)
        backends = {"PyTorch": torch_backend(a.ckpt, threads=1), "ONNX Runtime": onnx_backend(onnx, threads=1)}
        print(f"{a.clips} clips of 1 s, one thread; model {a.ckpt}; streaming: {a.stream_seconds:g} s, "
              f"hop {StreamConfig().hop} s, window = clip length\n")
        print("| runtime | read ms | features ms | model ms | total ms (median) | total ms (p90) | stream RTF |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, run in runs.items():
            r = _time_clips(paths, sr, extract, run)
            rtf = _rtf(backends[name], stream, a.stream_seconds)
            print(f"| {name} | {r['read']:.2f} | {r['features']:.2f} | {r['model']:.2f} | {r['total']:.2f} | "
                  f"{r['p90']:.2f} | {rtf:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
