"""Speech Commands (12 classes) benchmark of the keyword-model zoo: prepares, trains each recipe per seed, prints one
markdown table (and writes the numbers as JSON).

    python scripts/bench_speech_commands.py                                    # every configs/sc12_*.yaml, seeds 0 1 2
    python scripts/bench_speech_commands.py --configs configs/sc12_bcresnet1.yaml --seeds 0 --epochs 2   # smoke
    python scripts/bench_speech_commands.py --skip-train --out runs/bench_sc12/results.json   # re-read finished runs

Data: ``--data`` (default ``data/sc12``) holds the manifests of ``python -m kwslab.prepare speech-commands --task 12``;
when they are missing they are prepared from ``--corpus`` (default ``$KWSLAB_SPEECH_COMMANDS``, else the shared
3,879-clip subset ``../shared/data/speech_commands``). The background noise is ``--noise`` (default: the corpus's
``_background_noise_``), passed to every recipe as a command-line override.

Each run is ``python -m kwslab.fit --config CONFIG --config OVERLAY`` in a subprocess, one at a time, in
``runs/bench_sc12/<config>/seed<k>/`` (the overlay: seed, manifests, checkpoints and a CSV log in that folder). Its
best checkpoint (validation accuracy) is then scored on the test manifest with
:func:`kwslab.inference.scoring.evaluate_keywords`; ``result.json`` in the run folder keeps the numbers, so
``--skip-train`` rebuilds the table without training.

Columns:

- parameters: trainable parameters of the network.
- MACs per 1-s clip: multiply-accumulates of every ``Conv1d``/``Conv2d``/``Linear`` layer for one clip's features
  (forward hooks: output elements x input channels per group x kernel size; ``Linear``: outputs x inputs). Not
  counted: bias additions, BatchNorm (folded into the convs at inference), activations, pooling, residual additions
  and the feature extraction itself.
- CPU latency per clip: one thread, features (from samples already in memory) + the network's forward pass, median
  over ``--latency-clips`` test clips.
- training wall time: the ``kwslab.fit`` subprocess on this machine (start-up, training, validation every epoch),
  mean over the seeds.
- test accuracy: 12 classes on the test manifest (for ``data/sc12``: speakers never seen in training), mean ± sd
  over the seeds, of the checkpoint with the best validation accuracy (what ``kwslab.fit`` tests); "final epoch
  instead": the same for the last epoch's weights (``last.ckpt``), since 411 validation clips pick an epoch noisily.
- paper: the published figure on the full corpus (which version, which protocol), not comparable with the subset.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts' run-folder helpers
from fit_runs import fit_in, write_overlay  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO / ".." / "shared" / "data" / "speech_commands"
DEFAULT_CONFIGS = ("sc12_bcresnet1", "sc12_bcresnet8", "sc12_matchboxnet", "sc12_tcresnet8", "sc12_dscnn")

# The papers' own full-corpus test accuracy, 12 classes, with the corpus version they used.
PAPER = {
    "sc12_bcresnet1": "96.9% (v2; Kim et al. 2021)",
    "sc12_bcresnet8": "98.7% (v2; Kim et al. 2021)",
    "sc12_matchboxnet": "97.5% (v2; Majumdar & Ginsburg 2020, 3x1x64)",
    "sc12_tcresnet8": "96.1% (v1; Choi et al. 2019)",
    "sc12_dscnn": "94.4% (v1; Zhang et al. 2017, DS-CNN-S)",
}


def prepare_command(corpus: Path | str, data: Path | str) -> str:
    return f"python -m kwslab.prepare speech-commands --root {corpus} --task 12 --out {data}"


def ensure_data(data: Path, corpus: Path) -> dict[str, Path]:
    """The three manifests in ``data``; prepared from ``corpus`` when missing. Exits with the command to run when
    neither the manifests nor the corpus are there."""
    manifests = {split: data / f"{split}.csv" for split in ("train", "val", "test")}
    if all(p.is_file() for p in manifests.values()):
        return manifests
    if not corpus.is_dir():
        sys.exit(f"error: no manifests in {data} and no Speech Commands corpus at {corpus}.\n"
                 f"  The shared subset: {prepare_command('../shared/data/speech_commands', data)}\n"
                 f"  The full corpus:   {prepare_command('data/speech_commands_v2', data)} --download --version 2\n"
                 f"  or give --corpus DIR (a folder laid out like Speech Commands) or --data DIR.")
    cmd = [sys.executable, "-m", "kwslab.prepare", "speech-commands", "--root", str(corpus), "--task", "12",
           "--out", str(data)]
    print("preparing:", " ".join(cmd[1:]), flush=True)
    if subprocess.run(cmd, cwd=REPO, check=False).returncode != 0 or not all(p.is_file() for p in manifests.values()):
        sys.exit(f"error: preparing {data} from {corpus} failed (see above); run it yourself: "
                 f"{prepare_command(corpus, data)}")
    return manifests


def fit_command(config: Path, overlay: Path, noise: Path | None) -> list[str]:
    """``kwslab.fit`` for one run; the noise folder as a dotted override (it merges into ``augment``)."""
    cmd = [sys.executable, "-m", "kwslab.fit", "--config", str(config), "--config", str(overlay), "--test", "false"]
    if noise is not None:
        cmd += ["--data.init_args.augment.background_noise.noises", json.dumps([str(noise)])]
    return cmd


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint with the highest validation accuracy in its name (``epochNN-acc0.XXXX.ckpt``)."""
    ckpts = sorted((run_dir / "checkpoints").glob("epoch*-acc*.ckpt"),
                   key=lambda p: (float(p.stem.rsplit("acc", 1)[1]), p.stat().st_mtime))
    if not ckpts:
        raise FileNotFoundError(f"no epoch*-acc*.ckpt in {run_dir / 'checkpoints'}; did the run finish?")
    return ckpts[-1]


