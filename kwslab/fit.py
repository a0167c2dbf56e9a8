"""``python -m kwslab.fit --config configs/cnn.yaml``: train, then test the best checkpoint.

Built on LightningCLI with no subcommand. Models and datamodules are picked by ``class_path``, so any
LightningModule whose ``__init__`` takes ``num_outputs``, ``labels`` and ``feature_config`` trains with no
registration; the datamodule's values are linked into them. Extra top-level options:

- ``--ckpt_path last|PATH``: resume (optimizer, scheduler, loops, and the same W&B run).
- ``--test false``: skip the final test.
- ``--print_config``: print a complete, resolved config to start from.

A config whose datamodule reads manifests that do not exist (and that does not build them itself, as the synthetic
datamodules of ``configs/cnn.yaml`` and ``configs/ctc.yaml`` do) stops before anything is built, with one line naming
the missing manifest and the commands in the config's header comment that make it
(:func:`kwslab.recipes.missing_data_message`).

Progress: bars when stdout is a terminal; otherwise (a log file, CI, ``| tee``) no bar and one line per epoch with
the metrics (:class:`kwslab.callbacks.EpochLines`). ``trainer.enable_progress_bar`` in a config decides explicitly.

Options are never abbreviated (``--trainer.max_epoch`` is refused, not taken for ``--trainer.max_epochs``), and a bad
option or value is one line naming the key and the reason. The classes the config names are trusted for the run (a
checkpoint read later names classes only through :func:`kwslab.models.base.resolve_class`, which imports nothing
outside kwslab unless allowed).
"""
from __future__ import annotations

import contextlib
import os
import re
import sys

# OpenMP threads that spin while waiting make CPU training 10-50x slower as soon as another process shares the
# cores (measured here: a BiGRU step took 20 s instead of 0.4 s). Sleep instead; set the variable to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path
from typing import Any, Optional

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from kwslab.callbacks import (CheckpointFolderInUse, CheckpointFolderLock, ConfusionMatrixCallback, EpochLines,
                              WandbRunIdCallback)
from kwslab.audio import WavError
from kwslab.checkpoint import CheckpointError, load_checkpoint
from kwslab.data.manifest import ManifestError
from kwslab.inference.loaded import model_kind
from kwslab.metrics import format_report
from kwslab.models.base import allowed_classes
from kwslab.recipes import missing_data_message

# lines of jsonargparse's error messages that say nothing about what is wrong
_NOISE = ("Does not validate against any of the Union subtypes", "Subtypes:", "Errors:", "Given value",
          "Expected a <class 'NoneType'>", "Problem with given class_path")


def _fail(message: str) -> None:
    """One line on stderr and exit status 2 (printed here, so callers of main() in-process see it too)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def short_parser_error(message: str) -> str:
    """One line from a jsonargparse error (8-40 lines of nested Union attempts): the key path, the class it was
    for, and the reasons, e.g. ``trainer.max_epochs: Expected a <class 'int'> (given: many)``."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    keys = [m.group(1) for line in lines if (m := re.match(r'Parser key "([^"]+)":', line))]
    classes = re.findall(r"Problem with given class_path '([^']+)'", str(message))
    reasons = []
    for line in lines:
        if line.startswith("Parser key") or any(n in line for n in _NOISE):
            continue
        reason = re.sub(r"\s*Got value: .*$", "", line.lstrip("- ").strip())
        if reason and reason not in reasons:
            reasons.append(reason)
    if len(reasons) > 1:  # "Expected a path but X ..." is jsonargparse trying the value as a config file
        reasons = [r for r in reasons if not r.startswith("Expected a path but")] or reasons
    given = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), "")
    where = ".".join(keys)
    where += f" ({classes[-1]})" if classes else ""
    text = "; ".join(reasons[:3]) or lines[0] if lines else str(message)
    if given and len(given) <= 60 and not given.startswith(("Namespace(", "NestedArg(")):
        text += f" (given: {given})"
    return f"{where}: {text}" if where else text


