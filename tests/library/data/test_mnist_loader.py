"""The MNIST loader: IDX parsing, search order, checksums, downloads (with a fake opener), failures.

No test touches the network or the user's cache: downloads go through a monkeypatched opener,
the cache directory is a temporary one. The last tests read the real, verified copy of MNIST
($DLCOURSE_DATA/mnist, or ../shared/data/mnist beside the project) when it is there.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import socket
import ssl
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import repo_paths

from dlcourse.data import load_mnist
from dlcourse.data import mnist as M

ROOT = repo_paths.ROOT


def idx_bytes(arr: np.ndarray) -> bytes:
    """Write ``arr`` in the IDX format (the inverse of parse_idx)."""
    codes = {v: k for k, v in M.IDX_DTYPES.items()}
    big = arr.astype(arr.dtype.newbyteorder(">"))
    code = codes[big.dtype.str if big.dtype.itemsize > 1 else ">" + big.dtype.str[1:]]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + big.tobytes()


# ---------------------------------------------------------------------------------------
# The IDX parser
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_parse_idx_round_trip(dtype):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal((3, 5, 4)) * 50).astype(dtype)
    out = M.parse_idx(idx_bytes(arr))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (3, 5, 4)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 7  # a writable copy, not a view of the bytes
    assert out[0, 0, 0] == 7


def test_parse_idx_reads_big_endian_values():
    data = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + bytes([0, 0, 1, 2, 255, 255, 255, 254])
    np.testing.assert_array_equal(M.parse_idx(data), [258, -2])


def test_parse_idx_labels_are_1d():
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    np.testing.assert_array_equal(M.parse_idx(idx_bytes(labels)), labels)


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "at least 4 bytes"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "two zero bytes"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "at least one dimension"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x01", "announces 3 dimensions"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", "truncated or padded"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", "truncated or padded"),
])
def test_parse_idx_refuses_bad_files_naming_them(data, message):
    with pytest.raises(M.CorruptFileError, match=message) as err:
        M.parse_idx(data, "some/file-idx1-ubyte")
    assert "some/file-idx1-ubyte" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_read_idx_gzipped_or_plain(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(M.read_idx(tmp_path / "a"), arr)
    np.testing.assert_array_equal(M.read_idx(tmp_path / "b.gz"), arr)


def test_read_idx_refuses_a_damaged_gzip_naming_it(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))
    (tmp_path / "x.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(M.CorruptFileError, match="damaged gzip") as err:
        M.read_idx(tmp_path / "x.gz")
    assert str(tmp_path / "x.gz") in str(err.value)


# ---------------------------------------------------------------------------------------
# A small fake MNIST with its own checksums, and an isolated environment
# ---------------------------------------------------------------------------------------


def fake_mnist(seed: int, n_train: int = 6, n_test: int = 4) -> dict[str, bytes]:
    """The four files' (decompressed) contents for a tiny random 'MNIST'."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n_train).astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n_test).astype(np.uint8)),
    }


