"""``python -m kwslab.serve --onnx model.onnx [--port 8000] [--workers 2]``: a trained model as an HTTP service.

``--ckpt`` serves a checkpoint (PyTorch), ``--onnx`` a model written by ``python -m kwslab.export`` (ONNX Runtime
and NumPy only: torch is never imported). Keyword and CTC models both.

Routes: ``POST /predict[?top_k=K]`` (a WAV body or a multipart upload -> keyword, confidence, top-k; or the CTC
transcript per decoder), ``WS /stream`` (PCM blocks in, detections with times out, as they complete),
``GET /healthz``, ``GET /model``. Errors are JSON ``{"error": "..."}``: 400 bad audio, 413 too large or too long,
415 not audio, 404 unknown route, 500 an unexpected failure (one log line; the server goes on serving). One log
line per request on stderr.

Needs the ``serve`` extra: ``pip install 'kwslab[serve]'``. Classes a checkpoint names outside kwslab are
imported only with ``--allow-class CLASS_OR_PACKAGE`` (repeatable) or ``$KWSLAB_ALLOW_CLASSES``.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys

from kwslab.decoding.lm import ArpaError
from kwslab.decoding.settings import DecoderSettingsError, add_decoder_arguments, positive_float, positive_int, \
    settings_from_args
from kwslab.inference import add_model_arguments
from kwslab.serving.model import Limits, load_served

NEEDS = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def logging_config(level: str) -> dict:
    """One line per request from ``kwslab.serve`` and uvicorn's start/stop lines; uvicorn's access log is off."""
    fmt = {"format": "%(asctime)s [%(process)d] %(message)s", "datefmt": "%H:%M:%S"}
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False, "formatters": {"plain": fmt},
            "handlers": {"stderr": handler},
            "loggers": {"kwslab.serve": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
                        "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
                        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")
    parser.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="server processes, each with its own copy of the model (default 1; one per core)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="threads per model call (default 1: requests run in parallel instead)")
    default = Limits()
    parser.add_argument("--max-bytes", type=positive_int, default=default.max_bytes,
                        help=f"largest request body, and largest stream message (default {default.max_bytes})")
    parser.add_argument("--max-seconds", type=positive_float, default=default.max_seconds,
                        help=f"longest clip on /predict, in seconds (default {default.max_seconds:g})")
    parser.add_argument("--max-stream-seconds", type=positive_float, default=default.max_stream_seconds,
                        help=f"most audio on one /stream connection (default {default.max_stream_seconds:g})")
    parser.add_argument("--allow-class", action="append", default=[], metavar="CLASS_OR_PACKAGE",
                        help="also import this class (or this package's classes) when the checkpoint names it; "
                             "kwslab imports only its own classes otherwise (repeatable; $KWSLAB_ALLOW_CLASSES too)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="info: one line per request (default); warning: errors only; debug: also the "
                             "traceback of an unexpected error")
    add_decoder_arguments(parser)
    args = parser.parse_args(argv)
    if args.allow_class and not args.ckpt:
        parser.error("--allow-class applies to --ckpt (an ONNX file names no class)")
    missing = [pip for module, pip in NEEDS.items() if importlib.util.find_spec(module) is None]
    if missing:
        print(f"error: the HTTP service needs {', '.join(missing)}; install them with: pip install 'kwslab[serve]'",
              file=sys.stderr)
        return 2
    limits = Limits(args.max_bytes, args.max_seconds, args.max_stream_seconds)
    settings = settings_from_args(args)
    try:  # loaded here once, so a bad file is one line before any worker starts
        model = _load(args, settings)
    except _errors() as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2

    import uvicorn

    from kwslab.serving.app import CONFIG_ENV, create_app

    print(f"serving the {model.kind} model {model.source} ({model.format}) on http://{args.host}:{args.port} with "
          f"{args.workers} worker(s); POST /predict, WS /stream, GET /model, GET /healthz", file=sys.stderr, flush=True)
    slots = max(1, (os.cpu_count() or 1) // args.workers)  # model calls at once per worker: the cores it may use
    common = dict(host=args.host, port=args.port, log_config=logging_config(args.log_level), access_log=False,
                  server_header=False)
    if args.workers == 1:
        uvicorn.run(create_app(model, limits, slots), **common)
        return 0
    del model  # each worker loads its own copy from the settings below
    os.environ[CONFIG_ENV] = json.dumps({
        "ckpt": args.ckpt, "onnx": args.onnx, "threads": args.threads, "allow_class": args.allow_class,
        "decoder": dataclasses.asdict(settings), "limits": dataclasses.asdict(limits), "slots": slots})
    uvicorn.run("kwslab.serving.app:app_from_env", factory=True, workers=args.workers, **common)
    return 0


def _errors() -> tuple[type[Exception], ...]:
    """The errors of loading a model or its decoder settings (CheckpointError only once torch is in use)."""
    from kwslab.inference.onnx import OnnxModelError

    checkpoint = sys.modules.get("kwslab.checkpoint")
    return (OnnxModelError, ArpaError, DecoderSettingsError) + ((checkpoint.CheckpointError,) if checkpoint else ())


def _load(args: argparse.Namespace, settings):
    if args.onnx:
        return load_served(onnx=args.onnx, settings=settings, threads=args.threads)
    from kwslab.models.base import allowed_classes

    with allowed_classes(args.allow_class):
        return load_served(ckpt=args.ckpt, settings=settings, threads=args.threads)


if __name__ == "__main__":
    sys.exit(main())
