"""kwslab.files: the one atomic writer. Every output (checkpoints, ONNX, manifests, ARPA models, TTS metadata) goes
through it, so each gets the umask's mode and is never half-written."""
from __future__ import annotations

import os
import stat

import pytest

from kwslab.files import atomic_write, atomic_write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(tmp_path):
    old = os.umask(0o027)
    try:
        assert _mode(atomic_write_text(tmp_path / "a.txt", "one")) == 0o640
        os.chmod(tmp_path / "a.txt", 0o600)
        atomic_write_text(tmp_path / "a.txt", "two")
        assert _mode(tmp_path / "a.txt") == 0o600 and (tmp_path / "a.txt").read_text() == "two"
    finally:
        os.umask(old)


def test_a_failed_write_or_check_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "m.bin"
    atomic_write(target, lambda f: f.write(b"good"))

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)

    def refuse(tmp):
        assert open(tmp, "rb").read() == b"new"
        raise ValueError("parity check failed")

    with pytest.raises(ValueError, match="parity"):
        atomic_write(target, lambda f: f.write(b"new"), refuse)
    assert target.read_bytes() == b"good" and sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_manifests_and_language_models_are_written_with_the_umask_mode(tmp_path):
    from kwslab.data.manifest import write_manifest
    from kwslab.decoding.lm import NGramLM

    old = os.umask(0o022)
    try:
        write_manifest(tmp_path / "m.csv", [{"filename": "a.wav", "keyword": "yes"}])
        NGramLM.train(["yes no", "no yes"], order=2).save_arpa(tmp_path / "lm.arpa")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "m.csv") == 0o644 and _mode(tmp_path / "lm.arpa") == 0o644
