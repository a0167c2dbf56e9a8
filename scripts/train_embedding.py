"""Make the speech embedding shipped with kwslab, in one command: prepare the data, train ``configs/embedding.yaml``,
export the best checkpoint (by validation accuracy) as ``kwslab/pretrained/speech_embedding.ckpt``.

    python scripts/train_embedding.py                       # the shared subsets; overwrites the shipped file
    python scripts/train_embedding.py --out my_embedding.ckpt --corpus data/speech_commands_v2   # the full corpus
    python scripts/train_embedding.py --export-only runs/embedding/seed0/checkpoints/epoch41-acc0.8911.ckpt

Missing manifests are made with the prepare commands in the config's header (``--corpus`` and ``--fsdd`` replace
the shared folders in them). Training runs as ``python -m kwslab.fit`` in a subprocess with its checkpoints and a CSV
log in ``runs/embedding/seed<k>/``.

The exported file is a slim Lightning checkpoint (the network's weights and hyperparameters, no optimizer state),
loadable with ``weights_only=True`` as ``builtin:speech_embedding`` wherever a checkpoint is taken, plus a
``kwslab_pretrained`` record: the recipe, the command, the training manifests and their SHA-256, the words it was
trained on, the words kept out (``marvin``, ``sheila``, ``house``, ``wow``: checked absent from every training
manifest before anything is written) and the data's licences.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_runs import fit_in, run_prepare, write_overlay  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "embedding.yaml"
HELD_OUT = ("marvin", "sheila", "house", "wow")
SHARED = {"speech_commands": "../shared/data/speech_commands", "fsdd": "../shared/data/fsdd/recordings"}
DATA_CREDIT = ("Speech Commands (Pete Warden / Google, arXiv:1804.03209), CC BY 4.0; Free Spoken Digit Dataset "
               "(Zohar Jackson and contributors), CC BY-SA 4.0")


def manifests_of(config: Path) -> dict[str, list[str]]:
    """The config's manifests per split (lists, as written: relative to the working directory)."""
    init = yaml.safe_load(config.read_text())["data"]["init_args"]
    return {s: ([init[f"{s}_manifest"]] if isinstance(init[f"{s}_manifest"], str) else list(init[f"{s}_manifest"]))
            for s in ("train", "val", "test")}


def ensure_data(config: Path, root: Path, corpus: Path, fsdd: Path) -> None:
    """Run the header's prepare commands (in ``root``) when a manifest they make is missing."""
    from kwslab.recipes import header_recipes

    missing = [m for ms in manifests_of(config).values() for m in ms if not (root / m).is_file()]
    if not missing:
        return
    for command in [c for prepare, _ in header_recipes(config) for c in prepare]:
        run_prepare(command, root, {SHARED["speech_commands"]: str(corpus), SHARED["fsdd"]: str(fsdd)})


def train(config: Path, root: Path, run_dir: Path, seed: int, epochs: int | None, noise: Path,
          threads: int) -> Path:
    """Fit in a subprocess; return the checkpoint with the best validation accuracy."""
    import json

    overlay = write_overlay(config, run_dir, seed, epochs)
    cmd = [sys.executable, "-m", "kwslab.fit", "--config", str(config), "--config", str(overlay), "--test", "false",
           "--data.init_args.augment.background_noise.noises", json.dumps([str(noise)])]
    wall = fit_in(run_dir, cmd, root, threads, "the embedding")
    print(f"trained in {wall / 60:.1f} min", flush=True)
    ckpts = sorted((run_dir / "checkpoints").glob("epoch*-acc*.ckpt"),
                   key=lambda p: (float(p.stem.rsplit("acc", 1)[1]), p.stat().st_mtime))
    if not ckpts:
        sys.exit(f"error: no epoch*-acc*.ckpt in {run_dir / 'checkpoints'}; see {run_dir / 'fit.log'}")
    return ckpts[-1]


