"""Reproduce docs/results.md: keyword spotting on the Free Spoken Digit Dataset (FSDD), four experiments.

* ``official``: FSDD official split (index 0-4 test), ``configs/cnn_fsdd.yaml``.
* ``speaker``: speaker-disjoint, four rotations (train on three speakers, test on all 500 clips of the fourth;
  the checkpoint is picked on the training speakers' index 0-4 clips), ``cnn_fsdd.yaml`` + ``cnn_fsdd_speaker.yaml``.
* ``speaker-synth``: the same rotations with the espeak digits (``synth`` below) added to the three real speakers'
  training data, ``cnn_fsdd.yaml`` + ``cnn_fsdd_speaker.yaml`` + ``cnn_fsdd_speaker_synth.yaml``.
* ``synth``: trained only on espeak-ng digit words, checkpoint picked on synthetic validation voices, tested on all
  2,000 real FSDD recordings, one run per seed, ``configs/cnn_synth_digits.yaml``.

Each run is ``python -m kwslab.fit`` with the experiment's configs plus a generated overlay (its own checkpoint
folder, a CSV logger, the seed, the manifests), saved with the run under ``--out``; the best (and the last)
checkpoint are then scored with :func:`kwslab.evaluate.evaluate_keywords`, and the best one once more after
unsupervised adaptation to each test speaker (:func:`kwslab.evaluate.evaluate_adapted`: two folds per speaker, adapted
on one half of the speaker's unlabelled clips, scored on the other). A markdown table is printed and the
numbers are written to ``OUT/results.json``. Runs one training at a time; ``--quick`` shortens everything.

    python scripts/fsdd_experiments.py                      # everything (about 1.5 hours on 2 CPU cores)
    python scripts/fsdd_experiments.py --quick --only official speaker
    python scripts/fsdd_experiments.py --only speaker-synth --rotation-seeds 0 1   # compare changes over seeds
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPEAKERS = ("george", "jackson", "lucas", "nicolas")


def fsdd_recordings() -> Path:
    """FSDD recordings: ``$KWSLAB_FSDD``, else ``../shared/data/fsdd/recordings`` beside the repository."""
    path = Path(os.environ.get("KWSLAB_FSDD") or REPO / ".." / "shared" / "data" / "fsdd" / "recordings")
    if not path.is_dir():
        sys.exit(f"error: FSDD recordings not found at {path}; set KWSLAB_FSDD to the recordings folder")
    return path.resolve()


def prepare_fsdd_manifests(data: Path) -> None:
    """Official split (``data/official``), all clips (``data/all/test.csv``), rotations (``data/speaker_<s>``)."""
    from kwslab.data.manifest import write_manifest
    from kwslab.data.sources.fsdd import prepare_fsdd

    rows = prepare_fsdd(fsdd_recordings(), data / "official", split="official").rows
    write_manifest(data / "all" / "test.csv", [{**r, "split": "test"} for r in rows])
    for test_speaker in SPEAKERS:
        out = data / f"speaker_{test_speaker}"
        others = [r for r in rows if r["speaker"] != test_speaker]
        index = {r["filename"]: int(Path(str(r["filename"])).stem.rsplit("_", 1)[1]) for r in others}
        write_manifest(out / "train.csv", [{**r, "split": "train"} for r in others if index[r["filename"]] >= 5])
        write_manifest(out / "val.csv", [{**r, "split": "val"} for r in others if index[r["filename"]] < 5])
        write_manifest(out / "test.csv", [{**r, "split": "test"} for r in rows if r["speaker"] == test_speaker])


def build_synthetic_digits(root: Path, voices: str, per_voice: int, val_fraction: float = 0.1) -> None:
    """espeak-ng digit words into ``root`` (resumable), split by voice into ``train.csv`` / ``val.csv``."""
    from kwslab.data.manifest import read_manifest, write_manifest
    from kwslab.data.sources.split import split_groups

    cmd = [sys.executable, "-m", "kwslab.tts", "--keywords", *DIGITS, "--voices", voices, "--per-voice",
           str(per_voice), "--sample-rate", "8000", "--rate", "110", "220", "--pitch", "20", "80", "--range", "20",
           "80", "--out", str(root), "--no-progress"]
    if not (root / "val.csv").exists():
        print("building the synthetic digits:", " ".join(cmd[1:]), flush=True)
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            sys.exit(f"error: the espeak build of {root} failed; re-run to resume")
    rows = read_manifest(root / "manifest.csv", need_keyword=True)
    sizes: dict[str, int] = {}
    for r in rows:
        sizes[r.speaker] = sizes.get(r.speaker, 0) + 1
    split = split_groups(sizes, val_fraction, 0.0, seed=0)
    for name in ("train", "val"):
        write_manifest(root / f"{name}.csv", [{**r.to_dict(), "filename": str(r.path), "split": name}
                                              for r in rows if split[r.speaker] == name])


def _merged(configs: list[Path]) -> dict[str, Any]:
    """Shallow-merge the YAML files the way the overlay needs: later top-level sections update earlier ones."""
    out: dict[str, Any] = {}
    for path in configs:
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out


def rooted_callbacks(callbacks: list[dict[str, Any]] | None, run_dir: Path) -> list[dict[str, Any]]:
    """Copies of a config's callbacks with their folders moved into ``run_dir`` (checkpoints under
    ``run_dir/checkpoints``), so one run never writes into another's."""
    out = []
    for cb in callbacks or []:
        cb = json.loads(json.dumps(cb))
        if cb["class_path"].endswith(("ModelCheckpoint", "LatestCheckpoint")):
            cb["init_args"]["dirpath"] = str(run_dir / "checkpoints")
        if cb["class_path"].endswith("ConfusionMatrixCallback"):
            cb["init_args"]["dirpath"] = str(run_dir)
        out.append(cb)
    return out


