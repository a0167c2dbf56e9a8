#!/usr/bin/env python
"""Throw bad input at every command and print what each did: a bounded, local, seeded robustness check (issue 18).

Tiny fixtures are generated under a temporary folder (nothing is downloaded, no network): broken WAVs (truncated,
NaN samples, 0 samples, all zeros, a 1 Hz sample rate, a text file holding a fake secret, a FIFO, a folder),
manifests naming them, checkpoints that are empty, truncated, random, of another model or naming a module outside
kwslab, a malformed ARPA file, a read-only folder, existing ``--out`` files, and bad flag and config values. Each case
runs ``python -m kwslab.<command>`` as a subprocess with a timeout, in its own working directory. Printed per case:
the command, exit status, the one-line message (or ``TRACEBACK`` and its last line) and the fixture files changed
(a snapshot before and after: ``-`` lost, ``~`` modified, ``+`` new, ``!`` half-written).

A case is a problem (exit status 1) when it printed a traceback, lost or changed a fixture file it had no business
changing, left a half-written file, echoed the fake secret, ran past its timeout, or accepted (exit 0) an input it
must refuse. Example::

    python scripts/fuzz_inputs.py                 # every case (about 3 minutes on 2 cores)
    python scripts/fuzz_inputs.py --only predict  # the cases whose name contains "predict"

Read-only folders do not stop root: as root those cases check only that nothing was written beside the checkpoint.
"""
# no `from __future__ import annotations`: the dataclasses below must work when loaded outside sys.modules

import argparse
import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SR = 16000
FEATURES = {"sample_rate": SR, "n_mfcc": 13, "num_frames": 51, "cmvn": True}
LABELS = ["_silence_", "_unknown_", "high", "low"]


@dataclass
class Case:
    """One bad input: ``argv`` after ``python -m``; ``expect`` "fail" (must exit non-zero) or "any"; ``may_change``:
    fixture paths (relative) the command is meant to write; ``timeout`` in seconds."""

    name: str
    argv: list[str]
    expect: str = "fail"
    may_change: tuple[str, ...] = ()
    timeout: float = 90.0
    forbid_new: bool = False  # any new file among the fixtures is a problem (e.g. a PNG beside the checkpoint)
    echoes: str = ""  # why printing the file's contents is this command's job (the secret check is skipped)


@dataclass
class Row:
    case: str
    command: str
    code: int | None
    message: str
    files: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- fixtures ------------------------------------------------------------------------------------------------------
