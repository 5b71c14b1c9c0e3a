"""fetch() against a real HTTP server on 127.0.0.1: good, corrupt and missing files; only what is missing."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import shutil
import tarfile
import threading

import pytest

from lautum.data import DataFetchError, data_status, fetch, load_domain
from lautum.data.fetch import _unpack
from lautum.data.files import Checksum, FileSpec, file_digest

NOTMNIST = "notMNIST/notMNIST_small.tar.gz"


class _Server:
    """A static file server over a folder that records the paths requested."""

    def __init__(self, folder):
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def files_requested(self) -> set[str]:
        return {p.lstrip("/") for p in self.requests}


@pytest.fixture
def served(tmp_path, monkeypatch):
    """(folder served, server); the folder starts empty."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")  # never route 127.0.0.1 through a proxy
    folder = tmp_path / "www"
    folder.mkdir()
    server = _Server(folder)
    server.thread.start()
    yield folder, server
    server.httpd.shutdown()
    server.httpd.server_close()


def _put(shared_data, folder, rel):
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared_data / rel, folder / rel)


def _leftovers(root):
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".part")]


def test_fetch_good_file_then_nothing(shared_data, served, tmp_path):
    folder, server = served
    _put(shared_data, folder, NOTMNIST)
    root = tmp_path / "data"
    written = fetch("notmnist", root, base_url=server.url, progress=False)
    assert written == [root / NOTMNIST]
    assert file_digest(root / NOTMNIST) == "626169729db2d797592be820fe65258c"
    assert server.files_requested() == {NOTMNIST}
    assert _leftovers(root) == []
    # Only what is missing: a second fetch downloads nothing.
    n = len(server.requests)
    assert fetch("notmnist", root, base_url=server.url, progress=False) == []
    assert len(server.requests) == n
    assert {s.name: s for s in data_status(root)}["notmnist"].verified


def test_fetch_corrupt_download_leaves_nothing(shared_data, served, tmp_path):
    folder, server = served
    _put(shared_data, folder, NOTMNIST)
    data = bytearray((folder / NOTMNIST).read_bytes())
    data[1000:1064] = bytes(64)
    (folder / NOTMNIST).write_bytes(bytes(data))
    bad_md5 = file_digest(folder / NOTMNIST)
    root = tmp_path / "data"
    with pytest.raises(DataFetchError) as info:
        fetch("notmnist", root, base_url=server.url, progress=False)
    msg = str(info.value)
    assert f"{server.url}/{NOTMNIST}" in msg  # the URL
    assert "626169729db2d797592be820fe65258c" in msg  # what was expected
    assert bad_md5 in msg  # what was received
    assert not (root / NOTMNIST).exists()
    assert _leftovers(root) == []


def test_fetch_replaces_a_corrupt_local_file(shared_data, served, tmp_path):
    folder, server = served
    _put(shared_data, folder, NOTMNIST)
    root = tmp_path / "data"
    (root / NOTMNIST).parent.mkdir(parents=True)
    (root / NOTMNIST).write_bytes(b"not a tarball")
    assert fetch("notmnist", root, base_url=server.url, progress=False) == [root / NOTMNIST]
    assert file_digest(root / NOTMNIST) == "626169729db2d797592be820fe65258c"


def test_fetch_missing_file_404(shared_data, served, tmp_path):
    folder, server = served
    _put(shared_data, folder, "usps.t.bz2")  # the LIBSVM training file is not served
    root = tmp_path / "data"
    with pytest.raises(DataFetchError) as info:
        fetch("usps", root, base_url=server.url, progress=False)
    msg = str(info.value)
    assert f"{server.url}/usps.bz2" in msg and "404" in msg
    assert not (root / "usps.bz2").exists()
    # The file that could be fetched is kept, verified.
    assert file_digest(root / "usps.t.bz2") == "8ea070ee2aca1ac39742fdd1ef5ed118"
    assert _leftovers(root) == []
    assert len(load_domain("usps", False, root)) == 2007


def test_fetch_unreachable_server(tmp_path):
    with pytest.raises(DataFetchError, match="http://127.0.0.1:9/"):
        fetch("notmnist", tmp_path, base_url="http://127.0.0.1:9", progress=False)
    assert _leftovers(tmp_path) == []


