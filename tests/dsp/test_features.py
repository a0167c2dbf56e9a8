"""Pure feature functions against independent references (scipy, librosa, numpy.polyfit, brute force)."""
from __future__ import annotations

import itertools

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal

from kwslab.dsp import features as F

SCIPY_NAMES = {"hann": "hann", "hamming": "hamming", "blackman": "blackman", "bartlett": "bartlett",
               "rectangular": "boxcar"}


@pytest.mark.parametrize("name", F.WINDOWS)
@pytest.mark.parametrize("length", [1, 2, 7, 400, 512])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_equal_scipy(name: str, length: int, periodic: bool) -> None:
    ours = F.get_window(name, length, periodic=periodic)
    ref = scipy.signal.get_window(SCIPY_NAMES[name], length, fftbins=periodic)
    assert ours.dtype == np.float64 and ours.shape == (length,)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_window_facts() -> None:
    # Periodic Hann: starts at 0, peaks at 1 in the middle, and its shifted copies at hop N/4 add up to 2.
    w = F.get_window("hann", 16)
    assert w[0] == 0 and w[8] == pytest.approx(1.0)
    np.testing.assert_allclose(w + np.roll(w, 4) + np.roll(w, 8) + np.roll(w, 12), 2.0)
    np.testing.assert_allclose(F.get_window("hann", 15, periodic=False), F.get_window("hann", 15, periodic=False)[::-1])
    with pytest.raises(ValueError, match="unknown window 'kaiser'"):
        F.get_window("kaiser", 8)


def test_frame_and_center_pad() -> None:
    y = np.arange(20.0)
    frames = F.frame(y, 8, 3)
    np.testing.assert_array_equal(frames, librosa.util.frame(y, frame_length=8, hop_length=3).T)
    assert not frames.flags.writeable
    np.testing.assert_array_equal(F.center_pad(y, 8, "reflect")[:4], [4.0, 3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="frame_length=30"):
        F.frame(y, 30, 3)
    with pytest.raises(ValueError, match="pad_mode"):
        F.center_pad(y, 8, "wrap")


@pytest.mark.parametrize("n_fft,win_length,hop,center,pad_mode,power,window", [
    (512, None, 160, True, "constant", 2.0, "hann"),
    (400, 300, 100, False, "constant", 1.0, "hamming"),
    (256, None, 64, True, "reflect", 2.0, "blackman"),
])
def test_spectrogram_equals_librosa_stft(n_fft, win_length, hop, center, pad_mode, power, window,
                                         rng: np.random.Generator) -> None:
    y = rng.standard_normal(3000)
    ours = F.spectrogram(y, n_fft, hop, win_length, window, center, pad_mode, power)
    ref = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, win_length=win_length, window=window,
                              center=center, pad_mode=pad_mode)) ** power
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9 * ref.max())


def test_mel_scale_equals_librosa() -> None:
    hz = np.array([0.0, 55.0, 500.0, 999.0, 1000.0, 1001.0, 4000.0, 11025.0])
    for htk in (False, True):
        np.testing.assert_allclose(F.hz_to_mel(hz, htk), librosa.hz_to_mel(hz, htk=htk), rtol=1e-12)
        mels = F.hz_to_mel(hz, htk)
        np.testing.assert_allclose(F.mel_to_hz(mels, htk), hz, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(F.mel_to_hz(mels, htk), librosa.mel_to_hz(mels, htk=htk), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(16000, 512, 40, 0.0, None), (8000, 256, 23, 20.0, 3800.0),
                                                      (16000, 400, 64, 60.0, 7600.0), (22050, 2048, 128, 0.0, None)])
@pytest.mark.parametrize("htk,norm", list(itertools.product([False, True], ["slaney", None])))
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels, fmin, fmax, htk, norm) -> None:
    ours = F.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
                              dtype=np.float64)
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12 * ref.max())
    with pytest.raises(ValueError, match="norm"):
        F.mel_filterbank(sr, n_fft, n_mels, norm="l2")


@pytest.mark.parametrize("top_db", [80.0, 30.0, None])
def test_power_to_db_equals_librosa(top_db, rng: np.random.Generator) -> None:
    spec = rng.random((10, 20)) ** 8
    spec[0, 0] = 0.0
    np.testing.assert_allclose(F.power_to_db(spec, top_db=top_db), librosa.power_to_db(spec, top_db=top_db),
                               rtol=1e-12)
    np.testing.assert_allclose(F.power_to_db(spec, ref=0.5), librosa.power_to_db(spec, ref=0.5), rtol=1e-12)


