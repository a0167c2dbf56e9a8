"""Downloads against a local HTTP server (127.0.0.1, Range support): resume, checksum, unsafe archives."""

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import numpy as np
import pytest

from kwslab.audio import wav_bytes
from kwslab.data import read_manifest
from kwslab.data.sources import prepare_fsdd, prepare_speech_commands
from kwslab.data.sources.download import DownloadError, UnsafeArchiveError, download, extract_archive
from kwslab.prepare import main


class _Server:
    """Serves ``files`` (path -> bytes). ``cut[path] = n`` closes the first response after n bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.ranges: list[str | None] = []
        self.honour_range = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                if data is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng and server.honour_range else 0
                if start >= len(data) and rng:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                n = server.cut.pop(self.path, None)
                self.wfile.write(body if n is None else body[:n])
                if n is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _wav(seed: int) -> bytes:
    return wav_bytes((0.1 * np.random.default_rng(seed).standard_normal(800)).astype(np.float32), 16000)


def _targz(members: dict[str, bytes], extra=None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tf.addfile(info)
    return buf.getvalue()


def _sc_archive() -> bytes:
    files = {f"{w}/{s:08x}_nohash_0.wav": _wav(i * 10 + s)
             for i, w in enumerate(("yes", "no", "cat")) for s in range(4)}
    files["validation_list.txt"] = b"yes/00000002_nohash_0.wav\nno/00000002_nohash_0.wav\n"
    files["testing_list.txt"] = b"yes/00000003_nohash_0.wav\nmissing/00000009_nohash_0.wav\n"
    return _targz(files)


def test_speech_commands_download_unpack_prepare(server, tmp_path, capsys):
    data = _sc_archive()
    server.files["/sc.tar.gz"] = data
    sha = hashlib.sha256(data).hexdigest()
    root, out = tmp_path / "sc", tmp_path / "out"
    args = ["speech-commands", "--root", str(root), "--out", str(out), "--download", "--url",
            f"{server.url}/sc.tar.gz", "--sha256", sha, "--task", "35"]
    assert main(args) == 0
    assert "skipped 1: list entries naming files that are not present" in capsys.readouterr().out
    rows = {s: read_manifest(out / f"{s}.csv") for s in ("train", "val", "test")}
    assert [len(rows[s]) for s in ("train", "val", "test")] == [9, 2, 1]
    n_requests = len(server.ranges)
    assert main(args) == 0  # archive present and unpacked: no new request
    assert len(server.ranges) == n_requests


def test_interrupted_download_resumes(server, tmp_path):
    data = np.random.default_rng(0).bytes(300_000)
    sha = hashlib.sha256(data).hexdigest()
    server.files["/big.bin"] = data
    server.cut["/big.bin"] = 100_000
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match="cut off.*run again to resume"):
        download(f"{server.url}/big.bin", dest, sha256=sha, retries=0)
    part = tmp_path / "big.bin.part"
    assert part.stat().st_size == 100_000 and not dest.exists()
    assert download(f"{server.url}/big.bin", dest, sha256=sha) == dest
    assert server.ranges == [None, "bytes=100000-"]
    assert dest.read_bytes() == data and not part.exists()
    # automatic retry inside one call, resuming from the cut
    server.ranges.clear()
    server.cut["/big.bin"] = 50_000
    download(f"{server.url}/big.bin", tmp_path / "again.bin", sha256=sha, retries=2)
    assert server.ranges == [None, "bytes=50000-"] and (tmp_path / "again.bin").read_bytes() == data


def test_server_ignoring_range_restarts_and_complete_part(server, tmp_path):
    data = b"0123456789" * 1000
    server.files["/f"] = data
    server.honour_range = False
    (tmp_path / "f.part").write_bytes(b"garbage!")
    download(f"{server.url}/f", tmp_path / "f", sha256=hashlib.sha256(data).hexdigest())
    assert (tmp_path / "f").read_bytes() == data
    # a .part that is already complete: the server answers 416 and the checksum decides
    server.honour_range = True
    (tmp_path / "g.part").write_bytes(data)
    download(f"{server.url}/f", tmp_path / "g", sha256=hashlib.sha256(data).hexdigest())
    assert (tmp_path / "g").read_bytes() == data


def test_bad_checksum_no_unpack(server, tmp_path):
    server.files["/sc.tar.gz"] = _sc_archive()
    root = tmp_path / "sc"
    with pytest.raises(DownloadError, match="checksum mismatch.*nothing was unpacked"):
        prepare_speech_commands(root, tmp_path / "out", download=True, url=f"{server.url}/sc.tar.gz", sha256="0" * 64)
    assert sorted(p.name for p in root.iterdir()) == []  # bad file deleted, nothing unpacked
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/nope", tmp_path / "nope")


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize("bad", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt", "symlink"])
def test_unsafe_tar_members_refused(server, tmp_path, bad):
    if bad == "symlink":
        data = _targz({"yes/a.wav": b"x"}, extra=[_symlink("yes/link.wav", "/etc/passwd")])
    else:
        data = _targz({"yes/a.wav": b"x", bad: b"pwned"})
    server.files["/evil.tar.gz"] = data
    root = tmp_path / "deep" / "root"
    with pytest.raises(UnsafeArchiveError, match="refusing to unpack"):
        prepare_speech_commands(root, tmp_path / "out", download=True, url=f"{server.url}/evil.tar.gz",
                                sha256=hashlib.sha256(data).hexdigest())
    assert not (root / "yes").exists()  # nothing extracted, not even the safe member
    assert not list(tmp_path.rglob("evil.txt"))


def test_unsafe_zip_refused_and_safe_zip_extracts(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/ok.txt", "fine")
        zf.writestr("../evil.txt", "pwned")
    (tmp_path / "bad.zip").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt'"):
        extract_archive(tmp_path / "bad.zip", tmp_path / "x")
    assert not (tmp_path / "x" / "a").exists() and not (tmp_path / "evil.txt").exists()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/ok.txt", "fine")
    (tmp_path / "good.zip").write_bytes(buf.getvalue())
    assert extract_archive(tmp_path / "good.zip", tmp_path / "y") == [tmp_path / "y" / "a" / "ok.txt"]


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_fsdd_download(server, tmp_path, kind):
    members = {f"free-spoken-digit-dataset-master/recordings/{d}_{s}_{i}.wav": _wav(d * 100 + i)
               for d in range(10) for s in ("ann", "bob", "cyd") for i in range(6)}
    members["free-spoken-digit-dataset-master/README.md"] = b"FSDD"
    if kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        data = buf.getvalue()
    else:
        data = _targz(members)
    server.files[f"/master.{kind}"] = data
    res = prepare_fsdd(tmp_path / "fsdd", tmp_path / "out", split="official", download=True,
                       url=f"{server.url}/master.{kind}", sha256=hashlib.sha256(data).hexdigest())
    assert len(res.rows) == 180
    assert len(read_manifest(tmp_path / "out" / "test.csv")) == 10 * 3 * 5
    assert (tmp_path / "fsdd" / "free-spoken-digit-dataset-master" / "recordings").is_dir()