def test_fetch_mnist_unpacks_the_idx_files(shared_data, served, tmp_path):
    folder, server = served
    gz = [
        f"MNIST/raw/{s}-idx{d}-ubyte.gz"
        for s, d in [("train-images", 3), ("train-labels", 1), ("t10k-images", 3), ("t10k-labels", 1)]
    ]
    for rel in gz:
        _put(shared_data, folder, rel)
    root = tmp_path / "data"
    written = fetch("mnist", root, base_url=server.url, progress=False)
    assert sorted(written) == sorted([root / p for p in gz] + [root / p.removesuffix(".gz") for p in gz])
    assert server.files_requested() == set(gz)
    for rel in gz:
        raw = rel.removesuffix(".gz")
        assert file_digest(root / raw) == file_digest(shared_data / raw)
    assert _leftovers(root) == []
    assert len(load_domain("mnist", False, root)) == 10000
    # An unpacked file that goes missing is rebuilt from its archive, without a download.
    (root / "MNIST/raw/t10k-labels-idx1-ubyte").unlink()
    n = len(server.requests)
    assert fetch("mnist", root, base_url=server.url, progress=False) == [root / "MNIST/raw/t10k-labels-idx1-ubyte"]
    assert len(server.requests) == n


def test_fetch_usps_when_the_h5_copy_is_present(shared_data, served, tmp_path):
    folder, server = served
    root = tmp_path / "data"
    _put(shared_data, root, "usps-alt/usps.h5")
    assert fetch("usps", root, base_url=server.url, progress=False) == []
    assert server.requests == []


def test_fetch_mnist_m_has_no_source(tmp_path):
    with pytest.raises(DataFetchError, match="no public download") as info:
        fetch("mnist_m", tmp_path, progress=False)
    assert "MNIST-M/mnist_m_train_images.npy.xz" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["mnist", "usps", "mnist_m", "notmnist"])
def test_fetch_offline_copy_is_a_no_op(shared_data, name):
    # `make data` runs `lautum data fetch` on the read-only offline copy: no request, no write.
    assert fetch(name, shared_data, base_url="http://127.0.0.1:9", progress=False) == []


def test_fetch_refuses_a_broken_h5(shared_data, served, tmp_path):
    folder, server = served
    root = tmp_path / "data"
    (root / "usps-alt").mkdir(parents=True)
    (root / "usps-alt" / "usps.h5").write_bytes(b"broken")
    with pytest.raises(DataFetchError, match="delete it to use the 'libsvm' layout"):
        fetch("usps", root, base_url=server.url, progress=False)
    assert server.requests == []


def test_untar_members(tmp_path):
    # The CIFAR path (one tarball, several members) on a small synthetic archive.
    payload = {"folder/a": b"alpha", "folder/b": b"beta"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in payload.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (tmp_path / "x.tar.gz").write_bytes(buf.getvalue())
    import hashlib

    specs = [
        FileSpec(
            name, (Checksum(hashlib.md5(data).hexdigest(), "md5", len(data)),), derived_from="x.tar.gz", unpack="untar"
        )
        for name, data in payload.items()
    ]
    assert _unpack(tmp_path / "x.tar.gz", specs, tmp_path, lambda m: None) == [
        tmp_path / "folder/a",
        tmp_path / "folder/b",
    ]
    assert (tmp_path / "folder/b").read_bytes() == b"beta"
    # A member whose bytes do not match: nothing is placed.
    bad = [FileSpec("folder/c", (Checksum("0" * 32),), derived_from="x.tar.gz", unpack="untar")]
    with pytest.raises(DataFetchError, match="not in the archive"):
        _unpack(tmp_path / "x.tar.gz", bad, tmp_path, lambda m: None)
    assert not (tmp_path / "folder/c").exists()
    assert _leftovers(tmp_path) == []


def test_gunzip_checks_the_result(tmp_path):
    (tmp_path / "f.gz").write_bytes(gzip.compress(b"hello"))
    spec = FileSpec("f", (Checksum("0" * 32, "md5", 5),), derived_from="f.gz", unpack="gunzip")
    with pytest.raises(DataFetchError, match="expected md5 0{32}"):
        _unpack(tmp_path / "f.gz", [spec], tmp_path, lambda m: None)
    assert not (tmp_path / "f").exists() and _leftovers(tmp_path) == []