def test_dct_matrix_equals_scipy_and_is_orthonormal(rng: np.random.Generator) -> None:
    x = rng.standard_normal((40, 7))
    np.testing.assert_allclose(F.dct_matrix(13, 40) @ x, scipy.fft.dct(x, type=2, norm="ortho", axis=0)[:13],
                               atol=1e-12)
    full = F.dct_matrix(40, 40)
    np.testing.assert_allclose(full @ full.T, np.eye(40), atol=1e-12)


def test_lifter_weights_match_librosa(rng: np.random.Generator) -> None:
    log_mel = rng.standard_normal((40, 5))
    plain = librosa.feature.mfcc(S=log_mel, n_mfcc=13)
    liftered = librosa.feature.mfcc(S=log_mel, n_mfcc=13, lifter=22)
    np.testing.assert_allclose(plain * F.lifter_weights(13, 22)[:, None], liftered, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(F.lifter_weights(13, 0), np.ones(13))


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("width", [3, 5, 9])
@pytest.mark.parametrize("frames", [9, 10, 57])
def test_delta_equals_librosa(order: int, width: int, frames: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal((6, frames)).cumsum(axis=1)
    ref = librosa.feature.delta(x, width=width, order=order, mode="interp")
    np.testing.assert_allclose(F.delta(x, width, order), ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 8])
def test_delta_with_fewer_frames_than_width_fits_all_frames(frames: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, frames))
    t = np.arange(frames, dtype=float)
    for order in (1, 2):
        out = F.delta(x, 9, order)
        assert out.shape == x.shape
        for row, got in zip(x, out):
            if frames <= order:
                expected = 0.0
            else:
                poly = np.polyder(np.polyfit(t, row, order), order)
                expected = np.polyval(poly, 0.0)  # constant: degree-order fit differentiated order times
            np.testing.assert_allclose(got, expected, atol=1e-10)


def test_delta_of_a_line_is_its_slope() -> None:
    x = np.vstack([2.0 * np.arange(30) + 1.0, 0.5 * np.arange(30) ** 2])
    np.testing.assert_allclose(F.delta(x, 9, 1)[0], 2.0, atol=1e-12)
    np.testing.assert_allclose(F.delta(x, 9, 2)[1], 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="width"):
        F.delta(x, 4)


def test_delta_writes_into_out(rng: np.random.Generator) -> None:
    x = rng.standard_normal((4, 30)).astype(np.float32)
    out = np.empty((8, 30), np.float32)
    assert F.delta(x, 9, 2, out=out[4:]) is not None
    np.testing.assert_allclose(out[4:], librosa.feature.delta(x.astype(np.float64), order=2), rtol=1e-5, atol=1e-6)


def test_cmvn_keeps_float32(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 50)).astype(np.float32) * 5 + 2
    out = F.cmvn(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.std(axis=1), 1.0, rtol=1e-5)


def test_cmvn(rng: np.random.Generator) -> None:
    x = rng.standard_normal((5, 80)) * np.arange(1, 6)[:, None] + 10.0
    x[4] = 3.0  # a constant row
    out = F.cmvn(x)
    np.testing.assert_allclose(out[:4].mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:4].std(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(out[4], 0.0)


def test_pad_or_crop() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(F.pad_or_crop(x, 2), x[:, :2])
    padded = F.pad_or_crop(x, 6, value=np.array([-1.0, -2.0, -3.0]))
    assert padded.dtype == np.float32 and padded.shape == (3, 6)
    np.testing.assert_array_equal(padded[:, :4], x)
    np.testing.assert_array_equal(padded[:, 4:], [[-1, -1], [-2, -2], [-3, -3]])
    np.testing.assert_array_equal(F.pad_or_crop(x, 5, 7.0)[:, 4], 7.0)
    with pytest.raises(ValueError, match="num_frames"):
        F.pad_or_crop(x, 0)


def test_block_power_is_the_mean_square_of_whole_blocks() -> None:
    from kwslab.dsp.features import block_power

    y = np.array([1.0, -1.0, 2.0, 2.0, 3.0], dtype=np.float32)  # the trailing 3.0 is a partial block
    np.testing.assert_array_equal(block_power(y, 2), [1.0, 4.0])
    assert block_power(y, 2).dtype == np.float64
    assert block_power(y, 8).size == 0
