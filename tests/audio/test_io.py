"""kwslab.audio.io on good files: every encoding against Python's `wave` module or hand-built bytes, round trips,
atomic writes, load_audio and real FSDD recordings."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import (WavError, WavReader, load_audio, read_wav, read_wav_bytes, resample, wav_bytes, wav_info,
                          write_wav)
from kwslab.audio import io as audio_io

from .wavbuild import EXTENSIBLE, FLOAT, GUID_TAIL, PCM, chunk, extensible_fmt, fmt, riff

FSDD = Path(os.environ.get("KWSLAB_FSDD", Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fsdd"
                           / "recordings"))
ENCODING = {1: "pcm_u8", 2: "pcm_s16", 3: "pcm_s24", 4: "pcm_s32"}


def random_codes(rng: np.random.Generator, width: int, shape: tuple[int, ...]) -> np.ndarray:
    """Random integer sample codes covering the full range of a PCM width, extremes included."""
    lo, hi = (0, 255) if width == 1 else (-(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1)
    codes = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    codes.flat[:2] = [lo, hi]
    return codes


def codes_to_bytes(codes: np.ndarray, width: int) -> bytes:
    """Little-endian interleaved sample bytes, built with int.to_bytes (independent of the package)."""
    signed = width != 1
    return b"".join(int(c).to_bytes(width, "little", signed=signed) for c in codes.reshape(-1))


def expected_float(codes: np.ndarray, width: int) -> np.ndarray:
    if width == 1:
        return ((codes - 128) / 128.0).astype(np.float32)
    return (codes / float(1 << (8 * width - 1))).astype(np.float32)


# ------------------------------------------------------------------------------------------ reading encodings


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_written_by_wave_module(tmp_path: Path, width: int, channels: int) -> None:
    rng = np.random.default_rng(width * 10 + channels)
    codes = random_codes(rng, width, (101, channels))
    path = tmp_path / "x.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(22050)
        w.writeframes(codes_to_bytes(codes, width))
    x, sr = read_wav(path)
    want = expected_float(codes, width)
    assert sr == 22050 and x.dtype == np.float32
    assert x.shape == ((101,) if channels == 1 else (101, channels))
    np.testing.assert_array_equal(x, want[:, 0] if channels == 1 else want)
    assert x.min() >= -1.0 and x.max() <= 1.0
    info = wav_info(path)
    assert (info.sample_rate, info.channels, info.encoding, info.sample_width, info.frames) == (
        22050, channels, ENCODING[width], width, 101)
    assert info.duration == pytest.approx(101 / 22050) and info.notes == ()


@pytest.mark.parametrize("width,dtype", [(4, "<f4"), (8, "<f8")])
def test_ieee_float_hand_built(width: int, dtype: str) -> None:
    values = np.array([[0.0, -0.25], [0.5, 1.0], [-1.0, 0.125], [1.5, -7.0]], dtype=dtype)  # last row out of range
    data = riff(fmt(FLOAT, 2, 16000, 8 * width, extra=b"\x00\x00"), chunk(b"fact", struct.pack("<I", 4)),
                chunk(b"data", values.tobytes()))
    x, sr = read_wav_bytes(data)
    assert sr == 16000 and x.dtype == np.float32 and x.shape == (4, 2)
    np.testing.assert_array_equal(x, np.clip(values, -1, 1).astype(np.float32))  # beyond [-1, 1] is clipped


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_samples_raise(bad: float) -> None:
    values = np.array([0.1, 0.2, bad, 0.3], dtype="<f4")
    data = riff(fmt(FLOAT, 1, 8000, 32), chunk(b"data", values.tobytes()))
    with pytest.raises(WavError, match=r"broken\.wav: 1 non-finite float samples.*frame 2"):
        read_wav_bytes(data, "broken.wav")


def test_pcm_u8_hand_built() -> None:
    data = riff(fmt(PCM, 1, 8000, 8), chunk(b"data", bytes([0, 64, 128, 192, 255])))  # odd length: pad byte
    x, _ = read_wav_bytes(data)
    np.testing.assert_array_equal(x, np.array([-1.0, -0.5, 0.0, 0.5, 127 / 128], np.float32))


@pytest.mark.parametrize("subtag,bits,valid,raw,want", [
    (PCM, 16, 16, struct.pack("<3h", -32768, 0, 16384), [-1.0, 0.0, 0.5]),
    (PCM, 24, 20, b"\x00\x00\x80" + b"\x00\x00\x40" + b"\xf0\xff\xff", [-1.0, 0.5, -16 / 2**23]),
    (PCM, 32, 32, struct.pack("<2i", -(2**31), 2**30), [-1.0, 0.5]),
    (FLOAT, 32, 32, struct.pack("<2f", 0.25, -0.75), [0.25, -0.75]),
    (FLOAT, 64, 64, struct.pack("<2d", 0.25, -0.75), [0.25, -0.75]),
])
def test_extensible(subtag: int, bits: int, valid: int, raw: bytes, want: list[float]) -> None:
    data = riff(extensible_fmt(subtag, 1, 48000, bits, valid), chunk(b"data", raw))
    x, sr = read_wav_bytes(data)
    assert sr == 48000
    np.testing.assert_array_equal(x, np.array(want, np.float32))


def test_extensible_stereo_and_info(tmp_path: Path) -> None:
    raw = struct.pack("<4h", 1, 2, 3, 4)
    (tmp_path / "e.wav").write_bytes(riff(extensible_fmt(PCM, 2, 44100, 16), chunk(b"data", raw)))
    x, _ = read_wav(tmp_path / "e.wav")
    np.testing.assert_array_equal(x, np.array([[1, 2], [3, 4]], np.float32) / 32768)
    assert wav_info(tmp_path / "e.wav").encoding == "pcm_s16"


def test_rifx_big_endian(tmp_path: Path) -> None:
    e = ">"
    data16 = riff(fmt(PCM, 1, 8000, 16, endian=e), chunk(b"data", struct.pack(">2h", 16384, -32768), endian=e),
                  magic=b"RIFX", endian=e)
    x, sr = read_wav_bytes(data16)
    assert sr == 8000
    np.testing.assert_array_equal(x, np.array([0.5, -1.0], np.float32))
    data24 = riff(fmt(PCM, 1, 8000, 24, endian=e), chunk(b"data", b"\x40\x00\x00\xff\xff\xf0", endian=e),
                  magic=b"RIFX", endian=e)
    x, _ = read_wav_bytes(data24)
    np.testing.assert_array_equal(x, np.array([0.5, -16 / 2**23], np.float32))
    (tmp_path / "be.wav").write_bytes(data24)
    assert wav_info(tmp_path / "be.wav").container == "RIFX"


def test_rf64_with_ds64_sizes() -> None:
    samples = struct.pack("<3h", 100, -100, 200)
    ds64 = chunk(b"ds64", struct.pack("<QQQI", 0, len(samples), 3, 0))
    data = riff(ds64, fmt(PCM, 1, 8000, 16), chunk(b"data", samples, size=0xFFFFFFFF),
                magic=b"RF64", riff_size=0xFFFFFFFF)
    data += chunk(b"LIST", b"INFOjunk")  # after the real data: the ds64 size keeps it out of the samples
    x, _ = read_wav_bytes(data)
    np.testing.assert_array_equal(x, np.array([100, -100, 200], np.float32) / 32768)


def test_fsdd_recordings_match_wave_module() -> None:
    files = sorted(FSDD.glob("*.wav"))[:20] if FSDD.is_dir() else []
    if not files:
        pytest.skip(f"FSDD recordings not found at {FSDD}")
    for path in files:
        with wave.open(str(path)) as w:
            ref = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
            rate = w.getframerate()
        x, sr = read_wav(path)
        assert sr == rate == 8000
        np.testing.assert_array_equal(x, ref.astype(np.float32))


# ------------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_write_pcm_read_by_wave_module(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(width)
    x = rng.uniform(-1.2, 1.2, size=(500, 2))  # some beyond full scale: clipped
    x[:4, 0] = [1.0, -1.0, 0.0, 0.5]
    write_wav(tmp_path / "w.wav", x, 11025, sample_width=width)
    with wave.open(str(tmp_path / "w.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (2, width, 11025, 500)
        raw = w.readframes(500)
    codes = np.array([int.from_bytes(raw[i:i + width], "little", signed=width != 1)
                      for i in range(0, len(raw), width)]).reshape(500, 2)
    full = 1 << (8 * width - 1)
    want = np.clip(np.round(np.clip(x, -1, 1) * full), -full, full - 1) + (128 if width == 1 else 0)
    np.testing.assert_array_equal(codes, want.astype(np.int64))


def test_write_rounds_to_nearest_code() -> None:
    x = np.array([0.4, 0.6, -0.4, -0.6, 1.4, -1.6]) / 32768
    y, _ = read_wav_bytes(wav_bytes(x, 8000))
    np.testing.assert_array_equal(y * 32768, [0, 1, 0, -1, 1, -2])


@pytest.mark.parametrize("width,float_format", [(1, False), (2, False), (3, False), (4, False), (4, True),
                                                (8, True), (None, True), (None, False)])
def test_round_trip_every_width(tmp_path: Path, width: int | None, float_format: bool) -> None:
    rng = np.random.default_rng(7)
    for shape in [(257,), (128, 3), (0,)]:
        x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        path = tmp_path / "r.wav"
        write_wav(path, x, 16000, width, float_format=float_format)
        y, sr = read_wav(path)
        assert sr == 16000 and y.shape == x.shape and y.dtype == np.float32
        bits = 8 * (width or (4 if float_format else 2))
        top = 1.0 if float_format else 1 - 2.0 ** (1 - bits)  # PCM's largest positive value
        tol = 0.0 if float_format else 2.0 ** (1 - bits) / 2 + 1e-7  # half a code step
        np.testing.assert_allclose(y, np.minimum(x, top), atol=tol, rtol=0)
        again = tmp_path / "again.wav"
        write_wav(again, y, 16000, width, float_format=float_format)
        assert again.read_bytes() == path.read_bytes()  # read -> write is bit-exact
        assert path.read_bytes() == wav_bytes(x, 16000, width, float_format=float_format)
        info = wav_info(path)
        assert info.frames == shape[0] and info.channels == (shape[1] if len(shape) == 2 else 1)


def test_float_file_has_fact_chunk_and_wave_reads_pcm_header() -> None:
    data = wav_bytes(np.zeros(3), 8000, float_format=True)
    assert struct.unpack("<H", data[20:22])[0] == FLOAT and b"fact" in data
    assert struct.unpack("<H", wav_bytes(np.zeros(3), 8000)[20:22])[0] == PCM != EXTENSIBLE


@pytest.mark.parametrize("kwargs,match", [
    (dict(samples=np.zeros((3, 2, 2))), "shape"),
    (dict(samples=np.zeros((3, 0))), "shape"),
    (dict(samples=np.array([1, 2], np.int16)), "floating point"),
    (dict(samples=np.array([0.0, np.nan])), "NaN"),
    (dict(sample_rate=0), "sample_rate"),
    (dict(sample_rate=8000.5), "sample_rate"),
    (dict(sample_width=5), "sample_width"),
    (dict(sample_width=2, float_format=True), "sample_width"),
])
def test_write_rejects_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = dict(samples=np.zeros(4), sample_rate=8000) | kwargs
    with pytest.raises(ValueError, match=match):
        write_wav(tmp_path / "bad.wav", **args)
    assert list(tmp_path.iterdir()) == []


def _fail_halfway(f, data: bytes) -> None:
    f.write(data[: len(data) // 2])
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("failure", ["write", "replace", "interrupt"])
def test_atomic_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    path = tmp_path / "keep.wav"
    write_wav(path, np.full(100, 0.25), 8000)
    before = path.read_bytes()
    if failure == "write":
        monkeypatch.setattr(audio_io, "_write_all", _fail_halfway)
    elif failure == "replace":
        monkeypatch.setattr(audio_io.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("rename failed")))
    else:
        monkeypatch.setattr(audio_io.os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError):
        write_wav(path, np.full(5000, -0.5), 16000)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]  # no temp file left behind


def test_write_creates_folders_and_respects_umask(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "new.wav"
    write_wav(path, np.zeros(10), 8000)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert read_wav(path)[0].shape == (10,)


# ---------------------------------------------------------------------------------------------- load_audio


def test_load_audio_mixes_to_mono_and_resamples(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), np.full(8000, 0.25)
    write_wav(tmp_path / "st.wav", np.stack([left, right], axis=1), 8000, float_format=True)
    y = load_audio(tmp_path / "st.wav", sample_rate=16000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    mono = ((left.astype(np.float32) + np.float32(0.25)) / 2).astype(np.float32)
    np.testing.assert_allclose(y, resample(mono, 8000, 16000), atol=1e-6)
    y8 = load_audio(tmp_path / "st.wav", sample_rate=8000)  # same rate: mix only
    np.testing.assert_allclose(y8, mono, atol=1e-7)
    with pytest.raises(WavError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


@pytest.mark.parametrize("width,channels", [(2, 1), (3, 2), (None, 2)])
def test_wav_reader_ranges_equal_read_wav(tmp_path: Path, width: int | None, channels: int) -> None:
    rng = np.random.default_rng(width or 0)
    x = (0.5 * rng.standard_normal((1001, channels) if channels > 1 else 1001)).astype(np.float32)
    write_wav(tmp_path / "a.wav", x, 8000, width, float_format=width is None)
    whole, _ = read_wav(tmp_path / "a.wav")
    with WavReader(tmp_path / "a.wav") as wav:
        assert wav.info == wav_info(tmp_path / "a.wav")
        pieces = [wav.read(start, 300) for start in range(0, wav.info.frames, 300)]
        np.testing.assert_array_equal(np.concatenate(pieces), whole)
        np.testing.assert_array_equal(wav.read(990, 300), whole[990:])  # cut at the end of the file
        assert len(wav.read(2000, 10)) == 0
    (tmp_path / "bad.wav").write_bytes(b"ID3 this is an mp3")
    with pytest.raises(WavError) as got:
        WavReader(tmp_path / "bad.wav")
    with pytest.raises(WavError) as want:
        read_wav(tmp_path / "bad.wav")
    assert str(got.value) == str(want.value)


def test_guid_constant_matches_package() -> None:
    assert GUID_TAIL[6:] == audio_io._GUID_TAIL  # the helper spells the GUID out independently


def test_audio_package_imports_no_heavy_libraries() -> None:
    code = ("import sys, kwslab.audio, kwslab.inspect; "
            "bad = [m for m in ('torch', 'lightning', 'scipy', 'librosa', 'soundfile') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
