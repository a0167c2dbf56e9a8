"""WAV reading and writing in NumPy: our own RIFF chunk parser, tolerant of real-world files.

Reads RIFF (little-endian), RIFX (big-endian) and RF64/BW64 (64-bit sizes) files holding PCM 8-bit unsigned,
16/24/32-bit signed, or IEEE float 32/64 samples, plain or WAVE_FORMAT_EXTENSIBLE. Tolerated on purpose:
streamed headers whose RIFF/data sizes are 0xFFFFFFFF or 0 (read to the end of the file), chunks before or
after ``data`` (LIST, JUNK, fact, ...; never read as samples), ``fmt `` after ``data``, odd-sized chunks with or
without their pad byte, and a truncated data chunk (the whole frames present are returned). Memory is bounded
by the real file size, never by a size a header claims.

Anything else raises :class:`WavError` naming the file, what is wrong and, where it can tell, what the file is
instead (MP3, OGG, FLAC, an API's JSON error body, a ``.env`` file, ...), described but never quoted: a file
passed as audio may hold a secret, and messages end up in logs. Also refused before any sample is read: a
directory, a FIFO or device (opening one could block forever), and a header rate outside
``MIN_SAMPLE_RATE``..``MAX_SAMPLE_RATE`` (1 kHz to 384 kHz; a 1 Hz header made resampling ask for 23.8 GiB). Float files holding NaN or Inf raise ``WavError``
(a corrupt file should stop a dataset build, not train on zeros); finite float samples beyond [-1, 1] are
clipped. Writing goes to a temporary file in the target folder that is renamed over the target, so a crash
never leaves a half-written WAV.
"""

from __future__ import annotations

import io
import os
import secrets
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from .resample import resample

PathLike = Union[str, "os.PathLike[str]"]

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_PCM_ENCODINGS = {1: "pcm_u8", 2: "pcm_s16", 3: "pcm_s24", 4: "pcm_s32"}
_FLOAT_ENCODINGS = {4: "float32", 8: "float64"}
_FORMAT_NAMES = {  # format tags we name in errors; only PCM and IEEE float are decoded
    0x0002: "Microsoft ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0022: "TrueSpeech",
    0x0031: "GSM 6.10", 0x0040: "G.721 ADPCM", 0x0050: "MPEG", 0x0055: "MPEG Layer 3 (MP3)",
    0x0092: "Dolby AC3 SPDIF", 0x00FF: "AAC", 0x1610: "HE-AAC", 0x2000: "AC3", 0x674F: "Ogg Vorbis",
    0xF1AC: "FLAC",
}
_GUID_TAIL = b"\x80\x00\x00\xaa\x00\x38\x9b\x71"  # bytes 8..16 of every KSDATAFORMAT_SUBTYPE_* GUID
_CONVERT_HINT = "convert it to PCM WAV (e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`)"
_STREAMED = 0xFFFFFFFF
MIN_SAMPLE_RATE = 1_000  # Hz; a header outside these bounds is corrupt (a 1 Hz header once asked the
MAX_SAMPLE_RATE = 384_000  # resampler for 23.8 GiB), so it is refused before any sample is read


