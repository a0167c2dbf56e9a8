"""Hand-built WAV bytes for tests: every field spelled out, so tests do not trust our own writer."""

from __future__ import annotations

import struct

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"  # after the 2-byte subformat tag


def chunk(cid: bytes, body: bytes, size: int | None = None, pad: bool = True, endian: str = "<") -> bytes:
    """A RIFF chunk: id, size (default len(body)), body, pad byte when the body is odd (unless pad=False)."""
    size = len(body) if size is None else size
    return cid + struct.pack(endian + "I", size) + body + (b"\x00" if pad and len(body) % 2 else b"")


def fmt(tag: int, channels: int, rate: int, bits: int, block_align: int | None = None, endian: str = "<",
        extra: bytes | None = None) -> bytes:
    """A 'fmt ' chunk; ``extra`` (cbSize + extension) is appended after the 16 base bytes."""
    align = channels * bits // 8 if block_align is None else block_align
    body = struct.pack(endian + "HHIIHH", tag, channels, rate, rate * align, align, bits)
    return chunk(b"fmt ", body + (extra or b""), endian=endian)


def extensible_fmt(subtag: int, channels: int, rate: int, bits: int, valid_bits: int | None = None,
                   guid_tail: bytes = GUID_TAIL) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk (40 bytes) with the subformat GUID for ``subtag``."""
    ext = struct.pack("<HHI", 22, valid_bits or bits, (1 << channels) - 1) + struct.pack("<H", subtag) + guid_tail
    return fmt(EXTENSIBLE, channels, rate, bits, extra=ext)


def riff(*chunks: bytes, magic: bytes = b"RIFF", riff_size: int | None = None, endian: str = "<") -> bytes:
    """A RIFF/WAVE file from chunks; riff_size defaults to the correct value."""
    body = b"WAVE" + b"".join(chunks)
    return magic + struct.pack(endian + "I", len(body) if riff_size is None else riff_size) + body


def pcm16_wav(values: list[int], rate: int = 8000, channels: int = 1) -> bytes:
    """A plain 16-bit PCM file with the given integer samples (interleaved)."""
    return riff(fmt(PCM, channels, rate, 16), chunk(b"data", struct.pack(f"<{len(values)}h", *values)))
