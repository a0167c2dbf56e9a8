#!/usr/bin/env python
"""Benchmark the data pipeline: clips/s through KeywordDataModule loaders, cold and cached, as a markdown table.

Uses the FSDD recordings ($KWSLAB_FSDD, else ../shared/data/fsdd/recordings beside the repo) through a temporary
manifest, or generated clips when they are absent. Passes measured:

* ``val`` epoch 1: decode + resample + features, writing the disk cache; epoch 2: memory cache hits;
  a new DataModule on the same cache_dir: disk cache hits.
* ``train`` with waveform augmentation + SpecAugment, epoch 1 (decode) and epoch 2 (cached waveforms).

Example::

    python scripts/bench_data.py --limit 1000 --num-workers 0
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kwslab.audio import write_wav
from kwslab.data.datamodules import KeywordDataModule
from kwslab.data.manifest import write_manifest

REPO = Path(__file__).resolve().parents[1]
AUGMENT = {"speed": {"p": 0.5}, "time_shift": {"p": 0.5}, "reverb": {"p": 0.3}, "band_limit": {"p": 0.3},
           "gaussian_noise": {"p": 0.5}, "gain": {"p": 0.5}}
SPEC_AUGMENT = {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 20}


def fsdd_dir() -> Path | None:
    env = os.environ.get("KWSLAB_FSDD")
    path = Path(env) if env else REPO.parent / "shared" / "data" / "fsdd" / "recordings"
    return path if path.is_dir() and any(path.glob("*.wav")) else None


def make_rows(folder: Path, limit: int) -> tuple[list[dict], str]:
    """Manifest rows for FSDD (sorted, first ``limit``) or for ``limit`` generated 8 kHz clips."""
    fsdd = fsdd_dir()
    if fsdd is not None:
        files = sorted(fsdd.glob("*.wav"))[:limit]
        return [{"filename": str(f), "keyword": f.name.split("_")[0], "speaker": f.name.split("_")[1]}
                for f in files], f"FSDD ({fsdd})"
    rng = np.random.default_rng(0)
    rows = []
    for i in range(limit):
        t = np.arange(int(rng.uniform(0.3, 0.8) * 8000)) / 8000
        y = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) * np.hanning(t.size)
        write_wav(folder / f"{i % 10}_gen_{i}.wav", y + 0.01 * rng.standard_normal(t.size), 8000)
        rows.append({"filename": str(folder / f"{i % 10}_gen_{i}.wav"), "keyword": str(i % 10)})
    return rows, "generated 8 kHz clips"


def run_epoch(loader) -> tuple[int, float]:
    start = time.perf_counter()
    clips = sum(len(batch[1]) for batch in loader)
    return clips, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=2000, help="clips to use (default 2000)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default 0)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sample-rate", type=int, default=16000, help="feature sample rate (FSDD is 8 kHz)")
    args = parser.parse_args()
    features = {"sample_rate": args.sample_rate, "hop_length": args.sample_rate // 100,
                "n_fft": 512 if args.sample_rate >= 16000 else 256, "num_frames": 101}
    with tempfile.TemporaryDirectory(prefix="kwslab-bench-") as tmp:
        tmp_path = Path(tmp)
        rows, source = make_rows(tmp_path, args.limit)
        manifest = tmp_path / "all.csv"
        write_manifest(manifest, rows)

        def datamodule() -> KeywordDataModule:
            return KeywordDataModule(str(manifest), str(manifest), features=features, batch_size=args.batch_size,
                                     num_workers=args.num_workers, augment=AUGMENT, spec_augment=SPEC_AUGMENT,
                                     cache_dir=str(tmp_path / "cache"), seed=0)

        table = []
        start = time.perf_counter()
        dm = datamodule()
        dm.setup("fit")
        table.append(("setup (read + check manifest)", len(rows), time.perf_counter() - start))
        val = dm.val_dataloader()
        table.append(("val epoch 1: decode + features, write disk cache", *run_epoch(val)))
        table.append(("val epoch 2: memory cache", *run_epoch(val)))
        fresh = datamodule()
        fresh.setup("validate")
        table.append(("val, new DataModule: disk cache", *run_epoch(fresh.val_dataloader())))
        train = dm.train_dataloader()
        table.append(("train epoch 1: decode + augment + features", *run_epoch(train)))
        train.sampler.set_epoch(1)
        table.append(("train epoch 2: cached waveforms + augment + features", *run_epoch(train)))

    print(f"Data: {source}, {len(rows)} clips; features at {args.sample_rate} Hz, batch {args.batch_size}, "
          f"num_workers {args.num_workers}\n")
    print("| pass | clips | seconds | clips/s |\n| --- | ---: | ---: | ---: |")
    for name, clips, seconds in table:
        print(f"| {name} | {clips} | {seconds:.2f} | {clips / seconds:,.0f} |")


if __name__ == "__main__":
    main()
