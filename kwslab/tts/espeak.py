"""Offline speech from the espeak-ng library shipped by the ``espeakng-loader`` wheel, driven through ctypes.

The library keeps its synthesiser state in process globals, and some of it (pitch flutter phase, wave
phase, resonator memories) carries over from one utterance to the next, so the same call twice in a row
does not give the same samples. To make every clip a pure function of ``(text, voice spec)`` the engine is
initialised once per process and each utterance is synthesised in a ``fork()`` of that pristine process
(about 5 ms): regenerating a sample from the spec recorded in the manifest gives identical audio. On
systems without ``fork`` the engine synthesises in-process and regeneration is close but not bit-exact.

Voice specs read ``en-us+f3;rate=162;pitch=61;range=44``: an espeak language (``lang/`` in the data
folder) with an optional variant (``voices/!v``), then words per minute, base pitch and pitch range
(0-100). ``list_languages()`` and ``list_variants()`` say what the shipped data contains.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from kwslab.tts.common import TTSError, postprocess

NATIVE_RATE = 22050  # espeak-ng's output rate (Hz)
# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth returns when the callback has had every sample
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_NOISE_SEED = 1  # seed of espeak's breath/whisper noise generators, the same for every clip

# English accents shipped with espeak-ng, and the variants (voices/!v) used by the "default" voice list.
ENGLISH_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                   "en-029", "en-us-nyc")
DEFAULT_VARIANTS = ("m1", "m3", "m5", "m7", "f1", "f2", "f4", "whisper")
# "all": English accents x every human-sounding variant (the robot/effect voices are left out).
_EFFECT_VARIANTS = frozenset({"Demonic", "UniRobot", "anikaRobot", "robosoft", "robosoft2", "robosoft3",
                              "robosoft4", "robosoft5", "robosoft6", "robosoft7", "robosoft8", "Tweaky"})


def data_path() -> Path:
    """The ``espeak-ng-data`` folder shipped by ``espeakng-loader``."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


@lru_cache(maxsize=1)
def list_languages() -> tuple[str, ...]:
    """Language/accent names in the shipped data (``lang/**``), lower-case, sorted: ``("af", ..., "en-us", ...)``."""
    return tuple(sorted({p.name.lower() for p in (data_path() / "lang").rglob("*") if p.is_file()}))


@lru_cache(maxsize=1)
def list_variants() -> tuple[str, ...]:
    """Voice variants in the shipped data (``voices/!v``), e.g. ``m1``, ``f3``, ``whisper``, ``klatt``, ``croak``.

    Names with spaces (which a voice spec could not hold) are left out.
    """
    folder = data_path() / "voices" / "!v"
    return tuple(sorted((p.name for p in folder.iterdir() if p.is_file() and " " not in p.name), key=str.lower))


def resolve_voices(names: Sequence[str]) -> list[str]:
    """Expand and check voice names: ``"default"``, ``"all"`` or ``"<language>[+<variant>]"``.

    ``default`` = the 8 English accents x ``DEFAULT_VARIANTS`` (64 voices); ``all`` = the English accents x
    every non-effect variant in the data. Order is kept; duplicates are an error.

    Raises:
        ValueError: naming the unknown language or variant and what exists.
    """
    variants = {v.lower(): v for v in list_variants()}
    out: list[str] = []
    for name in names:
        if name in ("default", "all"):
            chosen = DEFAULT_VARIANTS if name == "default" else \
                [v for v in list_variants() if v not in _EFFECT_VARIANTS]
            out.extend(f"{accent}+{v}" for accent in ENGLISH_ACCENTS for v in chosen)
            continue
        lang, _, variant = name.partition("+")
        if lang.lower() not in list_languages():
            english = ", ".join(x for x in list_languages() if x.startswith("en"))
            raise ValueError(f"espeak voice {name!r}: unknown language {lang!r} (English ones: {english}; "
                             f"see `python -m kwslab.tts --list-voices`)")
        if variant and variant.lower() not in variants:
            raise ValueError(f"espeak voice {name!r}: unknown variant {variant!r} "
                             f"(have: {', '.join(variants.values())})")
        out.append(f"{lang.lower()}+{variants[variant.lower()]}" if variant else lang.lower())
    dupes = sorted({v for v in out if out.count(v) > 1})
    if dupes:
        raise ValueError(f"espeak voices listed more than once: {', '.join(dupes)}")
    return out


