"""kwslab.audio.io on real-world oddities and broken files: tolerated quirks give the right samples, everything
else raises WavError naming the file and the problem, never struct.error/IndexError/MemoryError, never a hang."""

from __future__ import annotations

import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import WavError, read_wav, read_wav_bytes, wav_info

from .wavbuild import EXTENSIBLE, PCM, chunk, extensible_fmt, fmt, pcm16_wav, riff

VALUES = [1000, -2000, 3000, -4000, 5000, -6000]
WANT = np.array(VALUES, np.float32) / 32768
SAMPLES = struct.pack("<6h", *VALUES)
FMT = fmt(PCM, 1, 8000, 16)
LIST = chunk(b"LIST", b"INFOISFT\x0e\x00\x00\x00Lavf60.16.100\x00")


def info_of(tmp_path: Path, data: bytes):
    path = tmp_path / "f.wav"
    path.write_bytes(data)
    return wav_info(path)


# ----------------------------------------------------------------------------------------- tolerated quirks


@pytest.mark.parametrize("riff_size,data_size", [(0xFFFFFFFF, 0xFFFFFFFF), (0, 0), (0xFFFFFFFF, 0), (36, 0)])
def test_streamed_header_reads_to_end(tmp_path: Path, riff_size: int, data_size: int) -> None:
    data = riff(FMT, b"data" + struct.pack("<I", data_size) + SAMPLES, riff_size=riff_size)
    x, sr = read_wav_bytes(data)
    np.testing.assert_array_equal(x, WANT)
    info = info_of(tmp_path, data)
    assert info.frames == 6 and any("streamed" in n for n in info.notes)


def test_openai_style_streamed_wav_with_odd_tail() -> None:
    # OpenAI TTS: RIFF and data sizes 0xFFFFFFFF; a stream cut mid-sample leaves half a frame at the end.
    data = riff(FMT, b"data\xff\xff\xff\xff" + SAMPLES + b"\x07", riff_size=0xFFFFFFFF)
    np.testing.assert_array_equal(read_wav_bytes(data)[0], WANT)


def test_zero_data_size_followed_by_chunk_is_empty_not_streamed() -> None:
    x, sr = read_wav_bytes(riff(FMT, chunk(b"data", b""), LIST))
    assert x.shape == (0,) and x.dtype == np.float32 and sr == 8000


def test_list_chunk_after_data_is_not_audio() -> None:
    x, _ = read_wav_bytes(riff(FMT, chunk(b"data", SAMPLES), LIST, chunk(b"id3 ", b"ID3\x04" + b"\x00" * 7)))
    np.testing.assert_array_equal(x, WANT)


def test_junk_fact_and_odd_chunks_before_data() -> None:
    odd = chunk(b"bext", b"abc")  # 3-byte body + pad byte
    assert len(odd) == 12
    data = riff(chunk(b"JUNK", b"\x00" * 28), FMT, odd, chunk(b"fact", struct.pack("<I", 6)), chunk(b"data", SAMPLES))
    np.testing.assert_array_equal(read_wav_bytes(data)[0], WANT)


def test_odd_chunk_without_pad_byte() -> None:
    data = riff(FMT, chunk(b"note", b"abc", pad=False), chunk(b"data", SAMPLES))
    np.testing.assert_array_equal(read_wav_bytes(data)[0], WANT)


def test_odd_data_chunk_with_pad_then_list() -> None:
    data = riff(fmt(PCM, 1, 8000, 8), chunk(b"data", bytes([0, 128, 255])), LIST)
    np.testing.assert_array_equal(read_wav_bytes(data)[0], np.array([-1, 0, 127 / 128], np.float32))


def test_fmt_after_data() -> None:
    np.testing.assert_array_equal(read_wav_bytes(riff(chunk(b"data", SAMPLES), FMT))[0], WANT)


