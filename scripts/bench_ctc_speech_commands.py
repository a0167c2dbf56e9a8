"""Connected commands from real Speech Commands speakers: prepares, trains ``configs/ctc_speech_commands.yaml`` per
seed (and the same with ``stop`` held out of training), then prints one table of WER and keyword search on the test
speakers, and one of decoding speed (writes the numbers as JSON too).

    python scripts/bench_ctc_speech_commands.py                        # seeds 0 1 2, both variants
    python scripts/bench_ctc_speech_commands.py --seeds 0 --epochs 1   # smoke
    python scripts/bench_ctc_speech_commands.py --skip-train           # re-read finished runs

Data: the prepare commands in the headers of the config and of ``configs/overlays/ctc_sc_holdout_stop.yaml``, run
when their manifests are missing, with ``--corpus`` (default ``$KWSLAB_SPEECH_COMMANDS``, else the shared 3,879-clip
subset ``../shared/data/speech_commands``) in place of the shared path. Splits are by speaker: the test speakers are
never heard in training or validation.

Each run is ``python -m kwslab.fit`` in a subprocess, one at a time, in ``runs/bench_ctc_sc/<variant>/seed<k>/``.
Its checkpoint with the best validation CER is then scored:

- WER on the test strings: greedy, beam 16, and beam 16 + the training strings' trigram LM with the LM weight and
  word bonus tuned on the validation strings (``kwslab.decoding.tune_alpha_beta``), never on the test;
- keyword search (``kwslab.inference.spotting``): precision, recall and F1 per command word against the recorded
  word segments, at the threshold with the best F1 on the validation strings; for the held-out variant, the same for
  ``stop``, the word its model never heard;
- speed (1 thread, the first seed's model, ``--speed-utts`` test strings): features + network, and each decoder,
  per utterance, and the real-time factor (processing seconds per second of audio).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speech_commands import fit_command  # noqa: E402
from fit_runs import fit_in, run_prepare, save_json, write_overlay  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = "../shared/data/speech_commands"
DEFAULT_CORPUS = REPO / ".." / "shared" / "data" / "speech_commands"
CONFIG = REPO / "configs" / "ctc_speech_commands.yaml"
HOLDOUT_OVERLAY = REPO / "configs" / "overlays" / "ctc_sc_holdout_stop.yaml"
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
HELD_OUT = "stop"
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
BETAS = (-1.0, 0.0, 1.0, 2.0)
BEAM = 16


def variants() -> dict[str, list[Path]]:
    """The configs each variant trains with (merged in order)."""
    return {"all_words": [CONFIG], "stop_held_out": [CONFIG, HOLDOUT_OVERLAY]}


def data_folder(configs: list[Path], root: Path) -> Path:
    """Where the variant's manifests are (the last config that names them), under ``root``."""
    folder = None
    for c in configs:
        train = (yaml.safe_load(c.read_text()).get("data") or {}).get("init_args", {}).get("train_manifest")
        folder = Path(train).parent if train else folder
    assert folder is not None
    return root / folder