def _noise(rng: np.random.Generator, seconds: float, level: float = 0.1) -> np.ndarray:
    return (level * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def _tone(rng: np.random.Generator, freq: float) -> np.ndarray:
    t = np.arange(SR // 2) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _checkpoints(fx: Path, seed: int) -> None:
    import torch

    from kwslab.models import CTCRecognizer, KeywordClassifier
    from kwslab.text import CharVocab

    torch.manual_seed(seed)
    hp = {"num_outputs": 4, "labels": LABELS, "feature_config": FEATURES,
          "net": {"class_path": "kwslab.nets.KeywordCNN", "init_args": {"channels": [8, 8], "hidden": 8}}}
    kw = {"state_dict": KeywordClassifier(**hp).state_dict(),
          "hyper_parameters": {"_class_path": "kwslab.models.KeywordClassifier", **hp}}
    for name in ("kw.ckpt", "existing.ckpt", "readonly/kw.ckpt"):
        torch.save(kw, fx / name)
    vocab = CharVocab()
    chp = {"num_outputs": len(vocab), "labels": list(vocab.tokens), "feature_config": {"sample_rate": SR, "n_mfcc": 13},
           "conv_channels": [8], "rnn_hidden": 8, "rnn_layers": 1}
    torch.save({"state_dict": CTCRecognizer(**chp).state_dict(),
                "hyper_parameters": {"_class_path": "kwslab.models.CTCRecognizer", **chp}}, fx / "ctc.ckpt")
    torch.save({**kw, "hyper_parameters": {**kw["hyper_parameters"], "_class_path": "fuzz_evil.Model"}},
               fx / "evil_class.ckpt")
    torch.save({**kw, "hyper_parameters": {**kw["hyper_parameters"],
                                           "net": {"class_path": "fuzz_evil.Net", "init_args": {}}}},
               fx / "evil_net.ckpt")
    good = (fx / "kw.ckpt").read_bytes()
    (fx / "empty.ckpt").write_bytes(b"")
    (fx / "truncated.ckpt").write_bytes(good[: len(good) // 2])
    (fx / "random.ckpt").write_bytes(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def build_fixtures(root: Path, seed: int = 0) -> dict[str, object]:
    """Write every fixture under ``root/fx``; returns ``{"fx", "secret"}``."""
    from kwslab.audio import wav_bytes, write_wav
    from kwslab.data.manifest import write_manifest

    rng = np.random.default_rng(seed)
    fx = root / "fx"
    for sub in ("wav", "readonly", "data/wav", "mod", "out", "ckptdir"):
        (fx / sub).mkdir(parents=True, exist_ok=True)
    secret = f"sk-fuzz-{rng.integers(1 << 62):x}"
    write_wav(fx / "wav/good.wav", _noise(rng, 0.5), SR)
    write_wav(fx / "wav/long.wav", _noise(rng, 60.0, 0.05), SR)
    write_wav(fx / "wav/empty.wav", np.zeros(0, np.float32), SR)
    write_wav(fx / "wav/zeros.wav", np.zeros(SR // 2, np.float32), SR)
    data = bytearray(wav_bytes(_noise(rng, 0.5), SR, float_format=True))
    start = data.find(b"data") + 8
    data[start + 400:start + 800] = np.full(100, np.nan, np.float32).tobytes()
    (fx / "wav/nan.wav").write_bytes(bytes(data))
    one_hz = bytearray(wav_bytes(_noise(rng, 2.0), SR))  # 64 KB of 16-bit PCM declaring 1 sample per second
    one_hz[24:28], one_hz[28:32] = (1).to_bytes(4, "little"), (2).to_bytes(4, "little")
    (fx / "wav/1hz.wav").write_bytes(bytes(one_hz))
    (fx / "wav/truncated.wav").write_bytes(wav_bytes(_noise(rng, 0.5), SR)[:30])
    (fx / "wav/dotenv.wav").write_text(f"OPENAI_API_KEY={secret}\nDEBUG=1\n")
    (fx / "wav/folder.wav").mkdir(exist_ok=True)
    os.mkfifo(fx / "wav/fifo.wav")
    (fx / "wav/fifo.wav").chmod(0o644)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        rows = []
        for label, freq in (("high", 3000.0), ("low", 300.0)):
            for i in range(n):
                path = fx / f"data/wav/{split}_{label}{i}.wav"
                write_wav(path, _tone(rng, freq), SR)
                rows.append({"filename": str(path), "keyword": label, "speaker": f"s{i % 2}"})
        write_manifest(fx / f"data/{split}.csv", rows)
    good_rows = [{"filename": str(fx / "wav/good.wav"), "keyword": "high"}]
    for name, bad in (("nan", "nan.wav"), ("zeros", "zeros.wav"), ("secret", "dotenv.wav"), ("empty", "empty.wav")):
        write_manifest(fx / f"{name}.csv", good_rows + [{"filename": str(fx / "wav" / bad), "keyword": "low"}])
    (fx / "broken.csv").write_text(f"filename,keyword\n{fx / 'wav/good.wav'},high,extra\nmissing.wav,low\n"
                                   f"{fx / 'wav/good.wav'},low\n")
    write_manifest(fx / "data/ctc.csv", [{"filename": str(p), "transcript": p.stem.split("_")[1].rstrip("0123")}
                                         for p in sorted((fx / "data/wav").glob("test_*"))])
    write_manifest(fx / "data/nan_train.csv", [{"filename": str(fx / "wav/nan.wav"), "keyword": "high"}] * 1
                   + [{"filename": str(p), "keyword": "low"} for p in sorted((fx / "data/wav").glob("train_low*"))])
    (fx / "bad.arpa").write_text(f"\\data\\\nngram 1=1\n\n\\1-grams:\nOPENAI_API_KEY={secret} a b c\n\\end\\\n")
    (fx / "streams.json").write_text(json.dumps({"streams": []}))
    (fx / "mod/fuzz_evil.py").write_text(f"open({str(root / 'IMPORTED')!r}, 'w').close()\n")
    _checkpoints(fx, seed)
    (fx / "existing.onnx").write_bytes(b"someone else's model")
    import yaml

    config = {"seed_everything": seed, "trainer": {
        "max_epochs": 1, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
        "enable_model_summary": False, "logger": False, "default_root_dir": str(root / "fitruns"),
        "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                       "init_args": {"dirpath": str(root / "fitruns/ckpt")}}]},
        "model": {"class_path": "kwslab.models.KeywordClassifier",
                  "init_args": {"net": {"class_path": "kwslab.nets.KeywordCNN",
                                        "init_args": {"channels": [8, 8], "hidden": 8}}}},
        "data": {"class_path": "kwslab.data.datamodules.KeywordDataModule",
                 "init_args": {"train_manifest": str(fx / "data/train.csv"), "val_manifest": str(fx / "data/val.csv"),
                               "test_manifest": str(fx / "data/test.csv"), "batch_size": 4, "features": FEATURES}}}
    (fx / "fit.yaml").write_text(yaml.safe_dump(config))
    (fx / "readonly").chmod(0o555)
    return {"fx": fx, "secret": secret}


# -- cases -----------------------------------------------------------------------------------------------------------
def cases(fx: Path) -> list[Case]:
    """Every case, named ``<command>-<what>``; paths are absolute under ``fx``."""
    f = lambda rel: str(fx / rel)  # noqa: E731
    kw, wav = f("kw.ckpt"), f("wav/good.wav")
    fit = ["kwslab.fit", "--config", f("fit.yaml")]
    out: list[Case] = []
    for bad in ("empty", "truncated", "random"):
        out.append(Case(f"predict-{bad}-ckpt", ["kwslab.predict", "--ckpt", f(f"{bad}.ckpt"), wav]))
    for name in ("truncated", "nan", "empty", "zeros", "1hz", "dotenv", "folder", "fifo"):
        out.append(Case(f"predict-{name}-wav", ["kwslab.predict", "--ckpt", kw, f(f"wav/{name}.wav")], timeout=60))
    out += [
        Case("predict-long-file", ["kwslab.predict", "--ckpt", kw, f("wav/long.wav")], expect="any"),
        Case("predict-top-k-negative", ["kwslab.predict", "--ckpt", kw, wav, "--top-k", "-1"]),
        Case("predict-hotword-weight", ["kwslab.predict", "--ckpt", f("ctc.ckpt"), wav, "--hotwords", "w:abc"]),
        Case("predict-beam-negative", ["kwslab.predict", "--ckpt", f("ctc.ckpt"), wav, "--beam-width", "-3"]),
        Case("predict-alpha-nan", ["kwslab.predict", "--ckpt", f("ctc.ckpt"), wav, "--alpha", "nan"]),
        Case("predict-bad-arpa", ["kwslab.predict", "--ckpt", f("ctc.ckpt"), wav, "--lm", f("bad.arpa")]),
        Case("predict-evil-class", ["kwslab.predict", "--ckpt", f("evil_class.ckpt"), wav]),
        Case("predict-evil-net", ["kwslab.predict", "--ckpt", f("evil_net.ckpt"), wav]),
        Case("predict-ckpt-is-folder", ["kwslab.predict", "--ckpt", f("ckptdir"), wav]),
        Case("evaluate-batch-size-0", ["kwslab.evaluate", "--ckpt", kw, "--manifest", f("data/test.csv"),
                                       "--batch-size", "0"]),
        Case("evaluate-readonly-ckpt-dir", ["kwslab.evaluate", "--ckpt", f("readonly/kw.ckpt"), "--manifest",
                                            f("data/test.csv")], expect="any", forbid_new=True),
        Case("evaluate-png-unwritable", ["kwslab.evaluate", "--ckpt", kw, "--manifest", f("data/test.csv"),
                                         "--png", f("wav/good.wav/cm.png")], expect="any"),
        Case("evaluate-nan-clip", ["kwslab.evaluate", "--ckpt", kw, "--manifest", f("nan.csv")]),
        Case("evaluate-zeros-clip", ["kwslab.evaluate", "--ckpt", kw, "--manifest", f("zeros.csv")]),
        Case("evaluate-empty-clip", ["kwslab.evaluate", "--ckpt", kw, "--manifest", f("empty.csv")]),
        Case("evaluate-secret-row", ["kwslab.evaluate", "--ckpt", kw, "--manifest", f("secret.csv")]),
        Case("evaluate-broken-manifest", ["kwslab.evaluate", "--ckpt", kw, "--manifest", f("broken.csv")]),
        Case("evaluate-out-ckpt-exists", ["kwslab.evaluate", "--ckpt", kw, "--stream-manifest", f("streams.json"),
                                          "--out-ckpt", f("existing.ckpt")]),
        Case("evaluate-ctc-bad-arpa", ["kwslab.evaluate", "--ckpt", f("ctc.ckpt"), "--manifest", f("data/ctc.csv"),
                                       "--lm", f("bad.arpa")]),
        Case("export-out-is-folder", ["kwslab.export", "--ckpt", kw, "--out", f("out")]),
        Case("export-out-exists", ["kwslab.export", "--ckpt", kw, "--out", f("existing.onnx")]),
        Case("export-random-ckpt", ["kwslab.export", "--ckpt", f("random.ckpt"), "--out", f("out/x.onnx")]),
        Case("export-evil-class", ["kwslab.export", "--ckpt", f("evil_class.ckpt"), "--out", f("out/x.onnx")]),
        Case("adapt-out-exists", ["kwslab.adapt", "--ckpt", kw, "--out", f("existing.ckpt"), f("data/wav")]),
        Case("adapt-bad-files", ["kwslab.adapt", "--ckpt", kw, "--out", f("out/adapted.ckpt"), wav,
                                 f("wav/zeros.wav"), f("wav/empty.wav"), f("wav/dotenv.wav"), f("wav/nan.wav")]),
        Case("adapt-0-byte-ckpt", ["kwslab.adapt", "--ckpt", f("empty.ckpt"), "--out", f("out/a.ckpt"), wav]),
        Case("fit-bad-value", [*fit, "--trainer.max_epochs=many"]),
        Case("fit-abbreviation", [*fit, "--trainer.max_epoch=2"]),
        Case("fit-unknown-key", [*fit, "--model.chanels=[8]"]),
        Case("fit-other-model-ckpt", [*fit, f"--ckpt_path={f('ctc.ckpt')}"]),
        Case("fit-0-byte-ckpt", [*fit, f"--ckpt_path={f('empty.ckpt')}"]),
        Case("fit-nan-clip", [*fit, f"--data.init_args.train_manifest={f('data/nan_train.csv')}", "--test=false"],
             expect="any", timeout=180),
        Case("prepare-bad-regex", ["kwslab.prepare", "folder", "--root", f("data"), "--out", f("out/prep"),
                                   "--speaker-regex", "(["]),
        Case("prepare-missing-root", ["kwslab.prepare", "folder", "--root", f("nowhere"), "--out", f("out/p2")]),
        Case("prepare-broken-wavs", ["kwslab.prepare", "folder", "--root", f("wav"), "--out", f("out/p3")],
             expect="any", timeout=60),
        Case("inspect-secret", ["kwslab.inspect", f("wav/dotenv.wav")]),
        Case("inspect-fifo", ["kwslab.inspect", f("wav/fifo.wav")], timeout=30),
        Case("inspect-folder", ["kwslab.inspect", f("wav/folder.wav")]),
        Case("inspect-1hz", ["kwslab.inspect", f("wav/1hz.wav")], expect="any"),
        Case("tts-bad-per-voice", ["kwslab.tts", "--backend", "espeak", "--keywords", "yes", "--per-voice", "-1",
                                   "--out", f("out/tts"), "--dry-run"]),
        Case("tts-secret-transcripts", ["kwslab.tts", "--backend", "espeak", "--transcripts", f("wav/dotenv.wav"),
                                        "--out", f("out/tts2"), "--dry-run"], expect="any",
             echoes="--transcripts lines are the texts to speak; --dry-run prints the plan"),
        Case("tts-bad-rate", ["kwslab.tts", "--backend", "espeak", "--keywords", "yes", "--rate", "fast", "slow",
                              "--out", f("out/tts3"), "--dry-run"]),
    ]
    return out


# -- running ---------------------------------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, tuple]:
    """Relative path -> (kind, size, mode, digest) of everything under ``folder`` (FIFOs are never opened)."""
    state = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(folder))
        if stat.S_ISREG(st.st_mode):
            state[rel] = ("file", st.st_size, stat.S_IMODE(st.st_mode), hashlib.sha1(path.read_bytes()).hexdigest())
        else:
            state[rel] = ("dir" if stat.S_ISDIR(st.st_mode) else "other", 0, stat.S_IMODE(st.st_mode), "")
    return state


def compare(before: dict, after: dict, allowed: tuple[str, ...]) -> tuple[str, list[str]]:
    """``"-lost ~changed +new !half"`` and the problems (lost or changed fixtures, half-written files)."""
    lost = [p for p in before if p not in after]
    changed = [p for p in before if p in after and after[p] != before[p]]
    new = [p for p in after if p not in before]
    half = [p for p in new if ".tmp" in Path(p).name or (after[p][0] == "file" and after[p][1] == 0)]
    problems = [f"lost {p}" for p in lost if p not in allowed]
    problems += [f"changed {p}" for p in changed if p not in allowed]
    problems += [f"half-written {p}" for p in half]
    parts = [f"-{p}" for p in lost] + [f"~{p}" for p in changed] + [f"!{p}" for p in half]
    parts += [f"+{len(new) - len(half)} new"] if len(new) > len(half) else []
    return (" ".join(parts) or "-"), problems


def one_line(code: int | None, stdout: str, stderr: str) -> str:
    """The message a user reads: the traceback's last line, else the first error line, else the last line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in stderr:
        return "TRACEBACK " + (lines[-1] if lines else "")
    for line in lines:
        if line.startswith("error:") or ": error:" in line:
            return line
    out = [line for line in stdout.splitlines() if line.strip()]
    return (lines or out or [""])[-1]


def run_case(case: Case, fx: Path, work: Path, secret: str, env: dict[str, str]) -> Row:
    """Run one case as a subprocess in ``work`` and judge it."""
    argv = case.argv if case.argv[0] == sys.executable else [sys.executable, "-m", *case.argv]
    before = snapshot(fx)
    work.mkdir(parents=True, exist_ok=True)
    problems = []
    try:
        proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=case.timeout,
                              stdin=subprocess.DEVNULL, check=False)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, stdout, stderr = None, str(exc.stdout or ""), str(exc.stderr or "")
        problems.append(f"timeout after {case.timeout:g} s")
    after = snapshot(fx)
    files, file_problems = compare(before, after, case.may_change)
    problems += file_problems
    if case.forbid_new:
        problems += [f"wrote {p}" for p in after if p not in before and p not in case.may_change]
    message = one_line(code, stdout, stderr)
    if message.startswith("TRACEBACK"):
        problems.append("traceback")
    notes = []
    if secret and (secret in stdout or secret in stderr):
        if case.echoes:
            notes.append(f"secret printed by design ({case.echoes})")
        else:
            problems.append("secret echoed")
    if case.expect == "fail" and code == 0:
        problems.append("accepted a bad input (exit 0)")
    command = argv[2].removeprefix("kwslab.") if argv[1:2] == ["-m"] else Path(argv[0]).name
    message = message.replace(secret, "<SECRET>") if secret else message
    return Row(case.name, command, code, message, files, problems, notes)


def format_table(rows: list[Row], width: int = 100) -> str:
    head = f"{'case':<28} {'command':<9} {'exit':>4}  {'files changed':<18} message"
    lines = [head, "-" * len(head)]
    for r in rows:
        code = "T/O" if r.code is None else str(r.code)
        mark = "  <-- " + "; ".join(r.problems) if r.problems else ""
        mark += "  (note: " + "; ".join(r.notes) + ")" if r.notes else ""
        lines.append(f"{r.case:<28} {r.command:<9} {code:>4}  {r.files[:18]:<18} {r.message[:width]}{mark}")
    bad = [r for r in rows if r.problems]
    kinds = {}
    for r in bad:
        for p in r.problems:
            key = p.split(" ")[0] if not p.startswith("accepted") else "accepted"
            kinds[key] = kinds.get(key, 0) + 1
    lines.append(f"\n{len(rows)} cases: {len(rows) - len(bad)} ok, {len(bad)} with problems"
                 + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")" if kinds else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="run the cases whose name contains any TEXT")
    parser.add_argument("--seed", type=int, default=0, help="seed of every generated fixture (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="kwslab-fuzz-"))
    try:
        made = build_fixtures(root, args.seed)
        fx, secret = made["fx"], made["secret"]
        chosen = [c for c in cases(fx) if not args.only or any(t in c.name for t in args.only)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(fx / "mod")]), "WANDB_MODE": "offline",
               "OMP_NUM_THREADS": "1", "KWSLAB_ALLOW_CLASSES": ""}
        rows = []
        start = time.time()
        for case in chosen:
            rows.append(run_case(case, fx, root / "work" / case.name, secret, env))
            print(f"{case.name:<28} {rows[-1].code}", file=sys.stderr, flush=True)
        if (root / "IMPORTED").exists():
            rows.append(Row("(any)", "-", None, "a checkpoint made kwslab import a module outside it", "-",
                            ["imported an untrusted module"]))
        print(format_table(rows))
        print(f"{time.time() - start:.0f} s; root {'is' if os.geteuid() == 0 else 'is not'} running this (read-only "
              f"folders {'do not stop' if os.geteuid() == 0 else 'stop'} writes)")
        return 1 if any(r.problems for r in rows) else 0
    finally:
        if (root / "fx" / "readonly").exists():
            (root / "fx" / "readonly").chmod(0o755)
        if args.keep:
            print(f"fixtures kept in {root}")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