@dataclass(frozen=True)
class VoiceSpec:
    """Everything that determines an espeak clip besides its text.

    Attributes:
        voice: ``language[+variant]``, e.g. ``"en-us+f3"``.
        rate: speaking rate in words per minute (80-450; espeak's default 175).
        pitch: base pitch 0-100 (default 50).
        range: pitch range 0-100 (default 50; 0 = monotone).
        volume: amplitude 0-200 (default 100).
    """

    voice: str
    rate: int = 175
    pitch: int = 50
    range: int = 50
    volume: int = 100

    def __post_init__(self) -> None:
        for name, lo, hi in (("rate", 80, 450), ("pitch", 0, 100), ("range", 0, 100), ("volume", 0, 200)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise ValueError(f"voice spec {self.voice!r}: {name}={value!r} must be an integer in [{lo}, {hi}]")

    def __str__(self) -> str:
        volume = f";volume={self.volume}" if self.volume != 100 else ""
        return f"{self.voice};rate={self.rate};pitch={self.pitch};range={self.range}{volume}"


def parse_voice_spec(spec: str) -> VoiceSpec:
    """Parse the manifest's voice column back into a ``VoiceSpec``: ``"en-us+f3;rate=162;pitch=61;range=44"``.

    Missing keys take espeak's defaults. Raises ValueError naming the bad part.
    """
    voice, *pairs = [p.strip() for p in str(spec).split(";")]
    if not voice:
        raise ValueError(f"voice spec {spec!r}: empty voice name")
    values: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in ("rate", "pitch", "range", "volume") or key in values:
            raise ValueError(f"voice spec {spec!r}: bad part {pair!r} (expected rate=, pitch=, range=, volume=)")
        try:
            values[key] = int(value)
        except ValueError:
            raise ValueError(f"voice spec {spec!r}: {key}={value!r} is not an integer") from None
    return VoiceSpec(voice, **values)


def draw_voice_spec(voice: str, rng: np.random.Generator, rate: tuple[int, int] = (130, 200),
                    pitch: tuple[int, int] = (30, 70), pitch_range: tuple[int, int] = (30, 70)) -> VoiceSpec:
    """Draw rate, pitch and pitch range uniformly from the inclusive ranges (rng consumed in that order)."""
    draw = lambda lo_hi: int(rng.integers(lo_hi[0], lo_hi[1] + 1))  # noqa: E731
    return VoiceSpec(voice, rate=draw(rate), pitch=draw(pitch), range=draw(pitch_range))


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakEngine:
    """The espeak-ng library of this process, initialised once (use ``get_engine()``; thread-safe)."""

    def __init__(self, fork: bool | None = None) -> None:
        import espeakng_loader

        self._lib = lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._libc = ctypes.CDLL(None)  # wavegen also draws from libc rand()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path()).encode(), _INITIALIZE_DONT_EXIT)
        if rate != NATIVE_RATE:
            raise TTSError(f"espeak_Initialize failed (returned {rate}) with data {data_path()}; "
                           "reinstall the espeakng-loader wheel")
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._on_samples)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        # Load the English dictionary once here, so forked children do not each read it from disk (2x faster).
        # The parent never synthesises, so its state - and every child's starting state - stays fixed.
        lib.espeak_SetVoiceByName(b"en")
        self._lock = threading.Lock()
        self.fork = hasattr(os, "fork") if fork is None else fork

    def _on_samples(self, wav: ctypes.POINTER(ctypes.c_short), n: int, events: int) -> int:
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, 2 * n))
        return 0  # 0 = carry on

    def _synth_here(self, text: str, spec: VoiceSpec) -> bytes:
        lib = self._lib
        if lib.espeak_SetVoiceByName(spec.voice.encode()) != 0:
            raise TTSError(f"espeak-ng has no voice {spec.voice!r}")
        for param, value in ((_RATE, spec.rate), (_PITCH, spec.pitch), (_RANGE, spec.range), (_VOLUME, spec.volume)):
            lib.espeak_SetParameter(param, int(value), 0)
        lib.espeak_ng_SetRandSeed(_NOISE_SEED)
        self._libc.srand(_NOISE_SEED)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise TTSError(f"espeak_Synth failed (error {err}) for {text!r} with {spec}")
        lib.espeak_Synchronize()
        return b"".join(self._chunks)

    def _synth_forked(self, text: str, spec: VoiceSpec) -> bytes:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesise from the pristine state, send b"+"/b"!" and the payload, leave
            try:
                os.close(read_fd)
                try:
                    payload = b"+" + self._synth_here(text, spec)
                except Exception as e:  # noqa: BLE001 - reported through the pipe
                    payload = b"!" + str(e).encode("utf-8", "replace")
                view = memoryview(payload)
                while view:
                    view = view[os.write(write_fd, view):]
            finally:
                os._exit(0)
        os.close(write_fd)
        parts = []
        with os.fdopen(read_fd, "rb") as f:
            while block := f.read(1 << 16):
                parts.append(block)
        _, status = os.waitpid(pid, 0)
        payload = b"".join(parts)
        if not payload or status != 0:
            raise TTSError(f"espeak worker process died (status {status}) on {text!r} with {spec}")
        if payload[:1] == b"!":
            raise TTSError(payload[1:].decode("utf-8", "replace"))
        return payload[1:]

    def synthesize_raw(self, text: str, spec: VoiceSpec) -> np.ndarray:
        """Synthesise ``text``; returns (n,) int16 samples at 22050 Hz (espeak's own leading/trailing silence)."""
        if not text.strip():
            raise TTSError("cannot synthesise empty text")
        with self._lock:
            data = self._synth_forked(text, spec) if self.fork else self._synth_here(text, spec)
        return np.frombuffer(data, dtype=np.int16).copy()


