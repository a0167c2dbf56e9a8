"""Pure feature functions over NumPy arrays: framing, windows, power spectrum, mel filter bank, dB, DCT, liftering,
deltas, CMVN and pad/crop.

Layouts: ``frame`` and ``power_spectrum`` work frames-first, ``(frames, samples)`` / ``(frames, bins)``, because
``rfft`` along the last, contiguous axis is fastest. Everything that returns features is ``(features, frames)`` as
in librosa, so ``mel_filterbank(...) @ spectrogram(...)`` is a mel spectrogram. Conventions follow librosa
(periodic windows, Slaney mel scale by default, ``power_to_db`` with ``ref=1``); departures are named where they
occur. :class:`kwslab.dsp.FeatureExtractor` composes these with its matrices precomputed once.
"""
from __future__ import annotations

import functools

import numpy as np

_COSINE_WINDOWS = {  # name -> coefficients a_k of w[n] = sum_k (-1)^k a_k cos(2 pi k n / (M - 1))
    "hann": (0.5, 0.5),
    "hamming": (0.54, 0.46),
    "blackman": (0.42, 0.5, 0.08),
}
_SLANEY_HZ_PER_MEL = 200.0 / 3  # Slaney scale: linear below 1 kHz ...
_SLANEY_MIN_LOG_MEL = 1000.0 / _SLANEY_HZ_PER_MEL  # ... (15 mels at 1 kHz) ...
_SLANEY_LOGSTEP = np.log(6.4) / 27.0  # ... then logarithmic
WINDOWS = ("hann", "hamming", "blackman", "bartlett", "rectangular")
PAD_MODES = ("constant", "reflect", "edge", "symmetric")


def get_window(name: str, length: int, *, periodic: bool = True) -> np.ndarray:
    """A window function, float64 (length,).

    Args:
        name: one of ``WINDOWS``: "hann", "hamming", "blackman", "bartlett", "rectangular" (all ones).
        length: number of samples M >= 1.
        periodic: True (default, as librosa/scipy ``fftbins=True``) for spectral analysis: the symmetric window
            of length M + 1 without its last sample. False gives the symmetric window (filter design, HTK/Kaldi).
    """
    if name not in WINDOWS:
        raise ValueError(f"window: unknown window {name!r}; choose one of {', '.join(WINDOWS)}")
    if int(length) != length or length < 1:
        raise ValueError(f"window: length must be a positive integer, got {length!r}")
    length = int(length)
    if length == 1 or name == "rectangular":
        return np.ones(length)
    m = length + 1 if periodic else length  # the symmetric window this one is cut from
    n = np.arange(length, dtype=np.float64)
    if name == "bartlett":
        return 1.0 - np.abs(2.0 * n / (m - 1) - 1.0)
    w = np.zeros(length)
    for k, a in enumerate(_COSINE_WINDOWS[name]):
        w += (-1) ** k * a * np.cos(2.0 * np.pi * k * n / (m - 1))
    return w


