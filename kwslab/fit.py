"""``python -m kwslab.fit --config configs/cnn.yaml``: train, then test the best checkpoint.

Built on LightningCLI with no subcommand. Models and datamodules are picked by ``class_path``, so any
LightningModule whose ``__init__`` takes ``num_outputs``, ``labels`` and ``feature_config`` trains with no
registration; the datamodule's values are linked into them. Extra top-level options:

- ``--ckpt_path last|PATH``: resume (optimizer, scheduler, loops, and the same W&B run).
- ``--test false``: skip the final test.
- ``--print_config``: print a complete, resolved config to start from.
"""
from __future__ import annotations

import os
import sys

# OpenMP threads that spin while waiting make CPU training 10-50x slower as soon as another process shares the
# cores (measured here: a BiGRU step took 20 s instead of 0.4 s). Sleep instead; set the variable to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path
from typing import Any, Optional

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from kwslab.callbacks import ConfusionMatrixCallback, WandbRunIdCallback
from kwslab.checkpoint import CheckpointError, load_checkpoint
from kwslab.inference.loaded import model_kind
from kwslab.metrics import format_report


def _feature_dict(feature_config: Any) -> dict[str, Any]:
    return feature_config.to_dict() if hasattr(feature_config, "to_dict") else dict(feature_config)


class KwsCLI(LightningCLI):
    """LightningCLI with kwslab's links, resume handling and end-of-run summary."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help="Resume from this checkpoint; 'last' picks the newest last.ckpt of the run.")
        parser.add_argument("--test", type=bool, default=True, help="Test the best checkpoint after fitting.")
        parser.link_arguments("data.num_outputs", "model.init_args.num_outputs", apply_on="instantiate")
        parser.link_arguments("data.labels", "model.init_args.labels", apply_on="instantiate")
        parser.link_arguments("data.feature_config", "model.init_args.feature_config", compute_fn=_feature_dict,
                              apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Resolve ``--ckpt_path last`` and point the W&B logger at the run stored in that checkpoint."""
        ckpt = self.config.get("ckpt_path")
        if not ckpt:
            return
        path = resolve_ckpt_path(ckpt, self.config.get("trainer", {}))
        self.config["ckpt_path"] = str(path)
        try:
            run_id = load_checkpoint(path).get("wandb_run_id")
        except CheckpointError as exc:
            sys.exit(f"error: --ckpt_path: {exc}")
        logger = self.config["trainer"].get("logger")
        if run_id and logger is not None and "Wandb" in str(getattr(logger, "class_path", "")):
            logger.init_args["id"] = run_id


def resolve_ckpt_path(ckpt: str, trainer_config: Any) -> Path:
    """``last`` -> the newest ``last*.ckpt`` in the configured ModelCheckpoint folders; else the path itself."""
    if ckpt != "last":
        path = Path(ckpt)
        if not path.is_file():
            sys.exit(f"error: --ckpt_path {ckpt}: no such checkpoint file")
        return path
    dirs = []
    for cb in trainer_config.get("callbacks") or []:
        if "ModelCheckpoint" in str(getattr(cb, "class_path", "")) and cb.init_args.get("dirpath"):
            dirs.append(Path(cb.init_args["dirpath"]))
    candidates = [p for d in dirs for p in d.glob("last*.ckpt")]
    if not candidates:
        where = ", ".join(map(str, dirs)) or "(no ModelCheckpoint dirpath configured)"
        sys.exit(f"error: --ckpt_path last: no last.ckpt in {where}; train once first")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def print_summary(trainer: L.Trainer) -> None:
    """Test metrics, per-class precision/recall, and where the checkpoint is."""
    best = next((cb.best_model_path for cb in trainer.callbacks
                 if isinstance(cb, ModelCheckpoint) and cb.best_model_path), "")
    print("\n" + "=" * 72)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    if metrics:
        print("Test metrics: " + ", ".join(f"{k.removeprefix('test/')} {v:.4f}" for k, v in sorted(metrics.items())))
    for cb in trainer.callbacks:
        if isinstance(cb, ConfusionMatrixCallback) and "test" in cb.results:
            print("Test set:\n" + format_report(cb.results["test"]["report"]))
            print(f"Confusion matrix: {cb.results['test']['png']}")
    if best:
        print(f"Best checkpoint: {best}")
        print(f"Predict:  python -m kwslab.predict --ckpt {best} FILE.wav ...")
        print(f"Evaluate: python -m kwslab.evaluate --ckpt {best} --manifest MANIFEST.csv")
        if model_kind(trainer.lightning_module) == "keyword":  # keyword models: BatchNorm statistics
            print(f"Adapt to a new voice or microphone (unlabelled clips): python -m kwslab.adapt --ckpt {best} "
                  "--out adapted.ckpt FOLDER")
        else:  # CTC models: self-training on their own beam (+ LM) transcripts
            print(f"Adapt to a new speaker (unlabelled recordings, self-training): python -m kwslab.adapt --ckpt "
                  f"{best} --out adapted.ckpt FOLDER [--lm LM.arpa]")
    print("=" * 72)


def main(args: list[str] | None = None) -> KwsCLI:
    """Parse the config, fit, then test the best checkpoint and print a summary."""
    cli = KwsCLI(
        model_class=L.LightningModule,
        datamodule_class=L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [WandbRunIdCallback()]},
        args=args,
    )
    ckpt = cli.config.get("ckpt_path")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
    if cli.config.get("test") and not cli.trainer.interrupted:
        has_best = any(isinstance(cb, ModelCheckpoint) and cb.best_model_path for cb in cli.trainer.callbacks)
        cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best" if has_best else None)
        if cli.trainer.is_global_zero:
            print_summary(cli.trainer)
    return cli


if __name__ == "__main__":
    main()
