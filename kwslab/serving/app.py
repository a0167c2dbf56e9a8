"""The HTTP service: a FastAPI app over one :class:`~kwslab.serving.model.ServedModel`.

Routes:

* ``POST /predict[?top_k=K]``: a WAV body (``audio/wav``, ``audio/x-wav``, ``audio/wave``,
  ``application/octet-stream``) or a ``multipart/form-data`` upload (the first file part). JSON back: keyword,
  confidence and top-k (keyword models) or the transcript per decoder (CTC), as ``python -m kwslab.predict --json``
  gives for one file.
* ``WS /stream[?threshold=&hop=&smooth=&refractory=&format=s16le|f32le]``: binary messages of mono little-endian
  PCM (16-bit ints by default, or float32) at the model's sample rate (``GET /model``); the server sends
  ``{"type": "ready", ...}``, then ``{"type": "detection", keyword, start, end, score}`` as each detection completes
  (times in seconds from the first sample), and after a text message ``end``, the last detections and
  ``{"type": "end", "duration", "detections"}``. Errors are ``{"type": "error", "error"}`` and a close.
* ``GET /healthz`` and ``GET /model`` (kind, labels, features, source).

Every error is JSON ``{"error": "one line"}``: 400 bad audio (the reader's message) or parameters, 404 unknown
route, 405 wrong method, 413 body or audio too long, 415 content type, 500 for an unexpected exception (the route
and the exception's type; never a traceback to the client). The server logs that exception as one line (its
traceback too at ``--log-level debug``) and goes on serving; on ``/stream`` the client gets a ``{"type": "error"}``
message and a close with code 1011. One log line per request: method, path, status, milliseconds.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
import anyio
from starlette.exceptions import HTTPException
from starlette.websockets import WebSocketDisconnect

from kwslab.serving.model import Limits, RequestError, ServedModel

__all__ = ["CONFIG_ENV", "WAV_TYPES", "app_from_env", "create_app"]

log = logging.getLogger("kwslab.serve")
WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "application/octet-stream")
PCM_FORMATS = {"s16le": ("<i2", 1 / 32768.0), "f32le": ("<f4", 1.0)}
CONFIG_ENV = "KWSLAB_SERVE_CONFIG"  # JSON settings the workers of `python -m kwslab.serve --workers N` load from


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def internal_error(where: str, exc: BaseException) -> str:
    """Log an unexpected exception in ``where`` (``"POST /predict"``) as one line, its traceback at debug level,
    and return the one-line message for the client: the route and the exception's type, not its text."""
    first = (str(exc).splitlines() or [""])[0][:300]
    log.error("%s failed: %s%s", where, type(exc).__name__, f": {first}" if first else "")
    log.debug("%s failed", where, exc_info=exc)
    return f"internal error while answering {where} ({type(exc).__name__}); the server log has the reason"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (by Content-Length or as read)."""
    declared = request.headers.get("content-length", "")
    too_big = f"request body over {limit} bytes; this server takes up to {limit} bytes (--max-bytes)"
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


async def wav_upload(request: Request, limit: int) -> tuple[bytes, str]:
    """``(WAV bytes, name)`` from a WAV body or a multipart upload; 415 for any other content type."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in WAV_TYPES and ctype != "multipart/form-data":
        raise RequestError(415, f"content type {ctype or '(none)'!r} is not audio; send the WAV file as the body "
                                "with Content-Type: audio/wav, or as multipart/form-data")
    body = await read_body(request, limit)
    if ctype != "multipart/form-data":
        return body, "upload.wav"

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form()
    except (HTTPException, ValueError, AssertionError) as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        raise RequestError(400, f"malformed multipart body ({str(detail).splitlines()[0][:200]}); upload the WAV "
                                "as a file field, e.g. curl -F file=@clip.wav") from None
    files = [v for v in form.values() if hasattr(v, "read") and hasattr(v, "filename")]
    if not files:
        raise RequestError(400, "the multipart body has no file; upload the WAV as a file field, "
                                "e.g. curl -F file=@clip.wav")
    upload = files[0]
    return await upload.read(), os.path.basename(upload.filename or "upload.wav")