def write_files(folder: Path, contents: dict[str, bytes], gz: bool = True, names=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names or contents:
        data = contents[name]
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """No DLCOURSE_DATA, a temporary cache directory, checksums of fake data set 0, no real network."""
    monkeypatch.delenv(M.ENV_VAR, raising=False)
    monkeypatch.setattr(M, "cache_dir", lambda: tmp_path / "cache" / "mnist")
    files = fake_mnist(0)
    monkeypatch.setattr(M, "SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})

    def no_network(url, timeout):
        raise AssertionError(f"a test tried to download {url}")
    monkeypatch.setattr(M, "_open_url", no_network)
    return files


def images_of(contents):
    return M.parse_idx(contents["train-images-idx3-ubyte"])


# ---------------------------------------------------------------------------------------
# Finding and reading local copies
# ---------------------------------------------------------------------------------------


def test_loads_from_root_with_keras_shapes_and_dtypes(env, tmp_path):
    write_files(tmp_path / "here", env)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path / "here")
    assert x_train.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert y_train.shape == (6,) and y_test.shape == (4,)
    np.testing.assert_array_equal(x_train, images_of(env))
    np.testing.assert_array_equal(y_test, M.parse_idx(env["t10k-labels-idx1-ubyte"]))


def test_reads_plain_and_gzipped_files_alike(env, tmp_path):
    names = list(env)
    write_files(tmp_path / "mixed", env, gz=False, names=names[:2])
    write_files(tmp_path / "mixed", env, gz=True, names=names[2:])
    (x_train, _), (x_test, _) = load_mnist(tmp_path / "mixed", download=False)
    np.testing.assert_array_equal(x_train, images_of(env))
    assert x_test.shape == (4, 28, 28)


def test_root_may_be_the_parent_of_an_mnist_folder(env, tmp_path):
    write_files(tmp_path / "data" / "mnist", env)
    (x_train, _), _ = load_mnist(tmp_path / "data", download=False)
    np.testing.assert_array_equal(x_train, images_of(env))


def test_search_order_root_then_env_then_cache(env, tmp_path, monkeypatch):
    # Three different copies (each with checksums that fit only that copy's content);
    # the loader must take the first in the order root, $DLCOURSE_DATA/mnist, cache.
    copies = {where: fake_mnist(seed) for seed, where in enumerate(["root", "env", "cache"], start=10)}
    write_files(tmp_path / "root", copies["root"])
    write_files(tmp_path / "envdata" / "mnist", copies["env"])
    write_files(tmp_path / "cache" / "mnist", copies["cache"])
    monkeypatch.setenv(M.ENV_VAR, str(tmp_path / "envdata"))

    def expect(where):
        monkeypatch.setattr(M, "SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in copies[where].items()})

    expect("root")
    np.testing.assert_array_equal(load_mnist(tmp_path / "root")[0][0], images_of(copies["root"]))
    expect("env")
    np.testing.assert_array_equal(load_mnist()[0][0], images_of(copies["env"]))
    monkeypatch.delenv(M.ENV_VAR)
    expect("cache")
    np.testing.assert_array_equal(load_mnist()[0][0], images_of(copies["cache"]))
    assert M.search_dirs(tmp_path / "root") == [tmp_path / "root", tmp_path / "root" / "mnist",
                                                tmp_path / "cache" / "mnist"]


def test_refuses_a_corrupt_file_naming_it(env, tmp_path):
    write_files(tmp_path / "d", env)
    bad = dict(env)
    labels = bytearray(env["train-labels-idx1-ubyte"])
    labels[-1] = (labels[-1] + 1) % 10  # one label changed: a valid IDX file with the wrong content
    bad["train-labels-idx1-ubyte"] = bytes(labels)
    write_files(tmp_path / "d", bad, names=["train-labels-idx1-ubyte"])
    with pytest.raises(M.CorruptFileError) as err:
        load_mnist(tmp_path / "d")
    message = str(err.value)
    assert str(tmp_path / "d" / "train-labels-idx1-ubyte.gz") in message
    assert "SHA-256" in message and M.SHA256["train-labels-idx1-ubyte"] in message
    assert "Delete it" in message


def test_refuses_a_truncated_gzip_naming_it(env, tmp_path):
    write_files(tmp_path / "d", env)
    path = tmp_path / "d" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(M.CorruptFileError, match="damaged gzip") as err:
        load_mnist(tmp_path / "d")
    assert str(path) in str(err.value)


def test_missing_files_without_download_name_directories_and_env_var(env, tmp_path, monkeypatch):
    monkeypatch.setenv(M.ENV_VAR, str(tmp_path / "nowhere"))
    write_files(tmp_path / "partial", env, names=["train-images-idx3-ubyte"])
    with pytest.raises(M.MNISTNotFoundError) as err:
        load_mnist(tmp_path / "partial", download=False)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert "t10k-labels-idx1-ubyte" in message and "train-images-idx3-ubyte," not in message
    for d in (tmp_path / "partial", tmp_path / "nowhere" / "mnist", tmp_path / "cache" / "mnist"):
        assert str(d) in message
    assert "DLCOURSE_DATA" in message and "export DLCOURSE_DATA=" in message
    assert not (tmp_path / "cache").exists()  # download=False creates nothing


# ---------------------------------------------------------------------------------------
# Downloads, through a fake opener
# ---------------------------------------------------------------------------------------


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, fail_after: int | None = None, error=ConnectionResetError):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.fail_after, self.error = fail_after, error

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise self.error("connection lost")
        return super().read(size if self.fail_after is None else min(size, 64))


class FakeOpener:
    """Serves gzipped files by URL; ``behaviour[mirror]`` says what that mirror does."""

    def __init__(self, contents: dict[str, bytes], behaviour: dict[str, str]):
        self.contents, self.behaviour, self.calls = contents, behaviour, []

    def __call__(self, url, timeout):
        self.calls.append(url)
        mirror, name = url.rsplit("/", 1)
        mode = self.behaviour.get(mirror + "/", "ok")
        if mode == "offline":
            raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
        if mode == "404":
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        data = gzip.compress(self.contents[name.removesuffix(".gz")])
        if mode == "corrupt":
            data = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
        if mode == "interrupted":
            return FakeResponse(data, fail_after=len(data) // 2)
        if mode == "ctrl-c":
            return FakeResponse(data, fail_after=len(data) // 2, error=KeyboardInterrupt)
        if mode == "incomplete":  # the server closes the stream early: http.client's own error, not an OSError
            return FakeResponse(data, fail_after=len(data) // 2, error=lambda msg: http.client.IncompleteRead(b"", 10))
        if mode == "ssl":
            raise ssl.SSLError("certificate verify failed")
        return FakeResponse(data)


MIRRORS = ("https://a.example/mnist/", "https://b.example/mnist/", "https://c.example/mnist/")


def only_data_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_downloads_missing_files_trying_mirrors_in_turn(env, tmp_path, monkeypatch):
    opener = FakeOpener(env, {MIRRORS[0]: "offline", MIRRORS[1]: "corrupt"})
    monkeypatch.setattr(M, "_open_url", opener)
    write_files(tmp_path / "cache" / "mnist", env, names=["train-labels-idx1-ubyte"])  # one file already there
    (x_train, _), (x_test, _) = load_mnist(mirrors=MIRRORS, progress=False)
    np.testing.assert_array_equal(x_train, images_of(env))
    assert x_test.shape == (4, 28, 28)
    # the cache now holds the four verified files and nothing else (no temporary files)
    assert only_data_files(tmp_path / "cache" / "mnist") == sorted(f"{n}.gz" for n in env)
    # the first file tried a, b (corrupt), then c; a and b, which failed, were not tried again
    assert opener.calls[:3] == [MIRRORS[i] + "train-images-idx3-ubyte.gz" for i in range(3)]
    assert all(url.startswith(MIRRORS[2]) for url in opener.calls[3:]) and len(opener.calls) == 5
    # the next call finds everything locally
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {m: "offline" for m in MIRRORS}))
    load_mnist(mirrors=MIRRORS, progress=False)


def test_downloads_into_root_when_given(env, tmp_path, monkeypatch):
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {}))
    monkeypatch.setenv(M.ENV_VAR, str(tmp_path / "envdata"))
    load_mnist(tmp_path / "mine", mirrors=MIRRORS, progress=False)
    assert only_data_files(tmp_path / "mine") == sorted(f"{n}.gz" for n in env)
    assert not (tmp_path / "envdata").exists() and not (tmp_path / "cache").exists()


