"""Throughput and latency of ``python -m kwslab.serve`` on loopback: requests/s and p50/p99 latency of
``POST /predict`` with 1-s WAV clips, at concurrency 1, 8 and 32, for the ONNX and the checkpoint backends.
Prints one markdown table, and the machine's load average before and after (other jobs on the same cores slow
every figure down).

    python scripts/bench_serve.py --ckpt checkpoints/sc12_dscnn/last.ckpt [--onnx model.onnx] [--workers 2]

Bounded: at most ``--requests`` requests and ``--seconds`` seconds per (backend, concurrency), against a server
on 127.0.0.1 that the script starts and stops. The ONNX model is exported to a temp file when ``--onnx`` is not
given. Each request is a fresh 16-bit WAV body (20 seeded clips of noise and a tone, in rotation), answered in full
(top_k=3). Goal (issue 19): >= 200 requests/s with ONNX, p99 <= 50 ms at concurrency 8, zero errors.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from kwslab.audio import wav_bytes

REPO = Path(__file__).resolve().parents[1]


def clips(sample_rate: int, n: int = 20, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    t = np.arange(sample_rate) / sample_rate
    return [wav_bytes((0.05 * rng.standard_normal(sample_rate) + 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t))
                      .astype(np.float32), sample_rate, 2) for _ in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], port: int, timeout: float = 120) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "kwslab.serve", *args, "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the server exited ({proc.returncode}); run python -m kwslab.serve {' '.join(args)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"error: the server did not answer /healthz within {timeout:g} s")


async def load(url: str, bodies: list[bytes], concurrency: int, requests: int, seconds: float) -> dict:
    """``concurrency`` clients, each sending its next request when the last is answered, until ``requests`` are
    done or ``seconds`` have passed."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds
    headers = {"content-type": "audio/wav"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=30) as client:
        async def worker() -> None:
            nonlocal sent, errors
            while sent < requests and time.perf_counter() < deadline:
                body = bodies[sent % len(bodies)]
                sent += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers=headers)
                    ok = r.status_code == 200 and "keyword" in r.json()
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies)
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / wall,
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="a keyword checkpoint (also exported to ONNX unless --onnx)")
    p.add_argument("--onnx", help="its ONNX export (default: exported to a temp file)")
    p.add_argument("--workers", type=int, default=2, help="server processes (default 2: one per core here)")
    p.add_argument("--concurrency", default="1,8,32", help="client concurrency levels (default 1,8,32)")
    p.add_argument("--requests", type=int, default=600, help="requests per level at most (default 600)")
    p.add_argument("--seconds", type=float, default=15.0, help="seconds per level at most (default 15)")
    p.add_argument("--backends", default="onnx,checkpoint", help="onnx, checkpoint or both (default both)")
    args = p.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        onnx = args.onnx
        if onnx is None and "onnx" in args.backends:
            onnx = str(Path(tmp) / "model.onnx")
            subprocess.run([sys.executable, "-m", "kwslab.export", "--ckpt", args.ckpt, "--out", onnx], check=True,
                           cwd=REPO, stdout=subprocess.DEVNULL)
        from kwslab.inference.onnx import OnnxModel

        rate = OnnxModel(onnx).feature_config.sample_rate if onnx else 16000
        bodies = clips(rate)
        before = os.getloadavg()
        rows = []
        for backend in args.backends.split(","):
            flag = ["--onnx", onnx] if backend == "onnx" else ["--ckpt", args.ckpt]
            port = free_port()
            proc = start([*flag, "--workers", str(args.workers)], port)
            url = f"http://127.0.0.1:{port}/predict?top_k=3"
            try:
                asyncio.run(load(url, bodies, 4, 40, 10))  # warm-up: every worker's first calls
                for c in levels:
                    rows.append((backend, c, asyncio.run(load(url, bodies, c, args.requests, args.seconds))))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        after = os.getloadavg()
    print(f"kwslab.serve, {args.workers} worker(s), {os.cpu_count()} CPU(s), 1-s 16-bit clips at {rate} Hz, "
          f"client on the same machine; load average before {before[0]:.2f}, after {after[0]:.2f}\n")
    print("| backend | concurrency | requests | errors | requests/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for backend, c, r in rows:
        print(f"| {backend} | {c} | {r['requests']} | {r['errors']} | {r['rps']:.0f} | {r['p50']:.1f} | "
              f"{r['p99']:.1f} |")
    return 1 if any(r["errors"] for _, _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
