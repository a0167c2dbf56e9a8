"""The HTTP service, started for real on 127.0.0.1 and a free port and asked over HTTP and WebSocket: every route,
every error as one-line JSON, concurrent answers equal to ``predict``'s, streamed detections equal to
``predict --stream``'s, for checkpoints and ONNX models of both kinds; and a model that fails mid-request answered
with a JSON 500 while the server goes on serving.

One server is a process of its own (``python -m kwslab.serve --workers 2``: uvicorn's process manager, the logging
set-up, the workers' loading from the environment). The others run the same command's ``main`` in this process with
uvicorn serving in a thread: the command's parsing and loading without a start-up of their own (about 5 s of
importing torch and Lightning for each checkpoint server otherwise, which this process pays once)."""
from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
ws_client = pytest.importorskip("websockets.sync.client")

from kwslab.audio import load_audio, wav_bytes, write_wav  # noqa: E402
from kwslab.inference.backend import onnx_backend, torch_backend  # noqa: E402
from kwslab.inference.keywords import detect_stream  # noqa: E402
from kwslab.predict import main as predict_main  # noqa: E402
from tests.support.keyword_task import noise, tone_stream  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LIMITS = ["--max-bytes", "200000", "--max-seconds", "3", "--max-stream-seconds", "20"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m kwslab.serve ARGS`` on a free port; ``url``, ``log`` (its stderr so far)."""

    def __init__(self, tmp: Path, name: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "kwslab.serve", *args, "--port", str(self.port)],
                                     cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 60) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log}"
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"server not up in {timeout} s: {self.log}")

    @property
    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()


class LocalServer:
    """``app`` served by uvicorn in a thread of this process on 127.0.0.1 and a free port; ``url``, ``log`` (the
    ``kwslab.serve`` lines it wrote so far, as ``python -m kwslab.serve`` formats them)."""

    def __init__(self, app, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.lines: list[str] = []
        self._handler = logging.Handler()
        self._handler.emit = self._record
        self._logger = logging.getLogger("kwslab.serve")
        self._level = self._logger.level
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.INFO)
        self.thread.start()

    def _record(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread.ident:  # this server's event loop, not another's
            self.lines.append(logging.Formatter().format(record))

    def wait(self, timeout: float = 30) -> "LocalServer":
        deadline = time.monotonic() + timeout
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "in-process server did not start"
            time.sleep(0.01)
        return self

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)


@pytest.fixture(scope="module")
def models(exported, tmp_path_factory) -> dict[str, Path]:
    """The keyword checkpoint (with a stream calibration) and its ONNX export; a CTC checkpoint and its export."""
    from kwslab.export import main as export_main
    from tests.support.checkpoints import ctc_checkpoint

    d = tmp_path_factory.mktemp("serve_models")
    ctc = ctc_checkpoint(d / "ctc.ckpt")
    assert export_main(["--ckpt", str(ctc), "--out", str(d / "ctc.onnx")]) == 0
    return {"kw_ckpt": exported[0], "kw_onnx": exported[1], "ctc_ckpt": ctc, "ctc_onnx": d / "ctc.onnx"}


def serve_in_process(*args: str) -> LocalServer:
    """``python -m kwslab.serve ARGS`` run by its ``main`` here, with ``uvicorn.run`` serving the app it builds in a
    thread (a :class:`LocalServer` on the command's host and port) instead of blocking."""
    import uvicorn

    from kwslab.serve import main

    started: list[LocalServer] = []

    def run(app, host: str, port: int, **_) -> None:
        assert host == "127.0.0.1"
        started.append(LocalServer(app, port))

    with mock.patch.object(uvicorn, "run", run):
        assert main([*args, "--port", str(free_port())]) == 0
    return started[0]


@pytest.fixture(scope="module")
def servers(models, tmp_path_factory):
    """Keyword ONNX (its own process, 2 workers, small limits); in this process: keyword checkpoint (small limits),
    CTC ONNX and CTC checkpoint (greedy + beam)."""
    import torch

    threads = torch.get_num_threads()  # a checkpoint server sets it to its --threads (1)
    with ExitStack() as stack:
        started = {"kw_onnx": Server(tmp_path_factory.mktemp("serve_logs"), "kw_onnx", "--onnx",
                                     str(models["kw_onnx"]), "--workers", "2", *LIMITS)}
        stack.callback(started["kw_onnx"].stop)  # its start-up overlaps the loading below
        stack.callback(torch.set_num_threads, threads)
        for name, args in {"kw_ckpt": ("--ckpt", str(models["kw_ckpt"]), *LIMITS),
                           "ctc_onnx": ("--onnx", str(models["ctc_onnx"]), "--beam-width", "4"),
                           "ctc_ckpt": ("--ckpt", str(models["ctc_ckpt"]), "--beam-width", "4")}.items():
            started[name] = serve_in_process(*args)
            stack.callback(started[name].stop)
        yield {k: s.wait() for k, s in started.items()}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Ten 0.5-1.2 s clips: tone bursts, noise, mono and stereo, 16 and 8 kHz."""
    d = tmp_path_factory.mktemp("serve_clips")
    rng = np.random.default_rng(7)
    out = []
    for i in range(10):
        seconds = 0.5 + 0.07 * i
        x = tone_stream(rng, [(("high", "low")[i % 2], 0.05, 0.35)], seconds) if i % 3 else noise(int(seconds * 16000), rng)
        sr = 16000
        if i == 4:
            x = np.stack([x, 0.5 * x], axis=1)  # stereo
        if i == 7:
            x, sr = x[::2], 8000  # resampled by the server
        out.append(d / f"clip{i}.wav")
        write_wav(out[-1], x, sr)
    return out


def post(server: Server, body: bytes, ctype: str | None = "audio/wav", query: str = "") -> httpx.Response:
    headers = {"content-type": ctype} if ctype else {}
    return httpx.post(f"{server.url}/predict{query}", content=body, headers=headers, timeout=30)


def predict_cli(*args: str, capsys) -> list[dict]:
    capsys.readouterr()
    predict_main([*args, "--json"])
    return json.loads(capsys.readouterr().out)


def test_healthz_and_model_metadata(servers, models):
    from kwslab.inference.loaded import load_model

    assert httpx.get(servers["kw_ckpt"].url + "/healthz").json() == {"status": "ok"}
    ref = load_model(models["kw_ckpt"])
    for name in ("kw_ckpt", "kw_onnx"):
        meta = httpx.get(servers[name].url + "/model").json()
        assert meta["kind"] == "keyword" and meta["labels"] == ref.labels
        assert meta["features"] == ref.feature_config.to_dict() and meta["sample_rate"] == 16000
        assert meta["source"] == models[name].name and meta["stream_threshold"] == 0.42
        assert meta["limits"]["max_bytes"] == 200000
    meta = httpx.get(servers["ctc_onnx"].url + "/model").json()
    assert meta["kind"] == "ctc" and meta["format"] == "onnx" and meta["labels"][0] == ""
    assert meta["decoder"]["beam_width"] == 4


@pytest.mark.parametrize("name", ["kw_onnx", "kw_ckpt"])
def test_concurrent_requests_answer_as_predict_does(servers, models, clips, name, capsys):
    flag = "--onnx" if name.endswith("onnx") else "--ckpt"
    expected = predict_cli(flag, str(models[name]), "--top-k", "3", *map(str, clips), capsys=capsys)

    def ask(i: int) -> dict:
        path = clips[i % len(clips)]
        if i % 2:  # a multipart upload, as curl -F file=@clip.wav sends it
            r = httpx.post(servers[name].url + "/predict?top_k=3", files={"file": (path.name, path.read_bytes())},
                           timeout=30)
        else:
            r = post(servers[name], path.read_bytes(), ("audio/wav", "audio/x-wav", "application/octet-stream")[i % 3],
                     "?top_k=3")
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(40)))
    for i, got in enumerate(answers):
        want = expected[i % len(clips)]
        assert (got["keyword"], got["confidence"], got["top"]) == (want["keyword"], want["confidence"], want["top"])
    assert answers[1]["file"] == clips[1].name and answers[0]["file"] == "upload.wav"
    assert answers[0]["duration"] == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["ctc_ckpt", "ctc_onnx"])
def test_ctc_transcripts_match_predict(servers, models, clips, name, capsys):
    expected = predict_cli("--ckpt", str(models["ctc_ckpt"]), "--beam-width", "4", *map(str, clips[:4]), capsys=capsys)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda p: post(servers[name], p.read_bytes()), clips[:4]))
    for r, want in zip(answers, expected):
        assert r.status_code == 200, r.text
        got = r.json()
        assert {k: got[k] for k in ("text", "greedy", "beam")} == {k: want[k] for k in ("text", "greedy", "beam")}


def one_line_error(r: httpx.Response, status: int, *needles: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    message = r.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    for n in needles:
        assert n in message, message
    return message


def test_every_error_is_one_line_of_json(servers, clips, tmp_path):
    kw = servers["kw_onnx"]
    one_line_error(post(kw, b"x" * 200001), 413, "200000 bytes", "--max-bytes")
    # no Content-Length (chunked): refused as it is read
    one_line_error(httpx.post(kw.url + "/predict", content=iter([b"RIFF" + b"\0" * 99996] * 3),
                              headers={"content-type": "audio/wav"}, timeout=30), 413, "200000 bytes")
    long = wav_bytes(0.1 * np.sin(np.arange(16000 * 4, dtype=np.float32)), 8000, 1)  # 8 s, 64 KB: small but long
    one_line_error(post(kw, long), 413, "8.0 s", "up to 3 s", "/stream")
    one_line_error(post(kw, b"hello, not a wav"), 400, "upload.wav", "not a WAV file")
    one_line_error(post(kw, clips[0].read_bytes()[:30]), 400, "upload.wav")  # truncated header
    one_line_error(post(kw, wav_bytes(np.zeros(8000, np.float32), 16000)), 400, "silent")
    one_line_error(post(kw, wav_bytes(np.zeros(0, np.float32), 16000)), 400, "empty")
    one_line_error(httpx.post(kw.url + "/predict", files={"clip": ("bad.wav", b"not audio")}), 400, "bad.wav")
    one_line_error(httpx.post(kw.url + "/predict", data={"name": "x"}, files={}), 415, "content type")
    one_line_error(httpx.post(kw.url + "/predict", files={"note": (None, "text")}), 400, "no file")
    one_line_error(post(kw, clips[0].read_bytes(), "text/plain"), 415, "'text/plain'", "audio/wav")
    one_line_error(post(kw, clips[0].read_bytes(), None), 415, "(none)")
    one_line_error(post(kw, clips[0].read_bytes(), query="?top_k=0"), 400, "top_k")
    one_line_error(post(kw, clips[0].read_bytes(), query="?top_k=two"), 400, "top_k")
    one_line_error(httpx.get(kw.url + "/nowhere"), 404, "GET /nowhere", "POST /predict")
    one_line_error(httpx.get(kw.url + "/predict"), 405, "GET")
    assert post(kw, clips[0].read_bytes()).status_code == 200  # still serving
    log = kw.log
    assert "Traceback" not in log
    for line in ("POST /predict 413", "POST /predict 400", "POST /predict 415", "GET /nowhere 404",
                 "POST /predict 200"):
        assert re.search(re.escape(line) + r" \d+\.\d ms", log), line


def stream(server: Server, samples: np.ndarray, query: str = "", fmt: str = "f32le", seed: int = 0) -> list[dict]:
    """Send ``samples`` in random-sized binary messages, then ``end``; every message the server sent."""
    rng = np.random.default_rng(seed)
    data = samples.astype(np.float32) if fmt == "f32le" else np.round(samples * 32768).astype("<i2")
    sep = "&" if query else ""
    with ws_client.connect(server.url.replace("http", "ws") + f"/stream?{query}{sep}format={fmt}") as ws:
        got = [json.loads(ws.recv(timeout=30))]
        start = 0
        while start < len(data):
            n = int(rng.integers(300, 9000))
            ws.send(data[start:start + n].tobytes())
            start += n
        ws.send("end")
        try:
            while True:
                got.append(json.loads(ws.recv(timeout=30)))
        except Exception:  # closed by the server after "end"
            pass
    return got


@pytest.mark.parametrize("name,fmt", [("kw_onnx", "s16le"), ("kw_ckpt", "f32le")])
def test_stream_detections_match_predict_stream(servers, models, tmp_path, name, fmt):
    rng = np.random.default_rng(11)
    path = tmp_path / "long.wav"
    write_wav(path, np.concatenate([noise(8000, rng), tone_stream(rng, [("low", 1, 2), ("high", 3.5, 4)], 6)]), 16000)
    backend = onnx_backend(models[name]) if fmt == "s16le" else torch_backend(models[name])
    for query, kwargs in (("", {}), ("threshold=0.05&hop=0.1", {"threshold": 0.05, "hop": 0.1})):
        want = detect_stream(backend, path, **kwargs)
        got = stream(servers[name], load_audio(path, 16000), query, fmt)
        assert got[0]["type"] == "ready" and got[0]["threshold"] == want["threshold"]
        assert got[-1] == {"type": "end", "duration": want["duration"], "detections": len(want["detections"])}
        found = [{k: v for k, v in m.items() if k != "type"} for m in got if m["type"] == "detection"]
        assert found == want["detections"]
    assert want["detections"], "the check needs detections to compare"


def test_stream_errors_close_the_connection_with_a_message(servers):
    url = servers["kw_onnx"].url.replace("http", "ws") + "/stream"

    def first_error(query: str, *messages) -> str:
        with ws_client.connect(url + query) as ws:
            reply = json.loads(ws.recv(timeout=10))
            if reply["type"] == "ready":
                for m in messages:
                    ws.send(m)
                while reply["type"] != "error":
                    reply = json.loads(ws.recv(timeout=10))
            assert reply["type"] == "error", reply
            return reply["error"]

    assert "s16le" in first_error("?format=mp3")
    assert "threshold" in first_error("?threshold=loud")
    assert "StreamConfig.threshold" in first_error("?threshold=2")
    assert "whole s16le samples" in first_error("", b"\0\0\0")
    assert "binary" in first_error("", "hello")
    assert "--max-stream-seconds" in first_error("", *[np.ones(16000 * 6, "<i2").tobytes()] * 4)
    with ws_client.connect(servers["ctc_onnx"].url.replace("http", "ws") + "/stream") as ws:
        assert "keyword model" in json.loads(ws.recv(timeout=10))["error"]


def test_a_worker_loads_a_checkpoint_from_the_environment(servers, models, clips, monkeypatch):
    """What each of ``--workers N`` does with ``--ckpt`` (the server above covers N workers over ONNX)."""
    import torch

    from kwslab.serving.app import CONFIG_ENV, app_from_env

    monkeypatch.setenv(CONFIG_ENV, json.dumps({
        "ckpt": str(models["kw_ckpt"]), "onnx": None, "threads": torch.get_num_threads(), "allow_class": [],
        "decoder": {}, "limits": {"max_bytes": 200000, "max_seconds": 3, "max_stream_seconds": 20}, "slots": 1}))
    server = LocalServer(app_from_env()).wait()
    try:
        assert httpx.get(server.url + "/model").json()["format"] == "checkpoint"
        body = clips[2].read_bytes()
        assert post(server, body, query="?top_k=3").json() == post(servers["kw_ckpt"], body, query="?top_k=3").json()
        one_line_error(post(server, b"x" * 200001), 413, "200000 bytes")
    finally:
        server.stop()


def test_bad_model_and_missing_extra_are_one_line(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_text("not onnx")
    proc = subprocess.run([sys.executable, "-m", "kwslab.serve", "--onnx", str(bad)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "x.onnx" in proc.stderr, proc.stderr
    blocked = ("import sys, runpy; sys.modules['fastapi'] = None; sys.argv = ['serve', '--onnx', 'm.onnx']; "
               "runpy.run_module('kwslab.serve', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", blocked], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "pip install 'kwslab[serve]'" in proc.stderr


class Flaky:
    """A model call that raises ``RuntimeError`` on its next ``failures`` calls, then answers as ``fn`` does."""

    def __init__(self, fn) -> None:
        self.fn, self.failures = fn, 0

    def __call__(self, *args):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("model exploded\n  at layer 3")
        return self.fn(*args)


def test_a_model_failure_is_a_json_500_and_the_server_goes_on(models, clips):
    from websockets.exceptions import ConnectionClosed

    from kwslab.serving.app import create_app
    from kwslab.serving.model import load_served

    model = load_served(onnx=models["kw_onnx"])
    flaky = model.backend.probabilities = Flaky(model.backend.probabilities)
    server = LocalServer(create_app(model)).wait()
    try:
        body = clips[1].read_bytes()
        want = post(server, body).json()
        flaky.failures = 1
        r = post(server, body)
        message = one_line_error(r, 500, "internal error", "POST /predict", "RuntimeError", "server log")
        assert "exploded" not in message and "layer 3" not in r.text and 'File "' not in r.text
        assert post(server, body).json() == want  # the next request is answered
        assert re.search(r"POST /predict failed: RuntimeError: model exploded$", server.log, re.M), server.log
        assert re.search(r"POST /predict 500 \d+\.\d ms", server.log) and "Traceback" not in server.log

        url = server.url.replace("http", "ws") + "/stream?format=f32le"
        audio = np.full(16000, 0.1, np.float32).tobytes()
        flaky.failures = 1
        with ws_client.connect(url) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            ws.send(audio)
            reply = json.loads(ws.recv(timeout=10))
            assert reply["type"] == "error" and "WS /stream" in reply["error"] and "RuntimeError" in reply["error"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1011
        assert "WS /stream failed: RuntimeError: model exploded" in server.log
        with ws_client.connect(url) as ws:  # and the next stream is served
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            ws.send(audio)
            ws.send("end")
            assert json.loads(ws.recv(timeout=10))["type"] in ("detection", "end")

        logging.getLogger("kwslab.serve").setLevel(logging.DEBUG)  # --log-level debug: the traceback too
        flaky.failures = 1
        assert post(server, body).status_code == 500
        assert "Traceback" in server.log and "model exploded" in server.log
    finally:
        server.stop()
