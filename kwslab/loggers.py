"""Weights & Biases logging that is offline unless the user is logged in.

``kwslab.loggers.WandbLogger`` is Lightning's ``WandbLogger`` with two defaults changed: ``offline=None`` means
"online only when W&B credentials are configured" (``WANDB_API_KEY``, or ``wandb login`` having written the netrc
entry), so a fresh machine with no account trains without prompts or network; and runs go under ``runs/``.
An offline run is uploaded later with ``wandb sync runs/wandb/offline-run-*``.
"""
from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger


def wandb_credentials_configured() -> bool:
    """True when W&B would find an API key: ``WANDB_API_KEY`` or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_offline(offline: bool | None) -> bool:
    """Resolve ``offline=None``: ``WANDB_MODE`` wins, else offline unless credentials are configured."""
    if offline is not None:
        return offline
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "dryrun", "disabled"):
        return True
    if mode == "online":
        return False
    return not wandb_credentials_configured()


class WandbLogger(_LightningWandbLogger):
    """Lightning's WandbLogger, offline by default when no W&B credentials are configured.

    Args:
        project: W&B project. Default ``kwslab``.
        name: run name (default: W&B picks one).
        save_dir: where run files go. Default ``runs``.
        offline: True/False to force; None (default) decides from the environment (see module docstring).
        id: run id; ``kwslab.fit`` fills it from the checkpoint when resuming, so the same run continues.
        log_model: upload checkpoints as W&B artifacts (online only). Default False.
        tags: run tags.
    """

    def __init__(self, project: str = "kwslab", name: str | None = None, save_dir: str = "runs",
                 offline: bool | None = None, id: str | None = None, log_model: bool = False,
                 tags: list[str] | None = None, **kwargs: Any) -> None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        offline = wandb_offline(offline)
        super().__init__(name=name, save_dir=save_dir, offline=offline, id=id, project=project,
                         log_model=log_model and not offline, tags=tags, **kwargs)