class WavError(ValueError):
    """A file that cannot be read as WAV; the message names the file and says what is wrong."""


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says, checked against the file's real size.

    Attributes:
        sample_rate: Frames per second (Hz).
        channels: Samples per frame.
        encoding: "pcm_u8", "pcm_s16", "pcm_s24", "pcm_s32", "float32" or "float64".
        sample_width: Bytes per sample.
        frames: Whole frames actually present in the file (not the header's claim).
        duration: frames / sample_rate, in seconds.
        container: "RIFF", "RIFX" (big-endian), "RF64" or "BW64".
        notes: Tolerated irregularities, e.g. a streamed header or a truncated data chunk.
    """

    sample_rate: int
    channels: int
    encoding: str
    sample_width: int
    frames: int
    duration: float
    container: str = "RIFF"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Layout:
    info: WavInfo
    data_offset: int
    endian: str  # "<" or ">"


# ----------------------------------------------------------------------------------------------- reading


def _sniff(head: bytes, size: int) -> str:
    """Say what a file that is not RIFF/WAVE looks like, with a hint where one helps."""
    request = "request WAV output (e.g. response_format='wav') or convert it to WAV"
    if head[:3] == b"ID3":
        return f"not a WAV file: looks like MP3 (ID3 tag); {request}"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        if head[1] & 0x06 == 0:
            return f"not a WAV file: looks like AAC (ADTS frame sync); {request}"
        return f"not a WAV file: looks like MP3 (MPEG audio frame sync); {request}"
    kinds = {b"OggS": "OGG (Opus or Vorbis)", b"fLaC": "FLAC", b"\x1aE\xdf\xa3": "WebM/Matroska",
             b".snd": "Sun AU", b"caff": "Apple CAF", b"PK\x03\x04": "a ZIP archive", b"%PDF": "PDF"}
    for magic, kind in kinds.items():
        if head.startswith(magic):
            if magic == b"OggS" and b"OpusHead" in head:
                kind = "OGG Opus"
            return f"not a WAV file: looks like {kind}; {request}"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return f"not a WAV file: looks like AIFF; {request}"
    if head[4:8] == b"ftyp":
        return f"not a WAV file: looks like MP4/M4A; {request}"
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64"):
        if size < 12:
            return f"truncated header: the file is only {size} bytes (a WAV header needs at least 44)"
        return f"RIFF file of type {head[8:12]!r}, not WAVE"
    # Text is described, never quoted: it may be a .env file, a config or an API body holding a key.
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text[:1] in ("{", "["):
        return f"not a WAV file: looks like JSON text (an API error body?), {size} bytes; open it as text to read it"
    if text[:1] == "<":
        kind = "XML" if text.startswith("<?xml") else "HTML"
        return f"not a WAV file: looks like {kind} text (an error page?), {size} bytes; open it as text to read it"
    if text and sum((c.isprintable() and c != "\ufffd") or c in "\r\n\t" for c in text) >= 0.95 * len(text):
        first = text.splitlines()[0] if text.strip() else ""
        kind = ("text of KEY=value lines (an environment or config file?)"
                if "=" in first and first.split("=", 1)[0].strip().replace("_", "").isalnum() else "plain text")
        return f"not a WAV file: looks like {kind}, {size} bytes; contents not shown"
    return f"not a WAV file: no RIFF/WAVE header (starts with bytes {head[:4].hex(' ')})"


def _is_chunk_id(cid: bytes) -> bool:
    return len(cid) == 4 and all(32 <= b < 127 for b in cid)


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


def _looks_like_chunk(f: BinaryIO, pos: int, size: int, e: str) -> bool:
    """True if the 8 bytes at ``pos`` are a plausible chunk header (printable id, size inside the file)."""
    if pos + 8 > size:
        return False
    hdr = _read_at(f, pos, 8)
    return _is_chunk_id(hdr[:4]) and struct.unpack(e + "I", hdr[4:])[0] <= size - pos - 8


def _next_chunk(f: BinaryIO, body: int, csize: int, size: int, e: str) -> int:
    """Offset of the chunk after one with body at ``body``: skip the pad byte of an odd chunk, unless the writer
    forgot it (the next header then starts right after the body)."""
    end = body + csize
    if csize & 1 and not _looks_like_chunk(f, end + 1, size, e) and _looks_like_chunk(f, end, size, e):
        return end
    return end + (csize & 1)


def _parse_fmt(fmt: bytes, e: str, name: str) -> tuple[int, int, str, int]:
    """Check a fmt chunk; return (channels, sample_rate, encoding, sample_width)."""
    if len(fmt) < 16:
        raise WavError(f"{name}: 'fmt ' chunk is {len(fmt)} bytes, too short for a WAV format (needs 16)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack(e + "HHIIHH", fmt[:16])
    label = "format tag"
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise WavError(f"{name}: WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is {len(fmt)} bytes, needs 40")
        guid = fmt[24:40]
        tag = struct.unpack(e + "I", guid[:4])[0]
        if guid[4:8] != struct.pack(e + "HH", 0, 0x10) or guid[8:] != _GUID_TAIL or tag > 0xFFFF:
            raise WavError(f"{name}: WAVE_FORMAT_EXTENSIBLE with unknown subformat GUID {guid.hex()}; {_CONVERT_HINT}")
        label = "extensible subformat"
    if tag == _PCM:
        encodings, kind = _PCM_ENCODINGS, "PCM"
    elif tag == _FLOAT:
        encodings, kind = _FLOAT_ENCODINGS, "IEEE float"
    else:
        what = _FORMAT_NAMES.get(tag, "unknown")
        raise WavError(f"{name}: unsupported encoding: {label} 0x{tag:04X} ({what}); {_CONVERT_HINT}")
    if bits % 8 or bits // 8 not in encodings:
        raise WavError(f"{name}: unsupported {kind} bit depth {bits} ({label} 0x{tag:04X}); {_CONVERT_HINT}")
    if channels == 0:
        raise WavError(f"{name}: the header says 0 channels; the file is corrupt")
    if rate == 0:
        raise WavError(f"{name}: the header says a sample rate of 0 Hz; the file is corrupt")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise WavError(f"{name}: the header says a sample rate of {rate} Hz, outside the {MIN_SAMPLE_RATE}.."
                       f"{MAX_SAMPLE_RATE} Hz that audio uses; the header is corrupt or the file is not audio "
                       "(re-export it at e.g. 16000 Hz)")
    width = bits // 8
    if block_align != channels * width:
        raise WavError(f"{name}: block_align is {block_align} but {channels} channel(s) x {width} byte(s) "
                       f"= {channels * width}; the header is corrupt")
    return channels, rate, encodings[width], width


def _parse(f: BinaryIO, size: int, name: str) -> _Layout:
    """Walk the chunks of an open WAV file of ``size`` bytes; find its format and its audio bytes."""
    if size == 0:
        raise WavError(f"{name}: empty file (0 bytes)")
    head = _read_at(f, 0, 512)
    container = head[:4].decode("latin-1")
    if container not in ("RIFF", "RIFX", "RF64", "BW64") or len(head) < 12 or head[8:12] != b"WAVE":
        raise WavError(f"{name}: {_sniff(head, size)}")
    e = ">" if container == "RIFX" else "<"
    riff_size = struct.unpack(e + "I", head[4:8])[0]
    streamed_riff = riff_size in (0, _STREAMED)
    fmt = data_offset = data_len = ds64_data = None
    notes: list[str] = []
    found: list[str] = []
    pos = 12
    while pos + 8 <= size:  # every step moves pos forward by at least 8 bytes: no hang
        hdr = _read_at(f, pos, 8)
        cid, csize = hdr[:4], struct.unpack(e + "I", hdr[4:])[0]
        body, remaining = pos + 8, size - pos - 8
        if not _is_chunk_id(cid):
            if fmt is not None and data_offset is not None:
                notes.append(f"ignored {size - pos} bytes of non-chunk data at byte {pos}")
                break
            raise WavError(f"{name}: corrupt chunk header at byte {pos} (id {cid!r}); the file is damaged")
        found.append(cid.decode("ascii"))
        if cid == b"data" and data_offset is None:
            data_offset = body
            if container in ("RF64", "BW64") and csize == _STREAMED and ds64_data is not None:
                csize = ds64_data  # RF64: the real size lives in the ds64 chunk
            elif csize == _STREAMED or (csize == 0 and remaining > 0 and
                                        (streamed_riff or not _looks_like_chunk(f, body, size, e))):
                data_len = remaining
                notes.append(f"streamed header (data size 0x{csize:08X}): read to the end of the file")
                break  # everything to the end of the file is audio
            if csize > remaining:
                data_len = remaining
                notes.append(f"data chunk truncated: header claims {csize} bytes, {remaining} present")
                break
            data_len = csize
            if fmt is not None:
                break  # have both; later chunks (LIST, id3, ...) are metadata
            pos = _next_chunk(f, body, csize, size, e)
            continue
        if csize > remaining:
            if fmt is not None and data_offset is not None:
                notes.append(f"ignored truncated {cid.decode('ascii')!r} chunk at byte {pos}")
                break
            raise WavError(f"{name}: chunk {cid.decode('ascii')!r} at byte {pos} claims {csize} bytes but only "
                           f"{remaining} remain; the file is truncated or corrupt")
        if cid == b"fmt " and fmt is None:
            fmt = _read_at(f, body, min(csize, 1024))
            if data_offset is not None:
                break
        elif cid == b"ds64" and csize >= 16:
            ds64_data = struct.unpack(e + "QQ", _read_at(f, body, 16))[1]
        pos = _next_chunk(f, body, csize, size, e)
    if fmt is None or data_offset is None:
        missing = " and ".join(c for c, v in (("'fmt '", fmt), ("'data'", data_offset)) if v is None)
        seen = ", ".join(repr(c) for c in found) or "none"
        raise WavError(f"{name}: no {missing} chunk (chunks found: {seen}); the file is truncated or not audio")
    channels, rate, encoding, width = _parse_fmt(fmt, e, name)
    frames, partial = divmod(data_len, channels * width)
    if partial:
        notes.append(f"dropped a partial last frame ({partial} bytes)")
    info = WavInfo(rate, channels, encoding, width, frames, frames / rate, container, tuple(notes))
    return _Layout(info, data_offset, e)


def _decode(raw: bytes, layout: _Layout, name: str, first_frame: int = 0) -> np.ndarray:
    """Turn whole frames of raw sample bytes into float32 in [-1, 1], shape (frames,) or (frames, channels)."""
    info, e = layout.info, layout.endian
    if info.encoding == "pcm_u8":
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif info.encoding == "pcm_s24":
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        if e == ">":
            b = b[:, ::-1]
        word = np.zeros((b.shape[0], 4), np.uint8)
        word[:, 1:] = b  # the 24 bits go to the top of a little-endian int32; >> 8 sign-extends
        x = (word.view("<i4")[:, 0] >> 8).astype(np.float32) / np.float32(1 << 23)
    elif info.encoding in ("pcm_s16", "pcm_s32"):
        bits = 8 * info.sample_width
        ints = np.frombuffer(raw, f"{e}i{info.sample_width}")
        x = (ints.astype(np.float64 if bits == 32 else np.float32) / float(1 << (bits - 1))).astype(np.float32)
    else:
        x = np.frombuffer(raw, f"{e}f{info.sample_width}")
        bad = ~np.isfinite(x)
        if bad.any():
            first = first_frame + int(np.argmax(bad)) // info.channels
            raise WavError(f"{name}: {int(bad.sum())} non-finite float samples (NaN/Inf), the first in frame "
                           f"{first}; the file is corrupt")
        x = np.clip(x, -1.0, 1.0).astype(np.float32)
    return x if info.channels == 1 else x.reshape(-1, info.channels)


def _open(path: PathLike) -> tuple[BinaryIO, str]:
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode  # before open(): opening a FIFO would block until a writer appears
        if stat.S_ISDIR(mode):
            raise WavError(f"{name}: is a directory, not a WAV file; name a .wav file inside it")
        if not stat.S_ISREG(mode):
            raise WavError(f"{name}: is {_special_kind(mode)}, not a regular file; copy the audio to a .wav file "
                           "first")
        return open(name, "rb"), str(name)
    except FileNotFoundError:
        raise WavError(f"{name}: no such file") from None
    except IsADirectoryError:  # replaced by a folder between stat() and open()
        raise WavError(f"{name}: is a directory, not a WAV file") from None
    except PermissionError:
        raise WavError(f"{name}: permission denied") from None
    except OSError as exc:
        raise WavError(f"{name}: cannot open: {exc.strerror or exc}") from None


def _special_kind(mode: int) -> str:
    """What a non-regular, non-directory file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def special_file_problem(path: PathLike) -> str | None:
    """``None`` for a regular file (or a missing path); else what it is instead ("a directory", "a named pipe
    (FIFO)", ...), without opening it. For callers that check paths before reading them (manifests, preparers)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return "a directory" if stat.S_ISDIR(mode) else _special_kind(mode)


def _read(f: BinaryIO, name: str, samples: bool) -> tuple[_Layout, np.ndarray | None]:
    try:
        size = f.seek(0, io.SEEK_END)
        layout = _parse(f, size, name)
        if not samples:
            return layout, None
        nbytes = layout.info.frames * layout.info.channels * layout.info.sample_width
        return layout, _decode(_read_at(f, layout.data_offset, nbytes), layout, name)
    except OSError as exc:
        raise WavError(f"{name}: read error: {exc.strerror or exc}") from None


def read_wav(path: PathLike) -> tuple[np.ndarray, int]:
    """Read a WAV file.

    Args:
        path: The file.

    Returns:
        ``(samples, sample_rate)``: float32 samples in [-1, 1], shape ``(frames,)`` for mono or
        ``(frames, channels)`` otherwise. PCM is scaled by ``2 ** (bits - 1)`` (8-bit: offset 128 first).

    Raises:
        WavError: Missing file, directory, not a WAV (says what it is instead), corrupt header, unsupported
            encoding (names the format tag), or NaN/Inf samples in a float file.
    """
    f, name = _open(path)
    with f:
        layout, x = _read(f, name, samples=True)
    return x, layout.info.sample_rate


def read_wav_bytes(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Like :func:`read_wav`, for a WAV file held in memory (``name`` is used in error messages)."""
    layout, x = _read(io.BytesIO(data), name, samples=True)
    return x, layout.info.sample_rate


def wav_info(path: PathLike) -> WavInfo:
    """Read only the header of a WAV file (cheap: no samples are decoded). Raises WavError like read_wav."""
    f, name = _open(path)
    with f:
        return _read(f, name, samples=False)[0].info


class WavReader:
    """An open WAV file whose frames are read range by range, so a long recording never sits in memory whole.

    The header is parsed and checked on opening, as :func:`read_wav` does (same :class:`WavError` messages);
    :meth:`read` gives exactly the samples ``read_wav`` would for those frames. Use it as a context manager, or
    call :meth:`close`.

    Attributes:
        info: The header, checked against the file's real size.
        name: The file name used in error messages.
    """

    def __init__(self, path: PathLike) -> None:
        self._file, self.name = _open(path)
        try:
            self._layout = _read(self._file, self.name, samples=False)[0]
        except BaseException:
            self._file.close()
            raise
        self.info: WavInfo = self._layout.info

    def read(self, start: int, frames: int) -> np.ndarray:
        """Frames ``[start, start + frames)`` (cut at the end of the file) as float32 in [-1, 1], shape
        ``(n,)`` for mono or ``(n, channels)``.

        Raises:
            WavError: a read error, or NaN/Inf samples in a float file.
        """
        start = min(max(0, start), self.info.frames)
        n = max(0, min(frames, self.info.frames - start))
        frame_bytes = self.info.channels * self.info.sample_width
        try:
            raw = _read_at(self._file, self._layout.data_offset + start * frame_bytes, n * frame_bytes)
        except OSError as exc:
            raise WavError(f"{self.name}: read error: {exc.strerror or exc}") from None
        return _decode(raw, self._layout, self.name, start)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "WavReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_audio(path: PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Read a WAV file as mono float32 ``(n,)`` at ``sample_rate`` Hz: mean of the channels, then resample."""
    x, sr = read_wav(path)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float64).astype(np.float32)
    return resample(x, sr, sample_rate) if sr != sample_rate else np.ascontiguousarray(x, dtype=np.float32)