def ensure_data(configs: list[Path], corpus: Path, root: Path, count: int | None = None) -> dict[str, Path]:
    """The variant's manifests under ``root``; missing ones are made there with the prepare commands of the last
    config's header (the shared corpus path replaced by ``corpus``; ``count``: that many strings instead)."""
    from kwslab.recipes import header_recipes

    folder = data_folder(configs, root)
    manifests = {s: folder / f"{s}.csv" for s in ("train", "val", "test")}
    if all(p.is_file() for p in manifests.values()):
        return manifests
    rel = data_folder(configs, Path()).as_posix()  # e.g. data/sc_ctc: its own sequences command, and sc35's
    commands = [c for prepare, _ in header_recipes(configs[-1]) for c in prepare
                if "speech-commands" in c or re.search(rf"--out {re.escape(rel)}(\s|$)", c)]
    if not corpus.is_dir():
        sys.exit(f"error: no manifests in {folder} and no Speech Commands corpus at {corpus}; give --corpus DIR "
                 "(a folder laid out like Speech Commands). The commands: " + " && ".join(commands))
    for command in commands:  # data/sc35, shared by both variants, is made once
        run_prepare(command, root, {SHARED: str(corpus)}, {"--count": str(count)} if count is not None else None)
    return manifests


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint with the lowest validation CER in its name (``epochNN-cer0.XXXX.ckpt``)."""
    ckpts = sorted((run_dir / "checkpoints").glob("epoch*-cer*.ckpt"),
                   key=lambda p: (float(p.stem.rsplit("cer", 1)[1]), -p.stat().st_mtime))
    if not ckpts:
        raise FileNotFoundError(f"no epoch*-cer*.ckpt in {run_dir / 'checkpoints'}; did the run finish?")
    return ckpts[0]


def train_one(name: str, configs: list[Path], seed: int, out: Path, manifests: dict[str, Path], noise: Path,
              epochs: int | None, threads: int) -> float:
    """Train one variant with one seed in a subprocess; return its wall time in seconds."""
    run_dir = out / name / f"seed{seed}"
    # the run's seed, manifests, checkpoints and CSV log (the variant's overlay only moves folders and manifests)
    overlay = write_overlay(CONFIG, run_dir, seed, epochs, {f"{k}_manifest": str(v) for k, v in manifests.items()})
    cmd = fit_command(configs[0], overlay, noise)
    for extra in configs[1:]:  # the variant's overlay before the run's own
        i = cmd.index(str(overlay)) - 1
        cmd[i:i] = ["--config", str(extra)]
    return fit_in(run_dir, cmd, REPO, threads, f"{name} seed {seed}")


def score(ckpt: Path, manifests: dict[str, Path], lm: Path, spot_words: list[str]) -> dict[str, Any]:
    """WER per decoder (LM weights tuned on val) and keyword search (threshold chosen on val) on the test set."""
    from kwslab.data.manifest import read_manifest
    from kwslab.decoding import tune_alpha_beta
    from kwslab.decoding.lm import NGramLM
    from kwslab.decoding.settings import DecoderSettings
    from kwslab.inference import load_model
    from kwslab.inference.ctc import decode, posteriors
    from kwslab.inference.spotting import evaluate_spotting
    from kwslab.metrics import error_rates

    model = load_model(ckpt)
    vocab = model.module.vocab
    val = read_manifest(manifests["val"], need_transcript=True)
    grid = tune_alpha_beta(posteriors(model, [r.path for r in val]), [vocab.normalize(r.transcript) for r in val],
                           vocab, NGramLM.load_arpa(lm), ALPHAS, BETAS, BEAM)
    alpha, beta = grid[0]["alpha"], grid[0]["beta"]
    test = read_manifest(manifests["test"], need_transcript=True)
    refs = [vocab.normalize(r.transcript) for r in test]
    lps = posteriors(model, [r.path for r in test])
    plain = decode(lps, vocab, DecoderSettings(beam_width=BEAM))
    fused = decode(lps, vocab, DecoderSettings(beam_width=BEAM, lm=str(lm), alpha=alpha, beta=beta))
    spot = evaluate_spotting(model, manifests["test"], spot_words, val_manifest=manifests["val"])
    return {"ckpt": str(ckpt), "alpha": alpha, "beta": beta, "val_wer_lm": grid[0]["wer"],
            "test_strings": len(test),
            "wer": {"greedy": error_rates(refs, plain["greedy"])["wer"],
                    "beam": error_rates(refs, plain["beam"])["wer"],
                    "beam_lm": error_rates(refs, fused["beam"])["wer"]},
            "cer_beam_lm": error_rates(refs, fused["beam"])["cer"],
            "spotting": {"threshold": spot["threshold"], "words": spot["words"], "all": spot["all"]}}


def speed(ckpt: Path, test: Path, lm: Path, utts: int) -> dict[str, float]:
    """Milliseconds per utterance (1 thread) of features + network and of each decoder, and the real-time factors."""
    import torch

    from kwslab.data.manifest import read_manifest
    from kwslab.decoding import beam_search_batch, greedy
    from kwslab.decoding.settings import DecoderSettings
    from kwslab.inference import load_model
    from kwslab.inference.ctc import posteriors

    model = load_model(ckpt)
    rows = read_manifest(test, need_transcript=True)[:utts]
    paths = [r.path for r in rows]
    audio_s = sum(r.duration or 0.0 for r in rows)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        posteriors(model, paths[:2])  # warm-up
        t0 = time.perf_counter()
        lps = [posteriors(model, [p])[0] for p in paths]  # one utterance at a time, as a live user would
        t_model = time.perf_counter() - t0
        out = {"utterances": len(rows), "audio_seconds": audio_s, "features_and_network_ms": 1000 * t_model / len(rows)}
        vocab = model.module.vocab
        for name, settings in (("greedy", DecoderSettings(beam_width=0)), ("beam", DecoderSettings(beam_width=BEAM)),
                               ("beam_lm", DecoderSettings(beam_width=BEAM, lm=str(lm)))):
            kwargs = settings.load(vocab)  # the LM is read once, outside the timing
            t0 = time.perf_counter()
            for lp in lps:
                if name == "greedy":
                    greedy(lp, vocab)
                else:
                    beam_search_batch([lp], vocab, BEAM, n_best=1, **kwargs)
            t = time.perf_counter() - t0
            out[f"{name}_ms"] = 1000 * t / len(rows)
            out[f"rtf_{name}"] = (t_model + t) / audio_s
    finally:
        torch.set_num_threads(threads)
    return out


def _mean_sd(values: list[float], pct: bool = True) -> str:
    if not values:
        return "-"
    k = 100 if pct else 1
    sd = f" ± {k * statistics.stdev(values):.{1 if pct else 2}f}" if len(values) > 1 else ""
    return f"{k * statistics.mean(values):.{1 if pct else 3}f}{'%' if pct else ''}{sd}"


def tables(results: dict[str, list[dict[str, Any]]], speeds: dict[str, float] | None) -> str:
    lines = ["| model | seeds | greedy WER | beam 16 WER | beam 16 + LM WER | keyword search F1, trained words "
             "| F1, `stop` (never heard) | training time |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, runs in results.items():
        trained = [w for w in COMMANDS if name == "all_words" or w != HELD_OUT]

        def f1_of(run: dict[str, Any], words: list[str]) -> float:  # micro-F1 over ``words``
            cs = [run["spotting"]["words"][w] for w in words]
            hits, fa, miss = (sum(c[k] for c in cs) for k in ("hits", "false_alarms", "misses"))
            return 2 * hits / (2 * hits + fa + miss) if hits + fa + miss else 0.0

        held = _mean_sd([f1_of(r, [HELD_OUT]) for r in runs], pct=False) if name != "all_words" else "-"
        wer = {k: _mean_sd([r["wer"][k] for r in runs]) for k in ("greedy", "beam", "beam_lm")}
        lines.append(f"| {name} | {len(runs)} | {wer['greedy']} | {wer['beam']} | {wer['beam_lm']} "
                     f"| {_mean_sd([f1_of(r, trained) for r in runs], pct=False)} | {held} "
                     f"| {statistics.mean(r['train_seconds'] for r in runs) / 60:.1f} min |")
    if speeds:
        lines += ["", f"Speed, 1 thread, {speeds['utterances']} test strings "
                      f"({speeds['audio_seconds'] / speeds['utterances']:.2f} s of audio each):", "",
                  "| step | ms per utterance | real-time factor (features + network + decoder) |",
                  "| --- | ---: | ---: |",
                  f"| features + network | {speeds['features_and_network_ms']:.1f} | |"]
        for name, label in (("greedy", "greedy"), ("beam", f"beam {BEAM}"), ("beam_lm", f"beam {BEAM} + LM")):
            lines.append(f"| {label} | {speeds[f'{name}_ms']:.1f} | {speeds[f'rtf_{name}']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--variants", nargs="+", choices=sorted(variants()), default=sorted(variants()),
                   help="all_words: every word in training; stop_held_out: `stop` never in training (default: both)")
    p.add_argument("--epochs", type=int, default=None, help="override max_epochs (smoke runs)")
    p.add_argument("--skip-train", action="store_true", help="only re-read finished runs (their result.json)")
    p.add_argument("--corpus", type=Path, default=Path(os.environ.get("KWSLAB_SPEECH_COMMANDS") or DEFAULT_CORPUS),
                   help="Speech Commands folder the data is prepared from when missing")
    p.add_argument("--count", type=int, default=None,
                   help="strings to compose when preparing (default: the config header's 4000; smoke runs)")
    p.add_argument("--data-root", type=Path, default=REPO,
                   help="folder the configs' data/ paths are under (default: the repository)")
    p.add_argument("--runs", type=Path, default=REPO / "runs" / "bench_ctc_sc", help="run folders")
    p.add_argument("--out", type=Path, default=None, help="write the numbers here as JSON")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the training runs (default 1)")
    p.add_argument("--speed-utts", type=int, default=100, help="test strings timed (default 100; 0: no timing)")
    p.add_argument("--overlay", type=Path, action="append", default=[],
                   help="a config merged after the variant's (repeatable): a probe of other features or another "
                        "network; give it its own --runs")
    a = p.parse_args(argv)
    noise = (a.corpus / "_background_noise_").resolve()
    results: dict[str, list[dict[str, Any]]] = {}
    speeds = None
    for name in a.variants:
        configs = variants()[name] + a.overlay
        root = a.data_root.resolve()
        manifests = ensure_data(variants()[name], a.corpus.resolve(), root, a.count) if not a.skip_train else \
            {s: data_folder(configs, root) / f"{s}.csv" for s in ("train", "val", "test")}
        lm = data_folder(configs, root) / "lm.arpa"
        for seed in a.seeds:
            run_dir = a.runs / name / f"seed{seed}"
            if not a.skip_train:
                wall = train_one(name, configs, seed, a.runs, manifests, noise, a.epochs, a.threads)
                res = score(best_checkpoint(run_dir), manifests, lm, list(COMMANDS))
                res.update(seed=seed, train_seconds=round(wall, 1), epochs=a.epochs)
                (run_dir / "result.json").write_text(json.dumps(res, indent=1))
                print(f"[{name} seed {seed}] WER greedy {res['wer']['greedy']:.4f}, beam+LM "
                      f"{res['wer']['beam_lm']:.4f} (alpha {res['alpha']:g}, beta {res['beta']:g}); keyword search F1 "
                      f"{res['spotting']['all']['f1']:.3f}; {wall / 60:.1f} min", flush=True)
            if (run_dir / "result.json").is_file():
                results.setdefault(name, []).append(json.loads((run_dir / "result.json").read_text()))
        if name == "all_words" and results.get(name) and a.speed_utts:
            speeds = speed(Path(results[name][0]["ckpt"]), manifests["test"], lm, a.speed_utts)
    if not results:
        sys.exit(f"error: no finished runs in {a.runs}; train first (without --skip-train)")
    table = tables(results, speeds)
    print(table)
    save_json(a.out, {"results": results, "speed": speeds, "table": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