def test_downloads_into_dlcourse_data_when_set(env, tmp_path, monkeypatch):
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {}))
    monkeypatch.setenv(M.ENV_VAR, str(tmp_path / "envdata"))
    load_mnist(mirrors=MIRRORS, progress=False)
    assert only_data_files(tmp_path / "envdata" / "mnist") == sorted(f"{n}.gz" for n in env)


def test_progress_bar_shows_the_download(env, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {}))
    load_mnist(tmp_path / "d", mirrors=MIRRORS[:1], progress=True)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["interrupted", "corrupt", "404"])
def test_a_failed_download_leaves_no_file(env, tmp_path, monkeypatch, mode):
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {m: mode for m in MIRRORS}))
    with pytest.raises(M.MNISTNotFoundError) as err:
        load_mnist(tmp_path / "d", mirrors=MIRRORS, progress=False)
    message = str(err.value)
    for m in MIRRORS:
        assert m + "train-images-idx3-ubyte.gz" in message
    assert {"interrupted": "connection lost", "corrupt": "corrupt", "404": "Not Found"}[mode] in message
    assert only_data_files(tmp_path / "d") == []


def test_ctrl_c_during_a_download_leaves_no_half_file(env, tmp_path, monkeypatch):
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {MIRRORS[0]: "ctrl-c"}))
    with pytest.raises(KeyboardInterrupt):
        load_mnist(tmp_path / "d", mirrors=MIRRORS, progress=False)
    assert only_data_files(tmp_path / "d") == []