def test_truncated_data_returns_whole_frames(tmp_path: Path) -> None:
    stereo = riff(fmt(PCM, 2, 8000, 16), chunk(b"data", SAMPLES))
    cut = stereo[:-3]  # 2.5 frames of 3 remain... the last whole frames only
    x, _ = read_wav_bytes(cut)
    np.testing.assert_array_equal(x, WANT[:4].reshape(2, 2))
    notes = info_of(tmp_path, cut).notes
    assert any("truncated" in n for n in notes) and any("partial last frame" in n for n in notes)


def test_huge_data_size_on_small_file_no_memory_blowup() -> None:
    data = riff(FMT, b"data" + struct.pack("<I", 0xFFFFFFF0) + SAMPLES)  # claims ~4 GB, file is 56 bytes
    tracemalloc.start()
    start = time.perf_counter()
    x, _ = read_wav_bytes(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 1 << 20
    np.testing.assert_array_equal(x, WANT)


def test_huge_chunk_after_data_is_ignored() -> None:
    data = riff(FMT, chunk(b"data", SAMPLES), b"LIST" + struct.pack("<I", 0xFFFFFF00) + b"INFO")
    np.testing.assert_array_equal(read_wav_bytes(data)[0], WANT)


def test_trailing_garbage_after_data_is_ignored() -> None:
    data = riff(FMT, chunk(b"data", SAMPLES)) + b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"
    np.testing.assert_array_equal(read_wav_bytes(data)[0], WANT)


# ------------------------------------------------------------------------------------------- broken headers


@pytest.mark.parametrize("data,match", [
    (b"", r"empty file \(0 bytes\)"),
    (b"RIFF\x24\x00\x00", "truncated header: the file is only 7 bytes"),
    (riff(FMT, chunk(b"data", SAMPLES))[:30], "'fmt ' at byte 12 claims 16 bytes but only 10 remain"),
    (riff(FMT, chunk(b"data", SAMPLES))[:36], "no 'data' chunk"),
    (riff(chunk(b"data", SAMPLES)), r"no 'fmt ' chunk \(chunks found: 'data'\)"),
    (riff(FMT, LIST), r"no 'data' chunk \(chunks found: 'fmt ', 'LIST'\)"),
    (riff(), r"no 'fmt ' and 'data' chunk \(chunks found: none\)"),
    (riff(chunk(b"JUNK", b"\x00" * 4, size=0x7FFFFFFF), FMT, chunk(b"data", SAMPLES)), "'JUNK' .* claims 2147483647"),
    (riff(FMT, b"\x00\x01\x02\x03\x04\x05\x06\x07", chunk(b"data", SAMPLES)), "corrupt chunk header at byte 36"),
    (riff(fmt(PCM, 0, 8000, 16, block_align=0), chunk(b"data", SAMPLES)), "0 channels"),
    (riff(fmt(PCM, 1, 0, 16), chunk(b"data", SAMPLES)), "sample rate of 0 Hz"),
    (riff(fmt(PCM, 2, 8000, 16, block_align=6), chunk(b"data", SAMPLES)), "block_align is 6 but 2 channel"),
    (riff(chunk(b"fmt ", b"\x01\x00\x01\x00"), chunk(b"data", SAMPLES)), "'fmt ' chunk is 4 bytes, too short"),
    (riff(fmt(EXTENSIBLE, 1, 8000, 16, extra=b"\x00\x00"), chunk(b"data", SAMPLES)), "EXTENSIBLE .* needs 40"),
    (riff(extensible_fmt(PCM, 1, 8000, 16, guid_tail=b"\x00" * 14), chunk(b"data", SAMPLES)), "unknown subformat"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "RIFF file of type b'AVI ', not WAVE"),
])
def test_broken_header(data: bytes, match: str) -> None:
    with pytest.raises(WavError, match=r"^clip\.wav: .*" + match):
        read_wav_bytes(data, "clip.wav")


@pytest.mark.parametrize("tag,bits,name", [(6, 8, "A-law"), (7, 8, "mu-law"), (2, 4, "Microsoft ADPCM"),
                                           (0x11, 4, "IMA ADPCM"), (0x55, 16, "MPEG Layer 3"), (0x1234, 16, "unknown")])
def test_unsupported_format_tag_is_named(tag: int, bits: int, name: str) -> None:
    data = riff(fmt(tag, 1, 8000, bits, block_align=1), chunk(b"data", b"\x00" * 8))
    with pytest.raises(WavError, match=rf"unsupported encoding: format tag 0x{tag:04X} \({name}"):
        read_wav_bytes(data, "c.wav")


@pytest.mark.parametrize("tag,bits", [(PCM, 12), (PCM, 20), (PCM, 40), (3, 16), (3, 24)])
def test_unsupported_bit_depth(tag: int, bits: int) -> None:
    data = riff(fmt(tag, 1, 8000, bits, block_align=2), chunk(b"data", b"\x00" * 8))
    with pytest.raises(WavError, match=rf"unsupported .* bit depth {bits} \(format tag 0x000{tag}"):
        read_wav_bytes(data, "c.wav")


def test_extensible_alaw_names_subformat() -> None:
    data = riff(extensible_fmt(6, 1, 8000, 8), chunk(b"data", b"\x00" * 8))
    with pytest.raises(WavError, match=r"extensible subformat 0x0006 \(A-law\)"):
        read_wav_bytes(data)


# --------------------------------------------------------------------------------------- not a WAV at all


@pytest.mark.parametrize("data,match", [
    (b"ID3\x04\x00\x00\x00\x00\x00\x21" + b"\x00" * 40, r"looks like MP3 \(ID3 tag\); request WAV output"),
    (b"\xff\xfb\x90\x64" + b"\x00" * 40, r"looks like MP3 \(MPEG audio frame sync\)"),
    (b"\xff\xf1\x50\x80" + b"\x00" * 40, r"looks like AAC \(ADTS"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead", "looks like OGG Opus"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis", r"looks like OGG \(Opus or Vorbis\)"),
    (b"fLaC\x00\x00\x00\x22" + b"\x00" * 34, "looks like FLAC"),
    (b"FORM\x00\x00\x00\x10AIFFCOMM", "looks like AIFF"),
    (b"\x00\x00\x00\x20ftypM4A ", "looks like MP4/M4A"),
    (b'\xef\xbb\xbf  {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}',
     r"looks like JSON text \(an API error body\?\), \d+ bytes; open it as text"),
    (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", r"looks like HTML text \(an error page\?\)"),
    (b"hello, this is not audio\n", "looks like plain text, 25 bytes; contents not shown"),
    (bytes(range(200, 256)), "no RIFF/WAVE header .*c8 c9 ca"),
])
def test_not_a_wav_says_what_it_is(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "speech.wav"
    path.write_bytes(data)
    with pytest.raises(WavError, match=match) as err:
        read_wav(path)
    assert str(err.value).startswith(f"{path}: ")
    with pytest.raises(WavError, match=match):
        wav_info(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(WavError, match=rf"^{tmp_path}/nope\.wav: no such file$"):
        read_wav(tmp_path / "nope.wav")
    with pytest.raises(WavError, match=rf"^{tmp_path}: is a directory"):
        read_wav(tmp_path)
    with pytest.raises(WavError, match="is a directory"):
        wav_info(str(tmp_path))
    assert issubclass(WavError, ValueError)


# ------------------------------------------------------------------------------------------------ fuzzing


def _check_result(data: bytes) -> bool:
    """True if ``data`` was read, False if it raised WavError; anything else fails the test."""
    try:
        x, sr = read_wav_bytes(data, "fuzz.wav")
    except WavError as exc:
        assert str(exc).startswith("fuzz.wav: ")
        return False
    assert x.dtype == np.float32 and sr > 0 and x.ndim in (1, 2)
    assert np.isfinite(x).all() and np.abs(x).max(initial=0.0) <= 1.0
    assert x.size <= len(data)  # never more samples than the bytes present could hold
    return True


def test_every_truncation_raises_wav_error_or_reads() -> None:
    good = riff(chunk(b"JUNK", b"\x00" * 6), fmt(PCM, 2, 8000, 16), chunk(b"data", SAMPLES + SAMPLES[:2]), LIST)
    outcomes = [_check_result(good[:n]) for n in range(len(good) + 1)]
    assert outcomes[-1] and not outcomes[40]  # whole file reads; a cut inside fmt does not
    body = good.index(b"data") + 8
    assert outcomes == [n >= body for n in range(len(good) + 1)]  # reads once the data chunk's header is whole


def test_random_corruption_raises_wav_error_or_reads() -> None:
    rng = np.random.default_rng(1234)
    bases = [pcm16_wav(VALUES), riff(extensible_fmt(3, 2, 8000, 32), chunk(b"data", b"\x00" * 32), LIST),
             riff(fmt(PCM, 1, 8000, 24), chunk(b"data", b"\x01\x02\x03" * 5), LIST)]
    outcomes = []
    for _ in range(600):
        data = bytearray(bases[rng.integers(len(bases))])
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            data[pos] = rng.integers(256)
        outcomes.append(_check_result(bytes(data)))
    assert 0 < sum(outcomes) < len(outcomes)  # both outcomes exercised


# ------------------------------------------------------------------------ issue 18: bad input never echoed or hung


@pytest.mark.parametrize("data, kind", [
    (b"OPENAI_API_KEY=sk-secret123\nOTHER=1\n", "KEY=value lines"),
    (b"# notes\nOPENAI_API_KEY=sk-secret123\n", "plain text"),
    (b'{"error": "bad key sk-secret123"}', "JSON text"),
    (b"<html><title>sk-secret123</title></html>", "HTML text"),
])
def test_text_passed_as_audio_is_described_without_quoting_it(tmp_path: Path, data: bytes, kind: str) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    for read in (read_wav, wav_info):
        with pytest.raises(WavError) as err:
            read(path)
        message = str(err.value)
        assert message.startswith(f"{path}: not a WAV file: looks like ") and kind in message
        assert "secret" not in message and "OPENAI" not in message and "\n" not in message


@pytest.mark.parametrize("rate", [1, 999, 384_001, 0x7FFFFFFF])
def test_sample_rate_outside_1k_to_384k_is_refused_naming_the_file_and_rate(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "odd.wav"
    path.write_bytes(riff(fmt(PCM, 1, rate, 16), chunk(b"data", SAMPLES * 1000)))
    for read in (read_wav, wav_info):
        with pytest.raises(WavError, match=rf"^{path}: the header says a sample rate of {rate} Hz, outside the "
                                           r"1000\.\.384000 Hz"):
            read(path)


@pytest.mark.parametrize("rate", [1000, 8000, 384_000])
def test_sample_rates_at_the_bounds_still_read(rate: int) -> None:
    x, sr = read_wav_bytes(riff(fmt(PCM, 1, rate, 16), chunk(b"data", SAMPLES)))
    assert sr == rate and np.allclose(x, WANT)


def test_a_fifo_named_wav_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    import threading

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock() -> None:  # a reader that opened the FIFO would wait for a writer forever: be one, late
        if not done.wait(5):
            os.close(os.open(fifo, os.O_WRONLY))

    threading.Thread(target=unblock, daemon=True).start()
    try:
        for read in (read_wav, wav_info):
            with pytest.raises(WavError, match=rf"^{fifo}: is a named pipe \(FIFO\), not a regular file"):
                read(fifo)
    finally:
        done.set()


def test_a_directory_named_wav_says_directory_not_missing(tmp_path: Path) -> None:
    folder = tmp_path / "clip.wav"
    folder.mkdir()
    with pytest.raises(WavError, match=rf"^{folder}: is a directory, not a WAV file") as err:
        read_wav(folder)
    assert "no such file" not in str(err.value)
