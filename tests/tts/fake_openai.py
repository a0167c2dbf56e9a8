"""A local stand-in for OpenAI's ``POST /v1/audio/speech`` (ThreadingHTTPServer on 127.0.0.1, in a thread).

Every successful answer is a WAV streamed in chunks with the sizes OpenAI uses for streams (0xFFFFFFFF in
the RIFF and data headers): 24 kHz mono 16-bit, 0.1 s silence, a 0.5 s tone, 0.1 s silence. The tone's
frequency encodes the request (input, voice, instructions) - ``tone_hz`` - so a test can check that every
file holds the audio of its own row. Faults are scripted per input text (``faults[text] = ["429", ...]``,
consumed one per request) or for all requests (``hang_after``, ``delay``); ``wrong key`` gives 401.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

RATE = 24000
MP3_BODY = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)  # an ID3 tag + MPEG frame header


def tone_hz(text: str, voice: str, instructions: str | None = None) -> float:
    """The tone frequency the server uses for a request: 300-2775 Hz on a 25 Hz grid."""
    key = f"{text}|{voice}|{instructions or ''}".encode()
    return 300.0 + 25.0 * (zlib.crc32(key) % 100)


def streamed_wav(text: str, voice: str, instructions: str | None) -> bytes:
    """A 16-bit mono WAV whose RIFF and data sizes are 0xFFFFFFFF (as in OpenAI's streamed responses)."""
    t = np.arange(int(0.5 * RATE)) / RATE
    tone = 0.5 * np.sin(2 * np.pi * tone_hz(text, voice, instructions) * t)
    silence = np.zeros(int(0.1 * RATE))
    pcm = (np.concatenate([silence, tone, silence]) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt \
        + b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm


class FakeOpenAI:
    """The server and its script. ``requests`` lists ``(input, voice, instructions, status)`` in arrival order."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str, str | None, int]] = []
        self.delay = 0.0                  # seconds before answering each request
        self.hang_after: int | None = None  # answer this many requests, then never answer
        self.admitted = 0                 # authorised requests let through to be answered (hang_after counts these)
        self.held = 0                     # requests being held open by hang_after
        self.bodies_seen: list[bytes] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        """Let requests held open by ``hang_after`` end (without an answer)."""
        self._release.set()

    def count(self, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if status is None or r[3] == status)

    def _next_fault(self, text: str) -> str | None:
        with self._lock:
            script = self.faults.get(text)
            return script.pop(0) if script else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _json(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
                body = json.dumps({"error": {"message": message, "type": "test", "code": status}}).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self, req: dict, status: int) -> None:
                with fake._lock:
                    fake.requests.append((req.get("input", ""), req.get("voice", ""), req.get("instructions"), status))

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake._lock:
                    fake.bodies_seen.append(body)
                if self.path != "/v1/audio/speech":
                    return self._json(404, f"no route {self.path}")
                req = json.loads(body)
                if self.headers.get("Authorization") != f"Bearer {fake.key}":
                    self._record(req, 401)
                    return self._json(401, "Incorrect API key provided")
                with fake._lock:  # decide and count in one step, so concurrent requests cannot both slip through
                    hold = fake.hang_after is not None and fake.admitted >= fake.hang_after
                    if hold:
                        fake.held += 1
                    else:
                        fake.admitted += 1
                if hold:
                    fake._release.wait(60)
                    return
                if fake.delay:
                    time.sleep(fake.delay)
                fault = fake._next_fault(req["input"])
                if fault == "429":
                    self._record(req, 429)
                    return self._json(429, "Rate limit reached", {"Retry-After": "7"})
                if fault == "429ms":
                    self._record(req, 429)
                    return self._json(429, "Rate limit reached", {"retry-after-ms": "1500", "Retry-After": "9"})
                if fault in ("500", "400"):
                    self._record(req, int(fault))
                    return self._json(int(fault), f"injected {fault}")
                if fault == "mp3":
                    self._record(req, 200)
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/mpeg")
                    self.send_header("Content-Length", str(len(MP3_BODY)))
                    self.end_headers()
                    self.wfile.write(MP3_BODY)
                    return
                assert req.get("response_format") == "wav", req
                self._record(req, 200)
                data = streamed_wav(req["input"], req["voice"], req.get("instructions"))
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for k in range(0, len(data), 4096):
                    chunk = data[k:k + 4096]
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

        return Handler