def test_offline_fails_fast_with_instructions(env, tmp_path, monkeypatch):
    opener = FakeOpener(env, {m: "offline" for m in MIRRORS})
    monkeypatch.setattr(M, "_open_url", opener)
    monkeypatch.setenv(M.ENV_VAR, str(tmp_path / "envdata"))
    t0 = time.perf_counter()
    with pytest.raises(M.MNISTNotFoundError) as err:
        load_mnist(mirrors=MIRRORS, progress=False)
    assert time.perf_counter() - t0 < 2
    assert len(opener.calls) == len(MIRRORS)  # each mirror tried once, then it gives up
    message = str(err.value)
    assert "Name or service not known" in message
    assert str(tmp_path / "envdata" / "mnist") in message and str(tmp_path / "cache" / "mnist") in message
    assert "DLCOURSE_DATA" in message and "load_mnist(root=" in message
    assert only_data_files(tmp_path / "envdata" / "mnist") == []


def test_unwritable_download_directory_is_reported(env, tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    with pytest.raises(M.MNISTNotFoundError, match="cannot write to") as err:
        load_mnist(tmp_path / "a_file" / "mnist", mirrors=MIRRORS, progress=False)
    assert "DLCOURSE_DATA" in str(err.value)


def test_default_opener_times_out_on_a_hanging_name_lookup(monkeypatch):
    # Socket timeouts do not cover DNS; the default opener bounds the lookup itself.
    def hang(*args, **kwargs):
        time.sleep(5)
    monkeypatch.setattr(M.socket, "getaddrinfo", hang)
    t0 = time.perf_counter()
    with pytest.raises(urllib.error.URLError, match="took more than 0.2 s"):
        M._open_url("https://mirror.invalid/mnist/x.gz", timeout=0.2)
    assert time.perf_counter() - t0 < 1.5


def test_default_opener_reports_an_unknown_host(monkeypatch):
    def unknown(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")
    monkeypatch.setattr(M.socket, "getaddrinfo", unknown)
    with pytest.raises(urllib.error.URLError, match="Name or service not known"):
        M._open_url("https://mirror.invalid/mnist/x.gz", timeout=1)


def test_mirrors_and_checksums_are_the_published_ones():
    assert len(M.MIRRORS) >= 2 and all(m.endswith("/mnist/") for m in M.MIRRORS)
    assert M.SHA256["train-images-idx3-ubyte"] == "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    assert M.SHA256["t10k-labels-idx1-ubyte"] == "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    assert len(M.SHA256) == 4


# ---------------------------------------------------------------------------------------
# The real MNIST, when this machine has the verified copy
# ---------------------------------------------------------------------------------------


def real_mnist_dir() -> Path | None:
    candidates = []
    if os.environ.get(M.ENV_VAR):
        candidates.append(Path(os.environ[M.ENV_VAR]) / "mnist")
    candidates.append(ROOT.parent / "shared" / "data" / "mnist")
    for d in candidates:
        if all(M.find_file(name, [d]) for name in M.FILES):
            return d
    return None


@pytest.fixture(scope="module")
def real():
    d = real_mnist_dir()
    if d is None:
        pytest.skip("no local copy of MNIST ($DLCOURSE_DATA/mnist or ../shared/data/mnist)")
    return load_mnist(d, download=False)


def test_real_mnist_shapes_and_types(real):
    (x_train, y_train), (x_test, y_test) = real
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert x_train.min() == 0 and x_train.max() == 255


def test_real_mnist_label_counts_and_mean_pixel(real):
    (x_train, y_train), (x_test, y_test) = real
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert abs(x_train.mean() - 33.318) < 5e-4
    assert abs(x_train.mean() / 255 - 0.13066) < 5e-6


# ---------------------------------------------------------------------------------------
# Transport faults, file modes, stale temporary files (issue 12)
# ---------------------------------------------------------------------------------------


def test_every_transport_error_is_a_failed_mirror_and_all_are_reported(env, tmp_path, monkeypatch):
    # IncompleteRead (a stream cut short) used to escape raw and stop the loader at the first mirror.
    opener = FakeOpener(env, {MIRRORS[0]: "incomplete", MIRRORS[1]: "ssl"})
    monkeypatch.setattr(M, "_open_url", opener)
    (x_train, _), _ = load_mnist(tmp_path / "d", mirrors=MIRRORS, progress=False)
    np.testing.assert_array_equal(x_train, images_of(env))
    assert opener.calls[:3] == [m + "train-images-idx3-ubyte.gz" for m in MIRRORS]
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {MIRRORS[0]: "incomplete", MIRRORS[1]: "ssl",
                                                         MIRRORS[2]: "interrupted"}))
    with pytest.raises(M.MNISTNotFoundError) as err:
        load_mnist(tmp_path / "e", mirrors=MIRRORS, progress=False)
    message = str(err.value)
    assert "IncompleteRead" in message and "SSLError" in message and "connection lost" in message
    assert only_data_files(tmp_path / "e") == []