def run_fit(run_dir: Path, configs: list[Path], manifests: dict[str, Any], seed: int,
            epochs: int | None) -> dict[str, Any]:
    """Train with ``configs`` + an overlay; evaluate the best and last checkpoints on the test manifest."""
    from kwslab.adaptation import evaluate_adapted
    from kwslab.inference.scoring import evaluate_keywords

    base = _merged(configs)
    callbacks = rooted_callbacks(base["trainer"]["callbacks"], run_dir)
    # The final epoch too: kwslab.callbacks.LatestCheckpoint writes checkpoints/last.ckpt after every epoch.
    if not any(cb["class_path"].endswith("LatestCheckpoint") for cb in callbacks):
        callbacks.append({"class_path": "kwslab.callbacks.LatestCheckpoint",
                          "init_args": {"dirpath": str(run_dir / "checkpoints")}})
    overlay: dict[str, Any] = {
        "seed_everything": seed,
        "trainer": {"callbacks": callbacks, "enable_progress_bar": False,
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(run_dir), "name": "csv", "version": 0}}},
        "data": {"class_path": base["data"]["class_path"],
                 "init_args": {**{f"{k}_manifest": v for k, v in manifests.items()}, "seed": seed}},
    }
    if epochs:
        overlay["trainer"]["max_epochs"] = epochs
        scheduler = base["model"]["init_args"].get("scheduler") or {}
        if scheduler.get("class_path", "").endswith("CosineAnnealingLR"):
            overlay["model"] = {"class_path": base["model"]["class_path"],
                                "init_args": {"scheduler": {"class_path": scheduler["class_path"],
                                                            "init_args": {"T_max": epochs}}}}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "overlay.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    cmd = [sys.executable, "-m", "kwslab.fit", *[a for c in configs for a in ("--config", str(c))],
           "--config", str(run_dir / "overlay.yaml"), "--test", "false"]
    print(f"[{run_dir.name}] " + " ".join(cmd[1:]), flush=True)
    # One intra-op thread: on a small shared CPU, torch's thread pool fighting other processes is several times
    # slower than a single thread (measured: 0.29 s vs 1.1 s per batch at load 7 on 2 cores).
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with open(run_dir / "fit.log", "w") as log:
        if subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env).returncode != 0:
            sys.exit(f"error: training failed, see {run_dir / 'fit.log'}")
    val_curve = _val_curve(run_dir / "csv" / "version_0" / "metrics.csv")
    ckpts = sorted((run_dir / "checkpoints").glob("epoch*.ckpt"),
                   key=lambda p: float(re.search(r"acc([0-9.]+)\.ckpt$", p.name).group(1)))  # type: ignore[union-attr]
    best, last = ckpts[-1], run_dir / "checkpoints" / "last.ckpt"
    test = evaluate_keywords(best, manifests["test"], png=run_dir / "confusion_best.png")
    test_last = evaluate_keywords(last, manifests["test"], png=run_dir / "confusion_last.png")
    adapted = evaluate_adapted(best, manifests["test"])  # per test speaker, 2 folds: never scores what it adapted on
    result = {"run": run_dir.name, "best_ckpt": str(best), "best_epoch": int(best.name[5:7]),
              "val_acc_best": max(val_curve), "val_curve": val_curve, "test_acc": test["accuracy"],
              "test_macro_f1": test["macro_f1"], "test_acc_last": test_last["accuracy"],
              "test_acc_adapted": adapted["adapted_accuracy"],
              "recall": {k: v["recall"] for k, v in test["per_class"].items()}, "command": " ".join(cmd[1:])}
    print(f"[{run_dir.name}] best epoch {result['best_epoch']}: val {result['val_acc_best']:.4f}, test "
          f"{result['test_acc']:.4f} (final epoch: {result['test_acc_last']:.4f}; best, adapted to the test "
          f"speaker: {result['test_acc_adapted']:.4f})", flush=True)
    return result


def _val_curve(metrics_csv: Path) -> list[float]:
    with open(metrics_csv, newline="") as f:
        return [round(float(r["val/acc"]), 4) for r in csv.DictReader(f) if r.get("val/acc")]