_ENGINE: EspeakEngine | None = None
_ENGINE_LOCK = threading.Lock()


def get_engine() -> EspeakEngine:
    """The process's engine, created on first use (each process-pool worker gets its own)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = EspeakEngine()
        return _ENGINE


def synthesize(text: str, spec: VoiceSpec | str, sample_rate: int = 16000, *, trim: bool = True,
               trim_db: float = 40.0, normalize: float | None = 0.9) -> np.ndarray:
    """Speak ``text`` with ``spec`` and return a clean clip.

    Args:
        text: what to say (UTF-8; espeak reads digits and punctuation as written).
        spec: a ``VoiceSpec`` or its string form (the manifest's voice column).
        sample_rate: output rate in Hz; espeak's 22050 Hz is resampled with ``kwslab.audio.resample``.
        trim: cut leading/trailing silence (frames ``trim_db`` below the loudest, 20 ms kept).
        trim_db: silence threshold in dB below the loudest 10 ms frame.
        normalize: peak level to scale to, or None to keep espeak's level.

    Returns:
        (n,) float32 in [-1, 1] at ``sample_rate``.
    """
    from kwslab.audio import resample

    spec = parse_voice_spec(spec) if isinstance(spec, str) else spec
    x = get_engine().synthesize_raw(text, spec).astype(np.float32) / 32768.0
    x = postprocess(x, NATIVE_RATE, trim=trim, trim_db=trim_db, normalize=None)
    if sample_rate != NATIVE_RATE:
        x = resample(x, NATIVE_RATE, sample_rate)
    if len(x) == 0:
        raise TTSError(f"espeak produced no audio for {text!r} with {spec}")
    return postprocess(x, sample_rate, trim=False, trim_db=trim_db, normalize=normalize)


def render_batch(jobs: Sequence[tuple[int, str, str, str]], sample_rate: int, trim: bool, trim_db: float,
                 normalize: float | None) -> list[tuple[int, float | None, str | None]]:
    """Synthesise and write a batch of clips (runs in a process-pool worker, or in-process).

    Args:
        jobs: ``(plan index, text, voice spec, absolute WAV path)`` per clip.
        sample_rate, trim, trim_db, normalize: as for :func:`synthesize`.

    Returns:
        ``(plan index, duration in s or None, error message or None)`` per job, in order.
    """
    from kwslab.audio import write_wav

    results: list[tuple[int, float | None, str | None]] = []
    for index, text, spec, path in jobs:
        try:
            x = synthesize(text, spec, sample_rate, trim=trim, trim_db=trim_db, normalize=normalize)
            write_wav(path, x, sample_rate)
            results.append((index, len(x) / sample_rate, None))
        except (TTSError, ValueError, OSError) as e:
            results.append((index, None, f"{type(e).__name__}: {e}"))
    return results