def pad_center(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a 1-D array on both sides to ``size`` (left gets ``(size - len) // 2``), as librosa does."""
    if size < x.shape[-1]:
        raise ValueError(f"pad_center: cannot pad length {x.shape[-1]} to the smaller size {size}")
    left = (size - x.shape[-1]) // 2
    return np.pad(x, (left, size - x.shape[-1] - left))


def frame(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Overlapping frames of a 1-D signal as a read-only strided view (no copy).

    Returns:
        (1 + (len(y) - frame_length) // hop_length, frame_length): row ``t`` is
        ``y[t * hop_length : t * hop_length + frame_length]``. (librosa.util.frame gives the transpose.)
    """
    y = np.ascontiguousarray(y)
    if y.ndim != 1 or y.shape[0] < frame_length:
        raise ValueError(f"frame: need a 1-D signal of at least frame_length={frame_length} samples, "
                         f"got shape {y.shape}")
    n_frames = 1 + (y.shape[0] - frame_length) // hop_length
    view = np.lib.stride_tricks.as_strided(y, (n_frames, frame_length),
                                           (hop_length * y.strides[0], y.strides[0]), writeable=False)
    return view


def block_power(y: np.ndarray, block: int) -> np.ndarray:
    """Mean square (float64) of each whole, non-overlapping ``block`` of samples of a 1-D signal; a partial block
    at the end is ignored, so a signal shorter than one block gives an empty array. Used for loudness decisions
    (silence trimming, word onsets), where 10-ms blocks are enough."""
    n = len(y) // block
    return np.mean(np.square(y[: n * block].reshape(n, block), dtype=np.float64), axis=1)


def center_pad(y: np.ndarray, n_fft: int, pad_mode: str = "constant") -> np.ndarray:
    """Pad ``n_fft // 2`` samples on both sides, so frame t is centred on sample ``t * hop_length``.

    Args:
        pad_mode: a ``numpy.pad`` mode from ``PAD_MODES`` ("constant" pads zeros).
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f"center_pad: pad_mode must be one of {', '.join(PAD_MODES)}, got {pad_mode!r}")
    return np.pad(y, n_fft // 2, mode=pad_mode)


def power_spectrum(frames: np.ndarray, power: float = 2.0) -> np.ndarray:
    """``|rfft(frames)| ** power`` along the last axis: (frames, n_fft) -> (frames, n_fft // 2 + 1), float64.

    Frames are transformed at their own length; pad them yourself for a longer FFT (faster than ``rfft(n=...)``).
    """
    spec = np.fft.rfft(np.asarray(frames, dtype=np.float64), axis=-1)
    if power == 2.0:
        return spec.real * spec.real + spec.imag * spec.imag
    return np.abs(spec) ** power


def spectrogram(y: np.ndarray, n_fft: int = 512, hop_length: int = 160, win_length: int | None = None,
                window: str = "hann", center: bool = True, pad_mode: str = "constant",
                power: float = 2.0) -> np.ndarray:
    """Power spectrogram like ``abs(librosa.stft(...)) ** power``: float64 (n_fft // 2 + 1, frames).

    The window (``win_length`` samples, default ``n_fft``) is zero-padded to ``n_fft`` on both sides.
    """
    win = pad_center(get_window(window, win_length or n_fft), n_fft)
    y = np.asarray(y, dtype=np.float64)
    if center:
        y = center_pad(y, n_fft, pad_mode)
    return power_spectrum(frame(y, n_fft, hop_length) * win, power).T


def hz_to_mel(hz: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """Hertz to mels. Slaney (default, as librosa): linear 3 per 200 Hz below 1 kHz, logarithmic above.
    HTK: ``2595 * log10(1 + hz / 700)``."""
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _SLANEY_HZ_PER_MEL
    log_part = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(hz, 1e-300) / 1000.0) / _SLANEY_LOGSTEP
    return np.where(hz >= 1000.0, log_part, linear)


def mel_to_hz(mels: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """Mels to Hertz, the inverse of :func:`hz_to_mel` (same scale choice)."""
    mels = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    log_part = 1000.0 * np.exp(_SLANEY_LOGSTEP * (mels - _SLANEY_MIN_LOG_MEL))
    return np.where(mels >= _SLANEY_MIN_LOG_MEL, log_part, mels * _SLANEY_HZ_PER_MEL)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 40, fmin: float = 0.0, fmax: float | None = None,
                   htk: bool = False, norm: str | None = "slaney") -> np.ndarray:
    """Triangular mel filter bank, float64 (n_mels, n_fft // 2 + 1), equal to ``librosa.filters.mel``.

    Band ``m`` rises from mel point ``m`` to ``m + 1`` and falls to ``m + 2`` (``n_mels + 2`` points evenly
    spaced in mels from ``fmin`` to ``fmax``, default ``sample_rate / 2``). ``norm="slaney"`` divides each
    triangle by its width in Hz (times 2), so bands have about equal area; ``None`` leaves peaks at 1.
    """
    if norm not in ("slaney", None):
        raise ValueError(f"mel_filterbank: norm must be 'slaney' or None, got {norm!r}")
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)  # (n_bins,)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    widths = np.diff(mel_points)  # (n_mels + 1,)
    ramps = mel_points[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_bins)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights


def power_to_db(spec: np.ndarray, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """``10 * log10(max(spec, amin) / max(ref, amin))``, then floored at ``max - top_db`` (librosa's formula).

    Apply it to ONE clip at a time: the floor comes from this array's maximum, so a batch shares one floor.
    """
    if amin <= 0:
        raise ValueError(f"power_to_db: amin must be > 0, got {amin}")
    db = 10.0 * np.log10(np.maximum(amin, spec)) - 10.0 * np.log10(max(amin, abs(ref)))
    if top_db is not None:
        if top_db < 0:
            raise ValueError(f"power_to_db: top_db must be >= 0, got {top_db}")
        db = np.maximum(db, db.max() - top_db)
    return db


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix, float64 (n_out, n_in): ``D @ x`` equals
    ``scipy.fft.dct(x, type=2, norm="ortho", axis=0)[:n_out]``."""
    n = np.arange(n_in, dtype=np.float64)
    k = np.arange(n_out, dtype=np.float64)[:, None]
    basis = np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis


def lifter_weights(n_mfcc: int, lifter: float) -> np.ndarray:
    """Cepstral lifter ``1 + (lifter / 2) * sin(pi * (k + 1) / lifter)`` for k = 0..n_mfcc-1; ones if lifter == 0.

    The ``k + 1`` is librosa's convention (HTK counts from k = 0), kept for parity with ``librosa.feature.mfcc``.
    """
    if lifter < 0:
        raise ValueError(f"lifter_weights: lifter must be >= 0, got {lifter}")
    if lifter == 0:
        return np.ones(n_mfcc)
    return 1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(1, n_mfcc + 1) / lifter)


@functools.lru_cache(maxsize=64)
def delta_kernel(width: int, order: int) -> np.ndarray:
    """Savitzky-Golay weights (width,) for the ``order``-th derivative of a degree-``order`` least-squares
    polynomial fit over ``width`` points centred on 0: ``delta[t] = kernel @ x[t - h : t + h + 1]``.
    Cached (read-only result): the pipeline asks for the same few kernels on every clip."""
    t = np.arange(width, dtype=np.float64) - (width - 1) / 2.0
    vander = t[:, None] ** np.arange(order + 1)  # (width, order + 1)
    kernel = float(np.prod(np.arange(1, order + 1))) * np.linalg.pinv(vander)[order]
    kernel.setflags(write=False)
    return kernel


def delta(x: np.ndarray, width: int = 9, order: int = 1, *, out: np.ndarray | None = None) -> np.ndarray:
    """Local derivative along the last (frame) axis, equal to ``librosa.feature.delta(x, width, order,
    mode="interp")``: (..., frames) -> same shape, float64 (or written into ``out``).

    Inside, a Savitzky-Golay filter (polynomial degree ``order``). In "interp" mode the first and last
    ``width // 2`` frames get the derivative of the fit over the first/last ``width`` frames; with degree ==
    order that derivative is a constant, so edges repeat the nearest interior value. Departure: librosa raises
    when there are fewer than ``width`` frames; here the fit then spans all frames (zeros if frames <= order).
    """
    if width < 3 or width % 2 == 0:
        raise ValueError(f"delta: width must be an odd integer >= 3, got {width}")
    if order < 1:
        raise ValueError(f"delta: order must be >= 1, got {order}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.shape[-1]
    result = np.empty(x.shape) if out is None else out
    if n <= order:
        result[...] = 0.0
    elif n < width:  # one fit over every frame: a constant derivative
        result[...] = (x @ delta_kernel(n, order))[..., None]
    else:
        span, half = n - width + 1, width // 2
        windows = np.ndarray(x.shape[:-1] + (span, width), np.float64, x, 0, x.strides + x.strides[-1:])
        inner = windows @ delta_kernel(width, order)  # (..., span): the fit centred on each interior frame
        result[..., half:half + span] = inner
        result[..., :half] = inner[..., :1]
        result[..., half + span:] = inner[..., -1:]
    return result


def cmvn(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per-utterance mean and variance normalisation of each feature row over frames: (F, T) -> (F, T), in the
    input's float dtype. Each row ends with mean 0 and standard deviation 1; a constant row (std < eps) becomes
    all zeros."""
    x = np.asarray(x)
    centred = x - x.mean(axis=-1, keepdims=True)
    std = np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True))
    centred /= np.maximum(std, eps)
    return centred


def fit_waveform(y: np.ndarray, num_samples: int, offset: int | None = None) -> np.ndarray:
    """Place a clip in a window of exactly ``num_samples`` samples of silence, or cut such a window from it.

    Args:
        y: 1-D waveform.
        num_samples: window length.
        offset: where the clip starts in the window (shorter clip, ``0 <= offset <= num_samples - len(y)``) or where
            the window starts in the clip (longer clip, ``0 <= offset <= len(y) - num_samples``); default: centred.

    Returns:
        (num_samples,) array of ``y``'s dtype (``y`` itself when it already fits).
    """
    n = len(y)
    if n == num_samples:
        return y
    room = abs(num_samples - n)
    start = room // 2 if offset is None else int(offset)
    if not 0 <= start <= room:
        raise ValueError(f"fit_waveform: offset {offset} outside [0, {room}] for a {n}-sample clip in {num_samples}")
    if n > num_samples:
        return y[start:start + num_samples]
    out = np.zeros(num_samples, dtype=y.dtype)
    out[start:start + n] = y
    return out


def pad_or_crop(x: np.ndarray, num_frames: int, value: float | np.ndarray = 0.0) -> np.ndarray:
    """Fix the frame count: keep the first ``num_frames`` frames, or append frames filled with ``value``.

    Args:
        x: (F, T) features.
        num_frames: frames wanted, >= 1.
        value: scalar, or (F,) per feature row, for the appended frames.

    Returns:
        (F, num_frames), same dtype as ``x``.
    """
    if num_frames < 1:
        raise ValueError(f"pad_or_crop: num_frames must be >= 1, got {num_frames}")
    n = x.shape[-1]
    if n >= num_frames:
        return x[..., :num_frames]
    out = np.empty(x.shape[:-1] + (num_frames,), dtype=x.dtype)
    out[..., :n] = x
    out[..., n:] = np.asarray(value, dtype=x.dtype)[..., None] if np.ndim(value) else value
    return out
