"""MNIST from the four standard IDX files: find them, check them, download them when missing.

``load_mnist()`` returns ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape
(N, 28, 28) (N = 60000 and 10000) and int64 labels 0..9, the arrays Keras users know.

Where it looks, in this order, for each file (gzipped ``name.gz`` or plain ``name``):

1. ``root`` if given (and ``root/mnist``),
2. ``$DLCOURSE_DATA/mnist`` when the environment variable ``DLCOURSE_DATA`` is set,
3. the user cache directory, ``~/.cache/dlcourse/mnist`` on Linux (the platform's own
   elsewhere, from ``platformdirs``).

A missing file is downloaded (with ``download=True``) from the public mirrors, tried in
turn, into ``root`` if given, else ``$DLCOURSE_DATA/mnist`` if set, else the cache
directory. Every file, found or downloaded, must have the SHA-256 (of its decompressed
content) listed in :data:`SHA256`; a corrupt file is refused with a message that names it.
Downloads go to a temporary file that is renamed only once complete and verified, so an
interrupted download never leaves half a file behind. Offline, the short connect timeout
makes it fail within seconds, with an error that says where it looked and how to get the files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from ..config import DATA_ENV, data_dir

ENV_VAR = DATA_ENV  # the course's data folder, read by dlcourse.config.data_dir()

# SHA-256 of each file's *decompressed* content (the same on every public mirror).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FILES = tuple(SHA256)

# Public mirrors of the gzipped files, tried in this order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

CONNECT_TIMEOUT = 5.0  # seconds: a dead network fails fast instead of hanging

# IDX element types: type code -> big-endian NumPy dtype.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is not on this machine and could not be downloaded; the message says how to get it."""


class CorruptFileError(ValueError):
    """A data file is damaged (bad gzip, bad IDX header, wrong SHA-256); the message names it."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


# ---------------------------------------------------------------------------------------
# The IDX format
# ---------------------------------------------------------------------------------------


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an IDX file into an array of its native shape and type.

    Layout: two zero bytes, a type code (0x08 = uint8, ..., 0x0E = float64), the number of
    dimensions d, then d big-endian uint32 sizes, then the values in C order, big-endian.
    Raises :class:`CorruptFileError` (naming ``name``) for a bad header or a wrong length.
    """
    data = bytes(data)
    if len(data) < 4:
        raise CorruptFileError(f"{name}: expected an IDX header of at least 4 bytes, got {len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        raise CorruptFileError(f"{name}: not an IDX file (expected the magic number to start with two zero bytes, "
                               f"got {data[:2].hex()})")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise CorruptFileError(f"{name}: unknown IDX type code 0x{code:02X} "
                               f"(expected one of {', '.join(f'0x{c:02X}' for c in IDX_DTYPES)})")
    if ndim == 0:
        raise CorruptFileError(f"{name}: expected at least one dimension in the IDX header, got 0")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptFileError(f"{name}: the IDX header announces {ndim} dimensions ({header} bytes), "
                               f"but the file has only {len(data)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise CorruptFileError(f"{name}: the IDX header announces shape {shape} of {dtype.name} "
                               f"({expected} bytes in all), but the file has {len(data)} bytes (truncated or padded)")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=True)  # native byte order, writable


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzipped (``.gz``) or not, without checking a checksum."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def _read_bytes(path: Path, gzipped: bool | None = None) -> bytes:
    """The (decompressed) content of ``path``; a damaged gzip stream is a CorruptFileError naming the file.

    ``gzipped`` defaults to whether the name ends in ``.gz``.
    """
    raw = path.read_bytes()
    if not (path.suffix == ".gz" if gzipped is None else gzipped):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise CorruptFileError(f"{path}: damaged gzip file ({err}). Delete it and call load_mnist() again "
                               "to download a fresh copy.", reason=f"damaged gzip: {err}") from err


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked_content(path: Path, name: str, gzipped: bool | None = None) -> bytes:
    """Content of ``path`` if its SHA-256 is the one of MNIST file ``name``, else CorruptFileError."""
    content = _read_bytes(path, gzipped)
    digest = sha256_hex(content)
    if digest != SHA256[name]:
        raise CorruptFileError(
            f"{path}: corrupt or not the MNIST file {name} (SHA-256 of its content is {digest}, "
            f"expected {SHA256[name]}). Delete it and call load_mnist() again to download a fresh copy, "
            "or replace it with a good one.", reason=f"SHA-256 {digest}, expected {SHA256[name]}")
    return content