def markdown(results: dict[str, list[dict[str, Any]]]) -> str:
    """One table per experiment plus the mean test accuracy."""
    lines = []
    for name, runs in results.items():
        lines += [f"\n### {name}\n", "| run | best epoch | val acc | test acc (best ckpt) | test acc (final epoch) "
                  "| test acc (best ckpt, adapted) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['run']} | {r['best_epoch']} | {r['val_acc_best']:.4f} | {r['test_acc']:.4f} | "
                  f"{r['test_acc_last']:.4f} | {r['test_acc_adapted']:.4f} |" for r in runs]
        accs = [r["test_acc"] for r in runs]
        spread = f" ± {statistics.stdev(accs):.4f} (sd)" if len(accs) > 1 else ""
        lines.append(f"| **mean** | | | **{statistics.mean(accs):.4f}**{spread} | "
                     f"{statistics.mean(r['test_acc_last'] for r in runs):.4f} | "
                     f"**{statistics.mean(r['test_acc_adapted'] for r in runs):.4f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["official", "speaker", "speaker-synth", "synth"],
                        default=["official", "speaker", "speaker-synth", "synth"],
                        help="experiments to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller run: 8 epochs (synth: 6), 2 rotations, 1 seed, 64 voices")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="synth seeds (default 0 1 2)")
    parser.add_argument("--rotation-seeds", nargs="+", type=int, default=[0],
                        help="seeds of the speaker / speaker-synth rotations (default 0). A rotation moves by up to "
                             "4 points between seeds, so compare changes over several")
    parser.add_argument("--overlay", type=Path, action="append", default=[],
                        help="an extra config merged last into every run (e.g. configs/overlays/delta_deltas.yaml); "
                             "run folders get its name as a suffix, so runs with and without it sit side by side")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "experiments", help="run folders and JSON")
    parser.add_argument("--data", type=Path, default=REPO / "data", help="where manifests/corpora go")
    args = parser.parse_args(argv)
    out = args.out / ("quick" if args.quick else "full")
    configs = REPO / "configs"
    results: dict[str, list[dict[str, Any]]] = {}
    for overlay in args.overlay:
        if not overlay.is_file():
            parser.error(f"--overlay {overlay}: no such file")
    extra = [o.resolve() for o in args.overlay]
    suffix = "".join(f"+{o.stem}" for o in args.overlay)
    prepare_fsdd_manifests(args.data / "fsdd")
    fsdd = args.data / "fsdd"
    if "official" in args.only:
        m = {s: str(fsdd / "official" / f"{s}.csv") for s in ("train", "val", "test")}
        results["FSDD official split"] = [run_fit(out / f"official{suffix}", [configs / "cnn_fsdd.yaml", *extra], m, 0,
                                                  8 if args.quick else None)]
    rotations = [(speaker, seed) for seed in (args.rotation_seeds[:1] if args.quick else args.rotation_seeds)
                 for speaker in (SPEAKERS[:2] if args.quick else SPEAKERS)]

    def rotation_name(prefix: str, speaker: str, seed: int) -> str:
        return f"{prefix}_{speaker}" + (f"_seed{seed}" if seed else "") + suffix

    if "speaker" in args.only:
        runs = []
        for speaker, seed in rotations:
            m = {s: str(fsdd / f"speaker_{speaker}" / f"{s}.csv") for s in ("train", "val", "test")}
            runs.append(run_fit(out / rotation_name("speaker", speaker, seed),
                                [configs / "cnn_fsdd.yaml", configs / "cnn_fsdd_speaker.yaml", *extra],
                                m, seed, 8 if args.quick else None))
        results["FSDD speaker-disjoint (test speaker = run)"] = runs
    root = args.data / ("tts_digits_default" if args.quick else "tts_digits")
    if "speaker-synth" in args.only:
        build_synthetic_digits(root, "default" if args.quick else "all", 1)
        runs = []
        for speaker, seed in rotations:
            m: dict[str, Any] = {s: str(fsdd / f"speaker_{speaker}" / f"{s}.csv") for s in ("train", "val", "test")}
            m["train"] = [m["train"], str(root / "train.csv")]  # three real speakers + the espeak voices
            runs.append(run_fit(out / rotation_name("speaker_synth", speaker, seed),
                                [configs / "cnn_fsdd.yaml", configs / "cnn_fsdd_speaker.yaml",
                                 configs / "cnn_fsdd_speaker_synth.yaml", *extra],
                                m, seed, 6 if args.quick else None))
        results["FSDD speaker-disjoint + espeak voices in training (test speaker = run)"] = runs
    if "synth" in args.only:
        build_synthetic_digits(root, "default" if args.quick else "all", 1)
        m = {"train": str(root / "train.csv"), "val": str(root / "val.csv"),
             "test": str(fsdd / "all" / "test.csv")}
        results["espeak digits -> all 2,000 real FSDD clips"] = [
            run_fit(out / f"synth_seed{seed}{suffix}", [configs / "cnn_synth_digits.yaml", *extra], m, seed,
                    6 if args.quick else None) for seed in (args.seeds[:1] if args.quick else args.seeds)]
    results = {f"{name} [{suffix[1:]}]" if suffix else name: runs for name, runs in results.items()}
    table = markdown(results)
    print(table)
    existing = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps({**existing, **results}, indent=1))
    os.replace(tmp, out / "results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