# ----------------------------------------------------------------------------------------------- writing


def wav_bytes(samples: np.ndarray, sample_rate: int, sample_width: int | None = None, *,
              float_format: bool = False) -> bytes:
    """Encode samples as a complete WAV file in memory.

    Args:
        samples: Floating-point samples in [-1, 1], shape ``(n,)`` or ``(n, channels)``; values outside are
            clipped, NaN/Inf are refused.
        sample_rate: Frames per second (positive integer).
        sample_width: Bytes per sample: 1, 2 (default), 3 or 4 for PCM; 4 (default) or 8 with ``float_format``.
        float_format: Write IEEE float (format tag 3, with a ``fact`` chunk) instead of PCM.

    Returns:
        The file's bytes: plain PCM (tag 1) or float (tag 3) format, as Python's ``wave`` and every player read.
        PCM is ``round(x * 2 ** (bits - 1))`` saturated to the code range (8-bit: plus 128), so reading it
        back with :func:`read_wav` and writing again is bit-exact.

    Raises:
        ValueError: Bad shape, an integer dtype, non-finite samples, a bad rate or width, or a file over 4 GiB.
    """
    x = np.asarray(samples)
    if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[1] == 0):
        raise ValueError(f"wav: samples must have shape (n,) or (n, channels>=1), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"wav: samples must be floating point in [-1, 1], got dtype {x.dtype} "
                         "(for int16 PCM data divide by 32768 first)")
    if not np.isfinite(x).all():
        raise ValueError(f"wav: samples contain {int((~np.isfinite(x)).sum())} NaN/Inf values")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not 0 < sample_rate < 2**32:
        raise ValueError(f"wav: sample_rate must be a positive integer, got {sample_rate!r}")
    width = sample_width if sample_width is not None else (4 if float_format else 2)
    allowed = _FLOAT_ENCODINGS if float_format else _PCM_ENCODINGS
    if width not in allowed:
        raise ValueError(f"wav: sample_width must be one of {sorted(allowed)} for "
                         f"{'float' if float_format else 'PCM'}, got {sample_width!r}")
    x = x[:, None] if x.ndim == 1 else x
    channels = x.shape[1]
    if channels > 0xFFFF:
        raise ValueError(f"wav: {channels} channels is more than a WAV header can hold")
    x = np.clip(x, -1.0, 1.0)
    if float_format:
        payload = x.astype(f"<f{width}").tobytes()
    elif width == 1:
        payload = np.clip(np.rint(x * 128.0) + 128.0, 0, 255).astype(np.uint8).tobytes()
    else:
        full = float(1 << (8 * width - 1))
        ints = np.clip(np.rint(x.astype(np.float64) * full), -full, full - 1).astype("<i4")
        if width == 3:  # the low three bytes of each little-endian int32
            payload = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        else:
            payload = ints.astype(f"<i{width}").tobytes()
    block_align = channels * width
    fmt = struct.pack("<HHIIHH", _FLOAT if float_format else _PCM, channels, int(sample_rate),
                      int(sample_rate) * block_align, block_align, 8 * width)
    chunks = [b"fmt " + struct.pack("<I", len(fmt) + 2 * float_format) + fmt + b"\x00\x00" * float_format]
    if float_format:
        chunks.append(b"fact" + struct.pack("<II", 4, x.shape[0]))
    chunks.append(b"data" + struct.pack("<I", len(payload) % 2**32) + payload + b"\x00" * (len(payload) & 1))
    riff_size = 4 + sum(len(c) for c in chunks)
    if riff_size > 0xFFFFFFFF:
        raise ValueError(f"wav: {riff_size} bytes is too large for a WAV file (4 GiB limit); split the audio")
    if sample_rate * block_align > 0xFFFFFFFF:
        raise ValueError(f"wav: sample_rate {sample_rate} x {block_align} bytes per frame overflows the header")
    return b"".join([b"RIFF", struct.pack("<I", riff_size), b"WAVE", *chunks])


def _write_all(f: BinaryIO, data: bytes) -> None:
    """Write in 1 MiB blocks (tests patch this to simulate a crash mid-write)."""
    view = memoryview(data)
    for start in range(0, len(view), 1 << 20):
        f.write(view[start : start + (1 << 20)])


def write_wav(path: PathLike, samples: np.ndarray, sample_rate: int, sample_width: int | None = None, *,
              float_format: bool = False) -> None:
    """Write a WAV file atomically (temp file in the same folder, fsync, rename); creates missing folders.

    Arguments are as for :func:`wav_bytes` (sample_width defaults to 2 for PCM, 4 for float). If anything
    fails, the temp file is removed and an existing file at ``path`` is left untouched.
    """
    data = wav_bytes(samples, sample_rate, sample_width, float_format=float_format)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like open()
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