def train_one(config: Path, seed: int, out: Path, manifests: dict[str, Path], noise: Path | None,
              epochs: int | None, threads: int) -> dict[str, Any]:
    """Train one config with one seed in a subprocess, score its best checkpoint, write ``result.json``."""
    run_dir = out / config.stem / f"seed{seed}"
    overlay = write_overlay(config, run_dir, seed, epochs, {f"{k}_manifest": str(v) for k, v in manifests.items()})
    cmd = fit_command(config, overlay, noise)
    wall = fit_in(run_dir, cmd, REPO, threads, f"{config.stem} seed {seed}")
    result = score_run(run_dir, manifests["test"])
    result.update(config=str(config), seed=seed, train_seconds=round(wall, 1), epochs=epochs,
                  command=" ".join(cmd[1:]))
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    print(f"[{config.stem} seed {seed}] test accuracy {result['test_acc']:.4f} (best epoch {result['best_epoch']}, "
          f"final epoch {result['test_acc_last']:.4f}), {wall / 60:.1f} min", flush=True)
    return result


def score_run(run_dir: Path, test_manifest: Path) -> dict[str, Any]:
    """Test accuracy of the best checkpoint (and of the final epoch's ``last.ckpt``, for reference)."""
    from kwslab.inference.scoring import evaluate_keywords

    best = best_checkpoint(run_dir)
    test = evaluate_keywords(best, test_manifest, png=run_dir / "confusion_test.png")
    last = run_dir / "checkpoints" / "last.ckpt"
    test_last = evaluate_keywords(last, test_manifest, png=run_dir / "confusion_test_last.png")["accuracy"] \
        if last.is_file() else None
    return {"best_ckpt": str(best), "best_epoch": int(best.stem[5:7]), "val_acc": float(best.stem.rsplit("acc", 1)[1]),
            "test_acc": test["accuracy"], "test_acc_last": test_last, "test_clips": test["clips"],
            "recall": {k: v["recall"] for k, v in test["per_class"].items()}}