def test_downloaded_files_get_the_normal_mode(env, tmp_path, monkeypatch):
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {}))
    old = os.umask(0o022)
    try:
        load_mnist(tmp_path / "d", mirrors=MIRRORS, progress=False)
        os.umask(0o027)
        load_mnist(tmp_path / "g", mirrors=MIRRORS, progress=False)
    finally:
        os.umask(old)
    for folder, mode in ((tmp_path / "d", 0o644), (tmp_path / "g", 0o640)):
        files = [p for p in folder.rglob("*.gz")]
        assert len(files) == 4 and all(p.stat().st_mode & 0o777 == mode for p in files), folder


def test_stale_part_files_are_cleaned_up_by_the_next_download(env, tmp_path, monkeypatch):
    folder = tmp_path / "d"  # load_mnist(root) downloads into root itself
    folder.mkdir(parents=True)
    stale = folder / ".train-images-idx3-ubyte.abc123.part"
    fresh = folder / ".train-images-idx3-ubyte.def456.part"  # another download, still running
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    old = time.time() - 2 * M.STALE_PART_SECONDS
    os.utime(stale, (old, old))
    monkeypatch.setattr(M, "_open_url", FakeOpener(env, {}))
    load_mnist(tmp_path / "d", mirrors=MIRRORS, progress=False)
    assert not stale.exists() and fresh.exists()