# ---------------------------------------------------------------------------------------
# Where the files are
# ---------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The user cache directory for MNIST (``~/.cache/dlcourse/mnist`` on Linux)."""
    import platformdirs
    return Path(platformdirs.user_cache_dir("dlcourse")) / "mnist"


def search_dirs(root=None) -> list[Path]:
    """The directories ``load_mnist(root)`` looks in, in order."""
    dirs = []
    if root is not None:
        dirs += [Path(root).expanduser(), Path(root).expanduser() / "mnist"]
    data = data_dir()
    if data is not None:
        dirs.append(data / "mnist")
    dirs.append(cache_dir())
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def download_dir(root=None) -> Path:
    """Where missing files are downloaded to: ``root``, else ``$DLCOURSE_DATA/mnist``, else the cache."""
    if root is not None:
        return Path(root).expanduser()
    data = data_dir()
    return data / "mnist" if data is not None else cache_dir()


def find_file(name: str, dirs) -> Path | None:
    """The first ``name.gz`` or ``name`` in ``dirs``, or None."""
    for d in dirs:
        for candidate in (Path(d) / f"{name}.gz", Path(d) / name):
            if candidate.is_file():
                return candidate
    return None


def how_to_get_mnist(root=None) -> str:
    """Instructions naming the directories searched and ``DLCOURSE_DATA``."""
    env = str(data_dir()) if data_dir() is not None else ""
    dirs = "\n".join(f"    {d}" for d in search_dirs(root))
    files = "\n".join(f"    {name}.gz" for name in FILES)
    return (
        f"Looked for the MNIST files in:\n{dirs}\n"
        f"({ENV_VAR} is {'set to ' + repr(env) if env else 'not set'}.)\n"
        f"To get MNIST, either\n"
        f"  * connect to the internet and call load_mnist() again: it downloads the four files "
        f"(about 11 MB) into {download_dir(root)}, or\n"
        f"  * download these four files from one of the mirrors\n"
        + "\n".join(f"      {m}" for m in MIRRORS) + "\n"
        f"    (or copy them from a machine that has them):\n{files}\n"
        f"    and put them in a folder called 'mnist', e.g. /data/mnist/, then set the environment variable "
        f"{ENV_VAR} to its parent (export {ENV_VAR}=/data) before starting Python/Jupyter, "
        f"or pass the folder itself: load_mnist(root='/data/mnist').\n"
        f"{ENV_VAR} is the course's data directory: the loader looks for MNIST in $DLCOURSE_DATA/mnist."
    )


# ---------------------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------------------


def _resolve(host: str, timeout: float) -> None:
    """DNS lookup with a time limit (socket timeouts do not cover name resolution)."""
    outcome: dict = {}

    def run():
        try:
            socket.getaddrinfo(host, None)
        except OSError as err:
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise urllib.error.URLError(f"looking up {host} took more than {timeout:g} s")
    if "error" in outcome:
        raise urllib.error.URLError(outcome["error"])


def _open_url(url: str, timeout: float):
    """Open ``url`` for reading (tests replace this with a fake opener). Returns a file-like response."""
    host = urllib.parse.urlparse(url).hostname
    if host:
        _resolve(host, timeout)
    request = urllib.request.Request(url, headers={"User-Agent": "dlcourse (MNIST loader)"})
    return urllib.request.urlopen(request, timeout=timeout)


STALE_PART_SECONDS = 600  # a .part file this old belongs to a download that was killed, not one in progress


