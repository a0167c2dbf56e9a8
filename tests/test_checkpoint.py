"""Checkpoints are loaded without executing pickled code, and bad files get one clear error."""
from __future__ import annotations

import pickle
from pathlib import Path

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


def _checkpoint_bytes(tmp_path) -> bytes:
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(64)}}, good)
    return good.read_bytes()


@pytest.mark.parametrize("name, content, says", [
    ("empty.ckpt", lambda good: b"", "is empty (0 bytes)"),
    ("truncated.ckpt", lambda good: good[: len(good) // 2], "truncated or damaged zip archive"),
    ("random.ckpt", lambda good: bytes(range(256)) * 3, "neither a zip archive nor a pickle"),
    ("secret.ckpt", lambda good: b"OPENAI_API_KEY=sk-test-123456\n", "is a text file"),
])
def test_unreadable_checkpoints_say_what_the_file_is_not_how_to_unpickle_it(tmp_path, capsys, name, content, says):
    """A 0-byte file raised IndexError inside the error handler; truncated and random files got torch's advice to
    set weights_only=False (wrong: it would run pickled code). Now: one line saying what the file is."""
    path = tmp_path / name
    path.write_bytes(content(_checkpoint_bytes(tmp_path)))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and says in message and "\n" not in message
    assert "weights_only=False" not in message and "sk-test" not in message
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"")
    assert predict_main(["--ckpt", str(path), str(wav)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err and "sk-test" not in err


def test_atomic_writes_give_new_files_the_umask_mode_and_keep_a_replaced_files_mode(tmp_path):
    """mkstemp made every checkpoint 0600 whatever the umask, and replacing a file changed its mode to 0600."""
    import os

    old = os.umask(0o022)
    try:
        out = save_checkpoint({"state_dict": {"w": torch.ones(2)}}, tmp_path / "new.ckpt")
        assert out.stat().st_mode & 0o777 == 0o644
        os.chmod(out, 0o640)
        save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, out)
        assert out.stat().st_mode & 0o777 == 0o640
        assert torch.equal(load_checkpoint(out)["state_dict"]["w"], torch.zeros(2))
        os.umask(0o077)
        assert save_checkpoint({"state_dict": {}}, tmp_path / "private.ckpt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".*.tmp"))


def test_check_output_refuses_a_folder_and_an_existing_file_unless_forced(tmp_path):
    from kwslab.checkpoint import OutputExistsError, check_output

    with pytest.raises(OutputExistsError, match=r"--out .*: is a folder"):
        check_output(tmp_path)
    existing = tmp_path / "model.ckpt"
    existing.write_bytes(b"x")
    with pytest.raises(OutputExistsError, match=r"--out-ckpt .*model.ckpt: the file exists; pass --force"):
        check_output(existing, flag="--out-ckpt")
    assert check_output(existing, force=True) == existing
    assert check_output(tmp_path / "new.ckpt") == tmp_path / "new.ckpt"


# -- the checkpoints shipped in the package (builtin:<name>) ----------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_speech_embedding_loads_offline_and_says_what_it_was_trained_on():
    """kwslab/pretrained/speech_embedding.ckpt: small, loaded through the same safe loader, with its recipe, its
    training manifests' hash and licences, and without the four words it must never have heard."""
    from kwslab.checkpoint import BUILTIN
    from kwslab.dsp import FeatureConfig
    from kwslab.inference import load_model

    path = BUILTIN["speech_embedding"]
    assert path.is_file() and path.stat().st_size <= 2_000_000
    ckpt = load_checkpoint("builtin:speech_embedding")
    record = ckpt["kwslab_pretrained"]
    assert record["recipe"] == "configs/embedding.yaml" and record["command"] == "python scripts/train_embedding.py"
    assert len(record["manifest_sha256"]) == 64 and "CC BY 4.0" in record["data"] and "CC BY-SA 4.0" in record["data"]
    held_out = {"marvin", "sheila", "house", "wow"}
    assert set(record["held_out_words"]) == held_out
    assert not held_out & set(record["words"]) and not held_out & set(ckpt["hyper_parameters"]["labels"])
    model = load_model("builtin:speech_embedding")  # a working 31-word classifier too
    assert model.kind == "keyword" and model.labels == record["words"]
    import yaml

    tts = yaml.safe_load((REPO / "configs" / "keyword_from_tts.yaml").read_text())["data"]["init_args"]["features"]
    assert FeatureConfig.from_dict(tts) == model.feature_config  # the custom-keyword recipe reads its features


def test_the_embeddings_training_manifests_match_its_hash_and_lack_the_held_out_words():
    """Where the training manifests are present (a development checkout after the recipe's prepare commands), they
    hash to the recorded value and none of their rows says a held-out word."""
    import hashlib

    from kwslab.data.manifest import read_manifest

    record = load_checkpoint("builtin:speech_embedding")["kwslab_pretrained"]
    paths = [REPO / m if not Path(m).is_absolute() else Path(m) for m in record["train_manifests"]]
    if not all(p.is_file() for p in paths):
        pytest.skip("the embedding's training manifests are not here (they need ../shared); hash not checked")
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    assert h.hexdigest() == record["manifest_sha256"]
    words = {r.keyword for p in paths for r in read_manifest(p, check_audio=False)}
    assert not words & set(record["held_out_words"])


def test_builtin_names_missing_and_broken_files_are_one_clear_error(tmp_path, monkeypatch):
    import kwslab.checkpoint as ck

    with pytest.raises(CheckpointError, match="no such built-in checkpoint; the package ships speech_embedding"):
        load_checkpoint("builtin:nope")
    monkeypatch.setitem(ck.BUILTIN, "speech_embedding", tmp_path / "speech_embedding.ckpt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint("builtin:speech_embedding")
    assert "missing from this installation" in str(err.value) and "scripts/train_embedding.py" in str(err.value)
    (tmp_path / "speech_embedding.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 100)  # a copy cut short
    with pytest.raises(CheckpointError, match="truncated or damaged zip archive"):
        load_checkpoint("builtin:speech_embedding")
