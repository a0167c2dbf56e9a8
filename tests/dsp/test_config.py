"""FeatureConfig: validation naming the field, dict round trip, fingerprint stability."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwslab.dsp import FeatureConfig

BAD_VALUES = [
    ("sample_rate", 0), ("sample_rate", 16000.0), ("sample_rate", True), ("n_fft", 1), ("n_fft", "512"),
    ("win_length", 0), ("win_length", 1024), ("hop_length", 0), ("window", "kaiser"), ("window", None),
    ("center", "yes"), ("pad_mode", "wrap"), ("n_mels", 0), ("fmin", -1.0), ("fmin", 8000.0), ("fmax", 9000.0),
    ("fmax", float("nan")), ("htk", 1), ("mel_norm", "l2"), ("n_mfcc", 0), ("n_mfcc", 41), ("lifter", -1),
    ("top_db", -10.0), ("power", 0.0), ("kind", "spectrogram"), ("deltas", 3), ("deltas", 1.0),
    ("delta_width", 8), ("delta_width", 1), ("cmvn", None), ("num_frames", 0), ("n_mels", 200),
]


@pytest.mark.parametrize("field,value", BAD_VALUES)
def test_invalid_value_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"FeatureConfig\.{field}="):
        FeatureConfig(**{field: value})


def test_empty_mel_bands_are_reported() -> None:
    with pytest.raises(ValueError, match="n_mels=200.*without any FFT bin"):
        FeatureConfig(n_mels=200)


def test_defaults_and_num_features() -> None:
    cfg = FeatureConfig()
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.n_mfcc, cfg.top_db) == (16000, 512, 160, 40,
                                                                                                13, 80.0)
    assert cfg.num_features == 13
    assert FeatureConfig(deltas=2).num_features == 39
    assert FeatureConfig(kind="log_mel", n_mels=64, deltas=1).num_features == 128


def test_round_trip_and_plain_types() -> None:
    cfg = FeatureConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, window="hamming_symmetric",
                        fmax=3800, n_mels=23, htk=True, mel_norm=None, lifter=22, top_db=None, kind="log_mel",
                        deltas=2, cmvn=True, num_frames=98)
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON types only
    assert d["fmax"] == 3800.0 and isinstance(d["fmax"], float) and isinstance(d["lifter"], float)
    assert FeatureConfig.from_dict(d) == cfg
    assert FeatureConfig.from_dict({}) == FeatureConfig()


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown field.*n_filters"):
        FeatureConfig.from_dict({"n_mels": 40, "n_filters": 40})
    with pytest.raises(ValueError, match="mapping"):
        FeatureConfig.from_dict([("n_mels", 40)])  # type: ignore[arg-type]


def test_numpy_and_int_values_are_normalised() -> None:
    a = FeatureConfig(sample_rate=np.int64(16000), fmin=0, top_db=80)
    b = FeatureConfig(sample_rate=16000, fmin=0.0, top_db=80.0)
    assert type(a.sample_rate) is int and a == b and a.fingerprint() == b.fingerprint()


def test_fingerprint_is_stable_across_processes() -> None:
    cfg = FeatureConfig(n_mels=64, deltas=2, num_frames=101)
    code = ("from kwslab.dsp import FeatureConfig; "
            "print(FeatureConfig(n_mels=64, deltas=2, num_frames=101).fingerprint())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == cfg.fingerprint()
    assert len(cfg.fingerprint()) == 16 and int(cfg.fingerprint(), 16) >= 0


def test_fingerprint_changes_with_every_field() -> None:
    base = FeatureConfig()
    changed = [FeatureConfig(sample_rate=8000), FeatureConfig(n_fft=400), FeatureConfig(win_length=400),
               FeatureConfig(hop_length=128), FeatureConfig(window="hamming"), FeatureConfig(center=False),
               FeatureConfig(pad_mode="reflect"), FeatureConfig(n_mels=64), FeatureConfig(fmin=20.0),
               FeatureConfig(fmax=7600.0), FeatureConfig(htk=True), FeatureConfig(mel_norm=None),
               FeatureConfig(n_mfcc=20), FeatureConfig(lifter=22), FeatureConfig(top_db=None),
               FeatureConfig(power=1.0), FeatureConfig(kind="log_mel"), FeatureConfig(deltas=1),
               FeatureConfig(delta_width=5), FeatureConfig(cmvn=True), FeatureConfig(num_frames=101)]
    prints = {c.fingerprint() for c in changed} | {base.fingerprint()}
    assert len(prints) == len(changed) + 1
    assert len(changed) == len(base.to_dict())  # one variant per field: a new field needs a line here


def test_frozen_and_hashable() -> None:
    cfg = FeatureConfig()
    with pytest.raises(AttributeError):
        cfg.n_mels = 80  # type: ignore[misc]
    assert {cfg: 1}[FeatureConfig()] == 1


def test_dsp_imports_numpy_only() -> None:
    code = ("import sys, kwslab.dsp; "
            "print(sorted(m for m in ('torch', 'lightning', 'librosa', 'scipy', 'soundfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