def _default_file_mode() -> int:
    """0666 less the process's umask: the mode ``open()`` gives a new file (0644 with the usual umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _remove_stale_parts(dest: Path, name: str) -> None:
    """Delete temporary ``.name.*.part`` files left by killed downloads (not those of a download still running)."""
    now = time.time()
    for part in dest.glob(f".{name}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()
        except OSError:
            pass  # gone already, or not ours to delete: harmless


def _fetch_to(dest: Path, name: str, mirrors, timeout: float, progress: bool):
    """Try each mirror for ``name.gz``; write a verified copy to ``dest/name.gz`` atomically.

    Returns (path or None, [(mirror, what went wrong), ...] for each failed attempt).
    """
    from tqdm.auto import tqdm

    failures = []
    target = dest / f"{name}.gz"
    for mirror in mirrors:
        url = mirror + f"{name}.gz"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as response:
                total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=f"{name}.gz",
                          disable=not progress, leave=False) as bar:
                    while True:
                        chunk = response.read(1 << 16)
                        if not chunk:
                            break
                        out.write(chunk)
                        bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            _checked_content(tmp, name, gzipped=True)  # refuses a truncated or wrong download
            os.chmod(tmp, _default_file_mode())  # mkstemp's 0600 would hide a shared data folder from others
            os.replace(tmp, target)  # atomic: the file appears complete or not at all
            _remove_stale_parts(dest, name)
            return target, failures
        except CorruptFileError as err:
            failures.append((mirror, f"{url}: the downloaded file is corrupt ({err.reason})"))
        except Exception as err:  # noqa: BLE001 - any transport error (HTTPError, timeout, reset, IncompleteRead,
            # SSL, a proxy's garbage) means "this mirror failed": note it and try the next. Ctrl-C still stops.
            reason = getattr(err, "reason", None) or err
            failures.append((mirror, f"{url}: {type(err).__name__}: {reason}"))
        finally:
            if tmp.exists():
                tmp.unlink()
    return None, failures


# ---------------------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------------------


def load_mnist(root=None, download: bool = True, *, mirrors=MIRRORS, timeout: float = CONNECT_TIMEOUT,
               progress: bool = True):
    """Load MNIST: ``(x_train, y_train), (x_test, y_test) = load_mnist()``.

    x_*: uint8 arrays of shape (60000, 28, 28) and (10000, 28, 28), pixel values 0..255;
    y_*: int64 arrays of shape (60000,) and (10000,), digits 0..9.

    ``root``: a directory to look in first (and to download to). ``download``: fetch missing
    files from the public ``mirrors`` (``timeout`` seconds to connect). Raises
    :class:`MNISTNotFoundError` (with instructions) when the files are missing and cannot be
    downloaded, and :class:`CorruptFileError` naming any file whose SHA-256 is wrong.
    """
    dirs = search_dirs(root)
    paths = {name: find_file(name, dirs) for name in FILES}
    missing = [name for name, p in paths.items() if p is None]
    if missing and download:
        dest = download_dir(root)
        try:
            dest.mkdir(parents=True, exist_ok=True)
            probe = tempfile.TemporaryFile(dir=dest)
            probe.close()
        except OSError as err:
            raise MNISTNotFoundError(f"MNIST files missing ({', '.join(missing)}) and cannot be downloaded: "
                                     f"cannot write to {dest} ({err}).\n" + how_to_get_mnist(root)) from err
        live_mirrors = list(mirrors)
        all_failures = []
        for name in missing:
            path, failures = _fetch_to(dest, name, live_mirrors, timeout, progress)
            all_failures += [message for _, message in failures]
            if path is None:
                raise MNISTNotFoundError(
                    f"MNIST file {name} is not on this machine and could not be downloaded:\n"
                    + "\n".join(f"  {f}" for f in all_failures) + "\n" + how_to_get_mnist(root))
            paths[name] = path
            # A mirror that failed is not tried again for the next files (offline: fail fast, once).
            failed = {mirror for mirror, _ in failures}
            live_mirrors = [m for m in live_mirrors if m not in failed]
        missing = []
    if missing:
        raise MNISTNotFoundError(f"MNIST files not found: {', '.join(missing)} (download=False).\n"
                                 + how_to_get_mnist(root))
    arrays = {name: parse_idx(_checked_content(path, name), str(path)) for name, path in paths.items()}
    x_train, y_train = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    x_test, y_test = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
            raise CorruptFileError(f"MNIST {split} files: expected uint8 images (N, 28, 28) and N labels, "
                                   f"got {x.dtype} {x.shape} and {y.shape}")
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))