def manifest_digest(paths: list[Path]) -> str:
    """SHA-256 over the training manifests' bytes, in order (each preceded by its file name)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _relative(path: Path) -> str:
    """A manifest path as the config names it (relative to the repository) where it is inside it."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def export(ckpt: Path, out: Path, train_manifests: list[Path], held_out: tuple[str, ...] = HELD_OUT) -> Path:
    """Write the slim, self-describing embedding checkpoint (see the module docstring)."""
    from kwslab.checkpoint import load_checkpoint, save_checkpoint
    from kwslab.data.manifest import read_manifest

    source = load_checkpoint(ckpt)
    hp = dict(source["hyper_parameters"])
    words = [str(w) for w in hp.get("labels") or []]
    heard = {r.keyword for m in train_manifests for r in read_manifest(m, check_audio=False)}
    leaked = sorted(set(held_out) & (heard | set(words)))
    if leaked:
        sys.exit(f"error: {', '.join(leaked)} must never be heard by the embedding, but the training data has them; "
                 "prepare it with --exclude-words")
    hp.pop("init_from", None)
    hp["freeze_backbone"] = False
    record = {"name": "speech_embedding", "recipe": "configs/embedding.yaml",
              "command": "python scripts/train_embedding.py",
              "train_manifests": [_relative(m) for m in train_manifests],
              "manifest_sha256": manifest_digest(train_manifests),
              "words": words, "held_out_words": list(held_out), "data": DATA_CREDIT,
              "source_checkpoint": ckpt.name, "epoch": int(source.get("epoch", -1)),
              "created": datetime.date.today().isoformat()}
    slim = {"state_dict": {k: v for k, v in source["state_dict"].items()}, "hyper_parameters": hp,
            "kwslab_pretrained": record}
    for key in ("pytorch-lightning_version", "epoch", "global_step"):
        if key in source:
            slim[key] = source[key]
    save_checkpoint(slim, out)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.2f} MB; {len(words)} words; held out {', '.join(held_out)}; "
          f"manifests sha256 {record['manifest_sha256'][:12]}...)")
    return out


def main(argv: list[str] | None = None) -> int:
    from kwslab.checkpoint import BUILTIN

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=CONFIG, help="recipe (default configs/embedding.yaml)")
    p.add_argument("--out", type=Path, default=BUILTIN["speech_embedding"],
                   help="where to write the embedding (default: the package's kwslab/pretrained/speech_embedding.ckpt)")
    p.add_argument("--corpus", type=Path, default=Path(os.environ.get("KWSLAB_SPEECH_COMMANDS") or
                                                       REPO / SHARED["speech_commands"]),
                   help="Speech Commands folder (default: $KWSLAB_SPEECH_COMMANDS, else the shared subset)")
    p.add_argument("--fsdd", type=Path, default=Path(os.environ.get("KWSLAB_FSDD") or REPO / SHARED["fsdd"]),
                   help="FSDD recordings folder (default: $KWSLAB_FSDD, else the shared copy)")
    p.add_argument("--data-root", type=Path, default=REPO, help="folder the config's data/ paths are under")
    p.add_argument("--runs", type=Path, default=REPO / "runs" / "embedding", help="run folders")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override max_epochs (smoke runs)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the training run (default 1)")
    p.add_argument("--export-only", type=Path, metavar="CKPT", help="export this checkpoint; no training")
    a = p.parse_args(argv)
    root = a.data_root.resolve()
    train_manifests = [root / m for m in manifests_of(a.config)["train"]]
    if a.export_only:
        export(a.export_only, a.out, train_manifests)
        return 0
    ensure_data(a.config, root, a.corpus.resolve(), a.fsdd.resolve())
    best = train(a.config.resolve(), root, (a.runs / f"seed{a.seed}").resolve(), a.seed, a.epochs,
                 (a.corpus / "_background_noise_").resolve(), a.threads)
    print(f"best checkpoint: {best}")
    export(best, a.out, train_manifests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
