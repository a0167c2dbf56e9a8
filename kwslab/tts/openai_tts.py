"""OpenAI text-to-speech (``gpt-4o-mini-tts`` by default) with our own retries, backoff and key handling.

The official ``openai`` client does the HTTP (and honours ``OPENAI_BASE_URL``, so a compatible server can
stand in); its own retries are switched off (``max_retries=0``) so that retry behaviour lives here and can
be tested with an injected ``sleep``. The key comes from ``OPENAI_API_KEY`` or a ``.env`` file and is held
in a :class:`Secret`, whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from kwslab.tts.common import TTSError

DEFAULT_MODEL = "gpt-4o-mini-tts"
# Voices of gpt-4o-mini-tts (tts-1 and tts-1-hd accept the first nine and a few others).
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
# Cost estimate, USD per 1M input characters. OpenAI's price list (checked 2025-11) gives gpt-4o-mini-tts at
# $0.60 / 1M text tokens + $12 / 1M audio tokens, "about $0.015 per minute" of audio; at ~1,000 characters
# per spoken minute that is ~$15 per 1M characters, the same as tts-1's flat $15 / 1M characters.
DEFAULT_PRICE_PER_MILLION = 15.0
PRICE_PER_MINUTE = 0.015  # OpenAI's own per-minute estimate for gpt-4o-mini-tts (same date)
_RETRY_STATUS = frozenset({408, 409, 429})  # plus every 5xx


class AuthError(TTSError):
    """The server rejected the key (HTTP 401): the whole run stops."""


class Secret:
    """A string that never shows itself in ``repr``/``str``/f-strings/logs; ``.get()`` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret value (pass it straight to the client; never print it)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> Any:
        raise TypeError("Secret values are not pickled")


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=value`` lines, optional ``export``, quotes, ``#`` comments; {} if absent."""
    path = Path(path)
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out


def resolve_credentials(env_file: str | os.PathLike[str] | None = ".env") -> tuple[Secret | None, str | None]:
    """``(api key, base url)`` from the environment, else from ``env_file``; None where neither has one."""
    env = read_env_file(env_file) if env_file else {}
    key = os.environ.get("OPENAI_API_KEY") or env.get("OPENAI_API_KEY") or None
    base_url = os.environ.get("OPENAI_BASE_URL") or env.get("OPENAI_BASE_URL") or None
    return (Secret(key) if key else None), base_url


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms`` (ms), else ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter: wait ``min(max_delay, base * 2**attempt) * U(0.5, 1)``.

    A server's ``Retry-After`` replaces the computed wait (capped at ``max_retry_after`` seconds).
    """

    max_retries: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (attempt counts from 0)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return min(self.max_delay, self.base_delay * 2.0 ** attempt) * (0.5 + 0.5 * rng.random())


@dataclass
class OpenAISpeaker:
    """Thread-safe ``text -> WAV samples`` through the OpenAI speech endpoint, with our own retries.

    Args:
        api_key: the key (a :class:`Secret`).
        model: TTS model name.
        base_url: API root (``.../v1``); None = the client's default, which reads ``OPENAI_BASE_URL``.
        timeout: seconds per request.
        policy: retry policy; ``sleep``: the function used to wait (inject a fake one in tests).
        client: a ready ``openai.OpenAI`` (tests); built from the other arguments when None.
    """

    api_key: Secret
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    timeout: float = 60.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    client: Any = None
    abort: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    _count_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.client is None:
            import openai

            self.client = openai.OpenAI(api_key=self.api_key.get(), base_url=self.base_url, max_retries=0,
                                        timeout=self.timeout)

    def _request(self, text: str, voice: str, instructions: str | None) -> bytes:
        with self._count_lock:
            self.requests += 1
        extra = {"instructions": instructions} if instructions else {}
        response = self.client.audio.speech.create(model=self.model, voice=voice, input=text,
                                                   response_format="wav", **extra)
        return response.read()

    def speak(self, text: str, voice: str, instructions: str | None = None, *, rng: random.Random | None = None,
              name: str = "<response>") -> tuple[np.ndarray, int]:
        """Request ``text`` in ``voice``; returns ``(samples, sample_rate)`` as ``read_wav_bytes`` gives them.

        Retries 408/409/429/5xx, timeouts, connection errors and bodies that are not WAV (e.g. MP3 or a JSON
        error) up to ``policy.max_retries`` times. Raises :class:`AuthError` on 401 (and sets ``abort``, so
        other threads stop too), :class:`TTSError` at once on other 4xx, and :class:`TTSError` naming the
        last problem when the retries run out.
        """
        import openai

        from kwslab.audio import WavError, read_wav_bytes

        rng = rng or random.Random(0)
        problem = "no attempt made"
        for attempt in range(self.policy.max_retries + 1):
            if self.abort.is_set():
                raise TTSError("run aborted")
            retry_after = None
            try:
                body = self._request(text, voice, instructions)
            except openai.AuthenticationError:
                self.abort.set()
                raise AuthError("the server answered 401 Unauthorized: check OPENAI_API_KEY") from None
            except openai.APIStatusError as e:
                status = e.status_code
                if status not in _RETRY_STATUS and status < 500:
                    raise TTSError(f"HTTP {status} for {text!r} ({voice}): {_short(e.message)}") from None
                retry_after = retry_after_seconds(e.response.headers)
                problem = f"HTTP {status}" + (f" (Retry-After {retry_after:g} s)" if retry_after is not None else "")
            except openai.APITimeoutError:
                problem = f"timed out after {self.timeout:g} s"
            except openai.APIConnectionError as e:
                problem = f"connection error: {_short(str(e))}"
            else:
                try:
                    return read_wav_bytes(body, name)
                except WavError as e:
                    problem = f"body is not a WAV ({len(body)} bytes starting {body[:8]!r}): {_short(str(e))}"
            if attempt < self.policy.max_retries:
                self.sleep(self.policy.delay(attempt, rng, retry_after))
        raise TTSError(f"gave up after {self.policy.max_retries + 1} attempts; last: {problem}")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def estimate_cost(texts: Sequence[str], price_per_million: float = DEFAULT_PRICE_PER_MILLION) -> dict[str, float]:
    """Cost estimate for one request per text.

    Returns:
        ``{"requests", "characters", "usd_by_characters", "audio_minutes", "usd_by_minutes"}``: the first
        estimate is ``characters x price_per_million / 1e6``; the second takes ~1,000 spoken characters per
        minute, at least 1 s of audio per request, and OpenAI's ~$0.015 per minute (short keywords cost
        more than their few characters suggest).
    """
    characters = sum(len(t) for t in texts)
    seconds = sum(max(1.0, len(t) * 60.0 / 1000.0) for t in texts)
    return {
        "requests": len(texts),
        "characters": characters,
        "usd_by_characters": characters * price_per_million / 1e6,
        "audio_minutes": seconds / 60.0,
        "usd_by_minutes": seconds / 60.0 * PRICE_PER_MINUTE,
    }
