"""What every kwslab LightningModule shares: the default optimizer, building optimizer + scheduler from the
LightningCLI callables given in the config, and networks chosen by ``class_path`` (saved as plain data)."""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn


def default_adamw(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW(lr=3e-3, weight_decay=1e-2): the optimizer when the config names none."""
    return torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-2)


def build_optimizers(module: torch.nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                     scheduler: Callable[..., Any] | None) -> Any:
    """``configure_optimizers`` for trainable parameters: the optimizer, plus the scheduler stepped per epoch
    (ReduceLROnPlateau monitors ``val/loss``), or per optimizer step for a schedule sized as fractions of training
    (one with ``set_total_steps``, e.g. :class:`kwslab.models.schedules.WarmupCosine`), told the run's length."""
    opt = optimizer([p for p in module.parameters() if p.requires_grad])
    if scheduler is None:
        return opt
    sched = scheduler(opt)
    config = {"scheduler": sched, "interval": "epoch"}
    if callable(getattr(sched, "set_total_steps", None)):
        sched.set_total_steps(max(1, int(module.trainer.estimated_stepping_batches)))
        config["interval"] = "step"
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        config["monitor"] = "val/loss"
    return {"optimizer": opt, "lr_scheduler": config}


# -- networks chosen by class_path ------------------------------------------------------------------------------------
NetworkFactory = Callable[[int, int], nn.Module]
"""What a model's ``net`` argument is: called with ``(in_features, num_outputs)``, it returns the network. In YAML it
is a ``class_path`` (any ``nn.Module`` whose first two ``__init__`` arguments are those two) with ``init_args`` for
the rest; the data fills in the first two."""


ALLOW_ENV = "KWSLAB_ALLOW_CLASSES"
"""Environment variable: comma-separated class paths or package prefixes (``my_pkg``, ``my_pkg.nets.MyNet``) that
:func:`resolve_class` may import beside kwslab's own classes (for library use; commands take ``--allow-class``)."""
ALLOW_FLAG = "--allow-class"
_allowed: list[str] = []  # entries added by allowed_classes() (a command's --allow-class, fit's own config)


class UntrustedClassError(ValueError):
    """A class path outside kwslab that nobody allowed: it is refused before anything is imported."""


@contextlib.contextmanager
def allowed_classes(entries: Iterable[str] | None) -> Iterator[None]:
    """Within the block, :func:`resolve_class` may also import these class paths or package prefixes. Commands wrap
    their work in it with their ``--allow-class`` values; ``fit`` with the class paths of the user's own config."""
    added = [str(e).strip() for e in (entries or ()) if str(e).strip()]
    _allowed.extend(added)
    try:
        yield
    finally:
        for e in added:
            _allowed.remove(e)


def add_allow_class_argument(parser: Any) -> None:
    """The repeatable ``--allow-class`` flag of the commands that load checkpoints (pass its values to
    :func:`allowed_classes`)."""
    parser.add_argument(ALLOW_FLAG, action="append", default=[], metavar="CLASS_OR_PACKAGE",
                        help="also import this class (or the classes of this package) when a checkpoint names it; "
                             "kwslab imports only its own classes otherwise (repeatable; see also $" + ALLOW_ENV + ")")


def class_allowed(class_path: str) -> bool:
    """True for kwslab's own classes, and for a class path equal to, or inside a package named by, an entry of
    :func:`allowed_classes` or ``$KWSLAB_ALLOW_CLASSES`` (``my_pkg`` allows ``my_pkg.nets.Net``, not
    ``my_pkgx.Net``)."""
    entries = ["kwslab", *_allowed, *os.environ.get(ALLOW_ENV, "").split(",")]
    path = str(class_path)
    return any(e and (path == e or path.startswith(e.rstrip(".") + ".")) for e in (x.strip() for x in entries))


def untrusted_class_message(class_path: str, what: str) -> str:
    """Why a class path is refused and the flag that allows it (one line)."""
    name = str(class_path)[:200]
    return (f"{what} {name!r} is not a kwslab class, and kwslab imports other classes only when you allow them: "
            f"pass {ALLOW_FLAG} {name} (or set {ALLOW_ENV}={name}) if you trust this file")


def resolve_class(class_path: str, base: type, what: str) -> type:
    """Import ``package.module.Name`` and check it is a subclass of ``base``.

    Only kwslab's classes and the ones allowed (:func:`class_allowed`) are imported: a class path read from a
    checkpoint is data, and importing a module runs its code, so the check comes before ``importlib``.

    Raises:
        UntrustedClassError: naming ``what``, the class path and the flag that allows it.
        ValueError: naming ``what`` and the class path, when it cannot be imported or has the wrong type.
    """
    if not class_allowed(class_path):
        raise UntrustedClassError(untrusted_class_message(class_path, what))
    module_name, _, name = str(class_path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"{what}: {class_path!r} cannot be imported; check the name, or install the package that "
                         "defines it") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"{what}: {class_path!r} is not a {base.__module__}.{base.__qualname__}")
    return cls


def network_spec(net: NetworkFactory | Mapping[str, Any] | None, default: type[nn.Module]) -> dict[str, Any]:
    """The plain-data form of a ``net`` argument, ``{"class_path": ..., "init_args": {...}}``, as saved in the
    checkpoint (so it loads with ``weights_only=True``).

    Accepts that dict itself, an ``nn.Module`` class, ``functools.partial(cls, **init_args)`` (also what
    LightningCLI hands over for a ``class_path`` in YAML), or None for ``default`` with its own defaults.
    """
    if net is None:
        net = default
    if isinstance(net, Mapping):
        if not isinstance(net.get("class_path"), str) or not isinstance(net.get("init_args") or {}, Mapping):
            raise ValueError(f"model.net must have a class_path string and an init_args mapping; got {dict(net)!r}")
        return {"class_path": net["class_path"], "init_args": dict(net.get("init_args") or {})}
    init_args: dict[str, Any] = {}
    if isinstance(net, functools.partial):
        init_args = dict(net.keywords)
        # LightningCLI's partial wraps the class as its last positional argument
        net = next((a for a in reversed(net.args) if isinstance(a, type)), net.func)
    if not (isinstance(net, type) and issubclass(net, nn.Module)):
        raise ValueError(f"model.net must be an nn.Module class (class_path in YAML), a partial of one, or a "
                         f"{{'class_path', 'init_args'}} dict; got {net!r}")
    return {"class_path": f"{net.__module__}.{net.__qualname__}", "init_args": init_args}


def build_network(spec: Mapping[str, Any], in_features: int, num_outputs: int) -> nn.Module:
    """Instantiate a :func:`network_spec` with the data's input size and class count."""
    cls = resolve_class(spec["class_path"], nn.Module, "model.net")
    try:
        return cls(in_features, num_outputs, **spec["init_args"])
    except TypeError as exc:
        raise ValueError(f"model.net: {spec['class_path']} cannot be built with (in_features={in_features}, "
                         f"num_outputs={num_outputs}, **{spec['init_args']}): {exc}") from None
