"""Detectors trained from TTS only, scored on real voices: trains ``configs/keyword_from_tts.yaml`` for each keyword
list and seed, then scores every run with ``scripts/bench_real_keywords.py`` and prints one table: at the plain top
class, and at the threshold chosen on validation audio (``--threshold-on``, default ``real-val``: the validation
speakers' real clips of other words; ``tts-val``: the run's own TTS validation negatives).

    python scripts/bench_tts_keywords.py                                  # marvin and sheila, seeds 0 1 2
    python scripts/bench_tts_keywords.py --keywords yes,no --seeds 0      # the embedded default's words
    python scripts/bench_tts_keywords.py --keywords marvin --seeds 0 --epochs 1   # smoke

Each run is ``python -m kwslab.fit --config configs/keyword_from_tts.yaml --config OVERLAY`` in a subprocess, in
``runs/bench_tts_kw/<keywords>/seed<k>/`` (the overlay: keywords, seed, checkpoints and a CSV log there). The TTS
corpus of a keyword list is built once in ``data/tts_keywords/<keywords>`` and shared by its seeds (the seed changes
the training, not the voices). The score uses the last epoch's weights: the TTS validation set says nothing about
real voices, so no epoch is picked on it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real_keywords import DEFAULT_DATA, NEVER_HEARD, prepare_command, score, summary, table  # noqa: E402
from fit_runs import fit_in, save_json, write_overlay  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "keyword_from_tts.yaml"


def train_one(keywords: list[str], seed: int, runs: Path, epochs: int | None, threads: int,
              extra: list[str]) -> tuple[Path, Path, float]:
    """Fit one run; return its last checkpoint, its corpus's validation manifest and the wall time."""
    name = "-".join(keywords)
    extra = [x.replace("{keywords}", name) for x in extra]  # e.g. --data.init_args.root data/tts/{keywords}-all
    run_dir = (runs / name / f"seed{seed}").resolve()
    overlay = write_overlay(CONFIG, run_dir, seed, epochs, {"keywords": keywords})
    cmd = [sys.executable, "-m", "kwslab.fit", "--config", str(CONFIG), "--config", str(overlay), *extra]
    wall = fit_in(run_dir, cmd, REPO, threads, f"{name} seed {seed}")
    return run_dir / "checkpoints" / "last.ckpt", corpus_root(name, extra) / "val.csv", wall


def corpus_root(name: str, extra: list[str]) -> Path:
    """The TTS corpus folder of keyword list ``name``: the config's ``root``, else its per-list folder, unless an
    extra ``--data.init_args.root`` moved it."""
    extra = [x.replace("{keywords}", name) for x in extra]
    if "--data.init_args.root" in extra:
        return REPO / extra[extra.index("--data.init_args.root") + 1]
    return REPO / (yaml.safe_load(CONFIG.read_text())["data"]["init_args"].get("root") or f"data/tts_keywords/{name}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keywords", nargs="+", default=["marvin", "sheila"],
                   help="keyword lists, each comma-separated (default: marvin sheila, one detector each)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="override max_epochs (smoke runs)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="real clips' manifests (bench_real_keywords)")
    p.add_argument("--threshold-on", choices=("real-val", "tts-val"), default="real-val",
                   help="where the threshold is chosen (bench_real_keywords); the top class is always reported too")
    p.add_argument("--target-false-accepts", type=float, default=0.02,
                   help="share of the TTS validation negatives a threshold may accept (default 0.02)")
    p.add_argument("--runs", type=Path, default=REPO / "runs" / "bench_tts_kw")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-train", action="store_true", help="score finished runs only")
    p.add_argument("--out", type=Path, help="write the numbers here as JSON")
    p.add_argument("fit_args", nargs="*", help="extra kwslab.fit arguments after --, e.g. -- --model.init_from X "
                                                "({keywords} in them becomes the run's keyword list)")
    a = p.parse_args(argv)
    if not all((a.data / f"{s}.csv").is_file() for s in ("train", "val", "test")):
        sys.exit(f"error: no manifests in {a.data}; prepare them first: {prepare_command(a.data)}")
    results, labels = [], []
    for kw in a.keywords:
        words = [w.strip() for w in kw.split(",") if w.strip()]
        group = []
        for seed in a.seeds:
            run_dir = a.runs / "-".join(words) / f"seed{seed}"
            if a.skip_train:
                ckpt, wall = run_dir / "checkpoints" / "last.ckpt", None
                val = corpus_root("-".join(words), a.fit_args) / "val.csv"
            else:
                ckpt, val, wall = train_one(words, seed, a.runs, a.epochs, a.threads, a.fit_args)
            for how in ("top", a.threshold_on):
                res = score(ckpt, a.data, NEVER_HEARD, val, a.target_false_accepts, how)
                res.update(seed=seed, train_seconds=wall, threshold_on=how)
                group.append(res)
                labels.append(f"TTS-only {'+'.join(words)}, seed {seed}, {how}")
        results += group
    print(table(results, labels))
    for kw in a.keywords:
        for how in ("top", a.threshold_on):
            group = [r for r, lab in zip(results, labels)
                     if lab.startswith(f"TTS-only {kw.replace(',', '+')},") and r["threshold_on"] == how]
            if len(group) > 1:
                print(f"{kw} ({how}): {summary(group)}")
    save_json(a.out, {"results": results, "labels": labels})
    return 0


if __name__ == "__main__":
    sys.exit(main())