def create_app(model: ServedModel, limits: Limits = Limits(), slots: int = 1) -> "LogRequests":
    """The FastAPI app serving ``model`` within ``limits`` (see the module docstring for the routes).

    ``slots``: model calls run at once in this process (in threads; the others wait in arrival order). One per
    core the process may use: more only adds GIL contention and makes the slowest requests much slower.
    """
    limiter = anyio.CapacityLimiter(slots)

    async def run(fn: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    app = FastAPI(title="kwslab", docs_url=None, redoc_url=None, openapi_url=None)
    routes = "GET /healthz, GET /model, POST /predict, WS /stream"

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error(404, f"no route {request.method} {request.url.path}; this server has {routes}")
        if exc.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}; this server has {routes}")
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "query")
        return error(400, f"bad parameter {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return error(500, internal_error(f"{request.method} {request.url.path}", exc))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        return {**model.metadata(), "limits": {"max_bytes": limits.max_bytes, "max_seconds": limits.max_seconds,
                                               "max_stream_seconds": limits.max_stream_seconds}}

    @app.post("/predict")
    async def predict(request: Request, top_k: int = 1) -> dict[str, Any]:
        if top_k < 1:
            raise RequestError(400, f"top_k must be >= 1, got {top_k}")
        data, name = await wav_upload(request, limits.max_bytes)
        return await run(model.predict, data, name, top_k, limits.max_seconds)

    @app.websocket("/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await _stream(ws, model, limits, run)
        except RequestError as exc:
            await ws.send_json({"type": "error", "error": str(exc)})
            await ws.close(code=1009 if exc.status == 413 else 1008)
        except WebSocketDisconnect:
            pass
        except Exception as exc:  # the model or a bug, not the client: say so, close with 1011 (internal error)
            message = internal_error("WS /stream", exc)
            try:
                await ws.send_json({"type": "error", "error": message})
                await ws.close(code=1011)
            except Exception:  # the connection is already gone
                pass

    return LogRequests(app)


async def _stream(ws: WebSocket, model: ServedModel, limits: Limits, run: Any) -> None:
    q = ws.query_params
    fmt = q.get("format", "s16le")
    if fmt not in PCM_FORMATS:
        raise RequestError(400, f"format={fmt!r}; use s16le (16-bit PCM) or f32le (float32), little-endian mono")
    settings: dict[str, Any] = {}
    for key, kind in (("threshold", float), ("hop", float), ("smooth", int), ("refractory", float)):
        if q.get(key) is not None:
            try:
                settings[key] = kind(q[key])
            except ValueError:
                raise RequestError(400, f"{key}={q[key][:40]!r} is not a number") from None
    det = model.detector(**settings)
    dtype, scale = PCM_FORMATS[fmt]
    rate = model.feature_config.sample_rate
    await ws.send_json({"type": "ready", "sample_rate": rate, "format": fmt, "threshold": det.config.threshold,
                        "settings": det.config.to_dict()})
    received, count = 0, 0
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("bytes") is not None:
            data = msg["bytes"]
            if len(data) > limits.max_bytes:
                raise RequestError(413, f"a message of {len(data)} bytes; send audio in messages up to "
                                        f"{limits.max_bytes} bytes")
            width = np.dtype(dtype).itemsize
            if len(data) % width:
                raise RequestError(400, f"a message of {len(data)} bytes is not whole {fmt} samples "
                                        f"({width} bytes each)")
            block = np.frombuffer(data, dtype).astype(np.float32) * np.float32(scale)
            if not np.all(np.isfinite(block)):
                raise RequestError(400, "the audio holds NaN/Inf samples; send finite float32 samples")
            received += block.size
            if received > limits.max_stream_seconds * rate:
                raise RequestError(413, f"more than {limits.max_stream_seconds:g} s of audio on one stream "
                                        "(--max-stream-seconds); open a new connection")
            found = await run(det.push, block)
        elif (msg.get("text") or "").strip().lower() == "end":
            found = await run(det.flush)
            for d in found:
                await ws.send_json({"type": "detection", **d.to_dict()})
            await ws.send_json({"type": "end", "duration": round(det.duration, 3), "detections": count + len(found)})
            await ws.close(code=1000)
            return
        else:
            raise RequestError(400, f"text message {str(msg.get('text'))[:40]!r}; send audio as binary messages "
                                    "and the text 'end' to finish")
        for d in found:
            await ws.send_json({"type": "detection", **d.to_dict()})
        count += len(found)


class LogRequests:
    """ASGI wrapper: one log line per request (``METHOD PATH STATUS MS``), and no traceback for an exception the
    app already answered with a 500 (Starlette re-raises it for the server to print)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [101 if scope["type"] == "websocket" else 500]

        async def send_logged(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "websocket.close":
                status[0] = 101
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        except Exception:  # already logged and answered (500) by the app's handler
            pass
        finally:
            method = "WS" if scope["type"] == "websocket" else scope.get("method", "")
            log.info("%s %s %d %.1f ms", method, scope.get("path", ""), status[0],
                     (time.perf_counter() - start) * 1000)


def app_from_env() -> LogRequests:
    """The app a uvicorn worker builds (``--workers N``): the model and limits from ``$KWSLAB_SERVE_CONFIG``."""
    from kwslab.decoding.settings import DecoderSettings
    from kwslab.serving.model import load_served

    cfg = json.loads(os.environ[CONFIG_ENV])
    settings = DecoderSettings(**cfg["decoder"])
    if cfg.get("ckpt"):
        from kwslab.models.base import allowed_classes

        with allowed_classes(cfg.get("allow_class", [])):
            model = load_served(ckpt=cfg["ckpt"], settings=settings, threads=cfg["threads"])
    else:
        model = load_served(onnx=cfg["onnx"], settings=settings, threads=cfg["threads"])
    return create_app(model, Limits(**cfg["limits"]), cfg["slots"])