def _class_paths(node: Any) -> set[str]:
    """Every ``class_path`` string in a parsed config (Namespaces, dicts, lists), and the classes' own module paths
    (a class named ``pkg.Net`` may live in ``pkg._net``): what the user's config trusts."""
    found: set[str] = set()
    if hasattr(node, "__dict__") and type(node).__name__ == "Namespace":
        node = vars(node)
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "class_path" and isinstance(value, str):
                found.add(value)
                module, _, name = value.rpartition(".")
                cls = getattr(sys.modules.get(module), name, None)  # already imported by the parser: no import here
                if isinstance(cls, type):
                    found.add(f"{cls.__module__}.{cls.__qualname__}")
            else:
                found |= _class_paths(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found |= _class_paths(value)
    return found


def _feature_dict(feature_config: Any) -> dict[str, Any]:
    return feature_config.to_dict() if hasattr(feature_config, "to_dict") else dict(feature_config)


class KwsCLI(LightningCLI):
    """LightningCLI with kwslab's links, resume handling, one-line parser errors and end-of-run summary."""

    trust: contextlib.ExitStack  # the config's class paths, allowed until main() returns
    resume_checkpoint: dict | None = None

    def __deepcopy__(self, memo: dict) -> "KwsCLI":
        """The CLI itself, never a copy. LightningCLI's factories (the optimizer and scheduler partials) hold the
        CLI, so deep-copying a model (the EMA callback does) reached it: the trainer, the resume checkpoint and the
        trust stack (whose generator cannot be copied). There is one CLI per run; the copy shares it."""
        return self

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """The parser, raising instead of printing 50 lines of usage and nested errors (see parse_arguments)."""
        parser = super().init_parser(**{**kwargs, "exit_on_error": False, "allow_abbrev": False})
        return parser

    def instantiate_classes(self) -> None:
        """Build the model, data and trainer; a value their ``__init__`` refuses (a ValueError, wrapped by
        jsonargparse in its Union attempts) is one line, not two chained tracebacks."""
        try:
            super().instantiate_classes()
        except ValueError as exc:  # jsonargparse wraps it in a ValueError listing its Union attempts
            self.trust.close()  # the run never starts: the config's classes are trusted no longer
            message = f"config: {short_parser_error(str(exc))}"
            if "num_classes" in message:  # torchmetrics' words; the classes come from the data
                data = self.config.get("data") or {}
                manifest = (data.get("init_args") or {}).get("train_manifest")
                message += (f" (the model's classes are data.init_args.labels, else the keywords of "
                            f"data.init_args.train_manifest {manifest}: it needs two or more)")
            _fail(message)
        except BaseException:
            self.trust.close()
            raise

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        from jsonargparse import ArgumentError

        try:
            super().parse_arguments(parser, args)
        except ArgumentError as exc:
            _fail(f"{short_parser_error(str(exc))} (python -m kwslab.fit --help lists the options)")

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help="Resume from this checkpoint; 'last' picks the newest last.ckpt of the run.")
        parser.add_argument("--test", type=bool, default=True, help="Test the best checkpoint after fitting.")
        parser.link_arguments("data.num_outputs", "model.init_args.num_outputs", apply_on="instantiate")
        parser.link_arguments("data.labels", "model.init_args.labels", apply_on="instantiate")
        parser.link_arguments("data.feature_config", "model.init_args.feature_config", compute_fn=_feature_dict,
                              apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Trust the config's class paths; resolve ``--ckpt_path last`` and point the W&B logger at the run stored in
        that checkpoint."""
        self.trust = contextlib.ExitStack()
        configs = [os.fspath(getattr(c, "relative", c)) for c in (self.config.get("config") or [])]
        missing = missing_data_message(self.config.get("data"), configs, test=bool(self.config.get("test")))
        if missing:
            _fail(missing)
        ckpt = self.config.get("ckpt_path")
        if ckpt:
            self._resume(ckpt)
        self.trust.enter_context(allowed_classes(sorted(_class_paths(self.config))))

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """The trainer; with ``trainer.enable_progress_bar`` unset, a bar only when stdout is a terminal (a log
        file gets :class:`~kwslab.callbacks.EpochLines`' one line per epoch instead of megabytes of redraws)."""
        if self._get(self.config_init, "trainer", default={}).get("enable_progress_bar") is None:
            kwargs.setdefault("enable_progress_bar", sys.stdout.isatty())
        return super().instantiate_trainer(**kwargs)

    def _resume(self, ckpt: str) -> None:
        """Resolve ``--ckpt_path``, read it once (exit with one line if it is not a checkpoint), keep its W&B run."""
        path = resolve_ckpt_path(ckpt, self.config.get("trainer", {}))
        self.config["ckpt_path"] = str(path)
        try:
            self.resume_checkpoint = load_checkpoint(path)
        except CheckpointError as exc:
            _fail(f"--ckpt_path: {exc}")
        run_id = self.resume_checkpoint.get("wandb_run_id")
        logger = self.config["trainer"].get("logger")
        if run_id and logger is not None and "Wandb" in str(getattr(logger, "class_path", "")):
            logger.init_args["id"] = run_id


def check_resume(ckpt: dict, path: str, model: L.LightningModule) -> None:
    """Exit with one line when the checkpoint to resume holds another model's weights (names or shapes differ from
    the model this config builds), instead of Lightning's lists of every key."""
    own = model.state_dict()
    saved = ckpt.get("state_dict") or {}
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    reshaped = [k for k in own if k in saved and tuple(getattr(saved[k], "shape", ())) != tuple(own[k].shape)]
    if not (missing or unexpected or reshaped):
        return
    what = ", ".join(f"{n} {label}" for n, label in ((len(missing), "missing"), (len(unexpected), "unexpected"),
                                                      (len(reshaped), "of another shape")) if n)
    _fail(f"--ckpt_path {path}: belongs to another model or config (its weights against the "
             f"{type(model).__name__} this config builds: {what}); resume with the config it was trained with, or "
             "start from its weights with --model.init_from")


def resolve_ckpt_path(ckpt: str, trainer_config: Any) -> Path:
    """``last`` -> the newest ``last*.ckpt`` in the configured ModelCheckpoint folders; else the path itself."""
    if ckpt != "last":
        path = Path(ckpt)
        if not path.is_file():
            _fail(f"--ckpt_path {ckpt}: no such checkpoint file")
        return path
    dirs = []
    for cb in trainer_config.get("callbacks") or []:
        if "ModelCheckpoint" in str(getattr(cb, "class_path", "")) and cb.init_args.get("dirpath"):
            dirs.append(Path(cb.init_args["dirpath"]))
    candidates = [p for d in dirs for p in d.glob("last*.ckpt")]
    if not candidates:
        where = ", ".join(map(str, dirs)) or "(no ModelCheckpoint dirpath configured)"
        _fail(f"--ckpt_path last: no last.ckpt in {where}; train once first")
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
        trainer_defaults={"callbacks": [WandbRunIdCallback(), CheckpointFolderLock(), EpochLines()]},
        args=args,
    )
    with cli.trust:
        ckpt = cli.config.get("ckpt_path")
        if ckpt and cli.resume_checkpoint is not None:
            check_resume(cli.resume_checkpoint, ckpt, cli.model)
            cli.resume_checkpoint = None  # Lightning reads the file again; do not hold the weights twice
        try:
            cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
            if cli.config.get("test") and not cli.trainer.interrupted:
                has_best = any(isinstance(cb, ModelCheckpoint) and cb.best_model_path for cb in cli.trainer.callbacks)
                cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best" if has_best else None)
                if cli.trainer.is_global_zero:
                    print_summary(cli.trainer)
        except (ManifestError, WavError) as exc:  # the data named in the config: its message lists every bad row
            _fail(str(exc))
        except CheckpointFolderInUse as exc:  # another live run writes into this run's checkpoint folder
            _fail(str(exc))
        except MisconfigurationException as exc:  # trainer settings Lightning finds incompatible once it starts
            _fail(f"the trainer settings do not fit together: {' '.join(str(exc).split())}")
    return cli


if __name__ == "__main__":
    main()
