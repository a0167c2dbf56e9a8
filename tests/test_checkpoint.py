"""Checkpoints are loaded without executing pickled code, and bad files get one clear error."""
from __future__ import annotations

import pickle

import pytest
import torch

from kwslab.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from kwslab.predict import main as predict_main


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/kwslab-pwned-marker", "w"))  # would create a file if unpickled unsafely


def test_a_pickled_payload_is_refused_and_never_runs(tmp_path):
    import os

    marker = "/tmp/kwslab-pwned-marker"
    if os.path.exists(marker):
        os.remove(marker)
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Exploit()}}, bad)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(bad)
    assert not os.path.exists(marker)


def test_not_a_checkpoint_and_missing_file(tmp_path):
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        load_checkpoint(plain)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(pickle.dumps([1, 2]) + b"garbage")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.ckpt")


def test_predict_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys):
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Exploit()}}, bad)
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"")
    assert predict_main(["--ckpt", str(bad), str(wav)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "evil.ckpt" in err and "Traceback" not in err


def test_save_checkpoint_is_atomic(tmp_path):
    out = tmp_path / "sub" / "model.ckpt"
    save_checkpoint({"state_dict": {"w": torch.ones(2)}}, out)
    assert torch.equal(load_checkpoint(out)["state_dict"]["w"], torch.ones(2))
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        save_checkpoint({"state_dict": {}, "bad": lambda: None}, out)  # cannot be pickled: the write fails midway
    assert torch.equal(load_checkpoint(out)["state_dict"]["w"], torch.ones(2))  # the old file is intact
    assert [p.name for p in out.parent.iterdir()] == ["model.ckpt"]  # and no temp file is left behind