def count_macs(net: Any, x: Any) -> int:
    """Multiply-accumulates of ``Conv1d``, ``Conv2d`` and ``Linear`` layers in ``net(x)`` per item of the batch
    (see the module docstring for what is not counted)."""
    import torch
    from torch import nn

    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        per_item = output.numel() // output.shape[0]
        if isinstance(module, nn.Linear):
            total += per_item * module.in_features
        else:
            kernel = 1
            for k in module.kernel_size:
                kernel *= k
            total += per_item * (module.in_channels // module.groups) * kernel

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return total


def model_costs(ckpt: Path, test_manifest: Path, clips: int) -> dict[str, Any]:
    """Parameters, MACs per 1-s clip and the median one-thread CPU latency (features + network) of a checkpoint."""
    import numpy as np
    import torch

    from kwslab.audio import load_audio
    from kwslab.data import read_manifest
    from kwslab.dsp import FeatureExtractor
    from kwslab.inference import load_model

    model = load_model(ckpt)
    net, cfg = model.module.net.eval(), model.feature_config
    extract = FeatureExtractor(cfg)
    rows = read_manifest(test_manifest, need_keyword=True)[:clips]
    waves = [load_audio(r.path, cfg.sample_rate) for r in rows]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.from_numpy(extract(waves[0]))[None]
        macs = count_macs(net, x)
        times = []
        with torch.no_grad():
            for y in waves[:3]:  # warm-up
                net(torch.from_numpy(extract(y))[None])
            for y in waves:
                t0 = time.perf_counter()
                net(torch.from_numpy(extract(y))[None])
                times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        torch.set_num_threads(threads)
    return {"network": f"{type(net).__module__}.{type(net).__name__}",
            "parameters": sum(p.numel() for p in net.parameters() if p.requires_grad), "macs": macs,
            "latency_ms": float(np.median(times)), "latency_clips": len(times), "features": list(x.shape[1:])}


def read_result(config: Path, seed: int, out: Path) -> dict[str, Any] | None:
    path = out / config.stem / f"seed{seed}" / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _si(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.1f}%{sd}"


def markdown(rows: list[dict[str, Any]], ensemble: dict[str, Any] | None = None) -> str:
    lines = [("| model | parameters | MACs per 1-s clip | CPU latency per clip (1 thread) | training time (this machine) "
              "| test accuracy, subset (mean ± sd) | final epoch instead | seeds | paper, full corpus |"),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        accs = [x["test_acc"] for x in r["runs"]]
        acc, last = _mean_sd(accs), _mean_sd([x["test_acc_last"] for x in r["runs"] if x.get("test_acc_last")])
        minutes = statistics.mean(x["train_seconds"] for x in r["runs"]) / 60
        c = r["costs"]
        lines.append(f"| {r['name']} | {_si(c['parameters'])} | {_si(c['macs'])} | {c['latency_ms']:.1f} ms | "
                     f"{minutes:.1f} min | {acc} | {last} | {len(accs)} | {PAPER.get(r['name'], '-')} |")
    if ensemble:
        lines.append(f"| ensemble of {' + '.join(ensemble['members'])} (seed {ensemble['seed']}, mean probability) "
                     f"| | | | | {100 * ensemble['test_acc']:.1f}% | | 1 | - |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", type=Path, default=[REPO / "configs" / f"{c}.yaml" for c in DEFAULT_CONFIGS],
                   help="recipes to run (default: the five zoo configs/sc12_*.yaml)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--epochs", type=int, default=None, help="override max_epochs (smoke runs); default: the config's")
    p.add_argument("--skip-train", action="store_true", help="only re-read finished runs (their result.json)")
    p.add_argument("--data", type=Path, default=REPO / "data" / "sc12", help="manifest folder (default data/sc12)")
    p.add_argument("--corpus", type=Path, default=Path(os.environ.get("KWSLAB_SPEECH_COMMANDS") or DEFAULT_CORPUS),
                   help="corpus to prepare --data from when its manifests are missing (default: "
                        "$KWSLAB_SPEECH_COMMANDS, else ../shared/data/speech_commands)")
    p.add_argument("--noise", type=Path, default=None,
                   help="background-noise folder for every recipe (default: CORPUS/_background_noise_)")
    p.add_argument("--runs", type=Path, default=REPO / "runs" / "bench_sc12", help="run folders")
    p.add_argument("--out", type=Path, default=None, help="write the table's numbers here as JSON")
    p.add_argument("--latency-clips", type=int, default=100, help="test clips timed per model (default 100)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the training runs (default 1)")
    p.add_argument("--ensemble", action="store_true",
                   help="also score the mean-probability ensemble of every config's first seed")
    a = p.parse_args(argv)
    for config in a.configs:
        if not config.is_file():
            sys.exit(f"error: no config {config}")
    manifests = ensure_data(a.data.resolve(), a.corpus)
    noise = (a.noise or a.corpus / "_background_noise_").resolve()
    if not a.skip_train and not noise.is_dir():
        sys.exit(f"error: no background-noise folder at {noise}; give --noise DIR (the corpus's _background_noise_)")
    if not a.skip_train:
        for config in a.configs:
            for seed in a.seeds:
                train_one(config.resolve(), seed, a.runs, manifests, noise, a.epochs, a.threads)
    rows = []
    for config in a.configs:
        runs = [r for r in (read_result(config, s, a.runs) for s in a.seeds) if r is not None]
        if not runs:
            print(f"warning: no finished run of {config.stem} for seeds {a.seeds} in {a.runs}; left out",
                  file=sys.stderr)
            continue
        rows.append({"name": config.stem, "runs": runs,
                     "costs": model_costs(Path(runs[0]["best_ckpt"]), manifests["test"], a.latency_clips)})
    if not rows:
        sys.exit(f"error: no finished runs in {a.runs}; train first (without --skip-train)")
    ensemble = None
    if a.ensemble and len(rows) > 1:
        from kwslab.inference.scoring import evaluate_keywords

        members = [r["runs"][0] for r in rows]
        res = evaluate_keywords([m["best_ckpt"] for m in members], manifests["test"],
                                png=a.runs / "confusion_ensemble.png")
        ensemble = {"members": [r["name"].removeprefix("sc12_") for r in rows], "seed": members[0]["seed"],
                    "test_acc": res["accuracy"], "checkpoints": [m["best_ckpt"] for m in members]}
    table = markdown(rows, ensemble)
    print(table)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"rows": rows, "ensemble": ensemble, "table": table,
                                     "data": str(a.data), "seeds": a.seeds}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
