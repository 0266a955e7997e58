"""Dataset layer: verified IDX readers, MNIST / Fashion-MNIST loading and downloading.

The two supported datasets share the classic IDX layout and the four standard file names
(:data:`FILENAMES`). Where the files come from (:func:`load_dataset`):

1. the ``data_dir`` argument (the CLI's ``--data-dir``),
2. else the environment variable ``PLAUSIGRAD_DATA_DIR``,
3. else, for MNIST only, the small subset bundled with the package (``protocols/bundled``:
   the first 2000 training and first 500 test samples, see its README.md).

A data directory either holds the four files itself or holds a sub-directory named after the
dataset (``mnist/`` or ``fashion-mnist/``) that does, so one ``PLAUSIGRAD_DATA_DIR`` can serve
both datasets. Files are checked against the published MD5s (the bundled subset against its
``manifest.json``). Every problem is reported as a single-line :class:`DatasetError`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import struct
import urllib.request
import zlib
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

import numpy as np

from plausigrad.models.errors import PlausigradError

logger = logging.getLogger(__name__)

#: Environment variable naming the data directory when no ``data_dir`` argument is given.
DATA_DIR_ENV = "PLAUSIGRAD_DATA_DIR"

#: Directory of the bundled MNIST subset (IDX .gz files, manifest.json, README.md).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"

#: The four standard file names, by role; identical for MNIST and Fashion-MNIST.
FILENAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

#: Published MD5 checksums of the official .gz files.
PUBLISHED_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: Mirror base URLs tried in order by :func:`download`.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
}

#: Image datasets (IDX files).
IMAGE_DATASETS = tuple(PUBLISHED_MD5)
#: Event datasets (:mod:`plausigrad.protocols.event_data`).
EVENT_DATASETS = ("nmnist",)
#: Supported dataset names.
DATASET_NAMES = IMAGE_DATASETS + EVENT_DATASETS

#: IDX magic numbers read by :func:`read_idx`: unsigned bytes with 3 (images) or 1 (labels) dims.
IDX_IMAGES_MAGIC = 0x00000803  # 2051
IDX_LABELS_MAGIC = 0x00000801  # 2049
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10



class DatasetError(PlausigradError):
    """A missing, corrupt, or inconsistent dataset file, or an unusable dataset request."""


def _one_line(text):
    """Collapse ``text`` to a single line (messages of wrapped exceptions may span several)."""
    return " ".join(str(text).split())


def _fail(path, problem):
    """Return a :class:`DatasetError` of the form ``"<path>: <problem>"``."""
    return DatasetError(_one_line(f"{path}: {problem}"))


def _download_hint(name):
    """The hint appended to messages about missing data files of dataset ``name``."""
    return (f"pass --data-dir DIR or set {DATA_DIR_ENV} to a directory holding the four {name} "
            "files, or fetch them with `plausigrad download`")


def _check_name(name):
    """Raise :class:`DatasetError` unless ``name`` is a supported dataset."""
    if name not in DATASET_NAMES:
        raise DatasetError(
            f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    return name


def file_md5(path):
    """MD5 hex digest of the file at ``path``; :class:`DatasetError` if it cannot be read."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise _fail(path, f"cannot read file ({exc.strerror or exc})") from None
    return digest.hexdigest()


def _known_as(md5):
    """Describe ``md5`` if it is the published checksum of some known file, else ``""``."""
    for name, table in PUBLISHED_MD5.items():
        for filename, known in table.items():
            if known == md5:
                return f"; this is the published MD5 of {name} {filename}"
    return ""


def _verify_md5(path, expected_md5, hint=""):
    """Raise :class:`DatasetError` unless the MD5 of the file at ``path`` is ``expected_md5``."""
    expected = expected_md5.lower()
    actual = file_md5(path)
    if actual != expected:
        raise _fail(path, f"MD5 mismatch (expected {expected}, got {actual}{_known_as(actual)})"
                          f"{hint}")


#: the MD5 hint of a file that passed every structural check
NO_VERIFY_HINT = ("; its structure is sound (a re-compressed copy?): --no-verify skips the MD5 "
                  "check, the structural checks stay")

#: what ``load_dataset(verify_md5=None)`` does; the CLI's ``--no-verify`` sets it per command
VERIFY_MD5_DEFAULT = True


def _decompress(path):
    """Return the decompressed content of the gzip file at ``path``."""
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except gzip.BadGzipFile as exc:
        raise _fail(path, f"not a valid gzip file ({exc})") from None
    except EOFError:
        raise _fail(path, "truncated gzip stream (incomplete download?)") from None
    except (OSError, zlib.error) as exc:
        raise _fail(path, f"corrupt gzip data ({exc})") from None


def read_idx(path, expected_md5=None):
    """Read an IDX file compressed with gzip (MNIST / Fashion-MNIST layout).

    Returns a uint8 array of shape ``(n, 28, 28)`` for an image file (magic 2051) or ``(n,)``
    for a label file (magic 2049). When ``expected_md5`` is given, the MD5 of the .gz file must
    match it (checked after the structure, so that a damaged file is named by its fault). Raises :class:`DatasetError` (one line naming the file and the problem) if the file
    is missing, unreadable, not gzip, truncated, has a wrong magic number or image size, or if
    its payload length differs from the product of the header dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    data = _decompress(path)  # the structure first: a truncated file says so, not "MD5 mismatch"

    if len(data) < 4:
        raise _fail(path, f"too short for an IDX header ({len(data)} bytes after decompression)")
    magic = int.from_bytes(data[:4], "big")
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        raise _fail(path, f"bad IDX magic number {magic} (0x{magic:08x}); expected "
                          f"{IDX_IMAGES_MAGIC} (images) or {IDX_LABELS_MAGIC} (labels)")
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise _fail(path, f"truncated IDX header ({len(data)} of {header_len} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    if magic == IDX_IMAGES_MAGIC and dims[1:] != IMAGE_SHAPE:
        raise _fail(path, f"unexpected image size {dims[1]}x{dims[2]} (expected 28x28)")
    expected_len = math.prod(dims)
    payload_len = len(data) - header_len
    if payload_len != expected_len:
        shape = "x".join(map(str, dims))
        raise _fail(path, f"shape mismatch: header dims {shape} need {expected_len} payload bytes, "
                          f"file has {payload_len}")
    array = np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()
    if expected_md5 is not None:
        _verify_md5(path, expected_md5)
    return array


def write_idx(path, array):
    """Write a uint8 array of shape ``(n, 28, 28)`` or ``(n,)`` as a gzip-compressed IDX file.

    The gzip header carries no file name and a zero timestamp, so equal arrays give
    byte-identical files (for a given zlib). Returns the path.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise _fail(path, f"can only write uint8 arrays of 1 or 3 dims, got {array.dtype} "
                          f"with shape {array.shape}")
    header = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 compresslevel=9, mtime=0) as compressed:
        compressed.write(header)
        compressed.write(np.ascontiguousarray(array).tobytes())
    return path


def _check_pair(images, labels, what, where):
    """Raise :class:`DatasetError` unless ``images`` and ``labels`` hold the same sample count."""
    if len(images) != len(labels):
        raise DatasetError(_one_line(
            f"{where}: {len(images)} {what} images but {len(labels)} {what} labels"))


@dataclass
class Dataset:
    """A classification dataset ready for the models.

    Images are float32 in [0, 1] with shape ``(n, 784)``; labels are int64 class indices.
    ``source`` says where the data came from (directory, bundled subset, MD5 status). An event
    dataset's rows are its samples' bit-packed frames and ``input_encoding`` says how the input
    layer reads them (:class:`plausigrad.models.encoders.PackedEvents`); ``frames`` keeps the
    sparse frames (:class:`plausigrad.protocols.event_data.EventFrames`, train then test).
    """

    name: str
    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    source: str = ""
    input_encoding: object = None
    frames: tuple = field(default=None, repr=False)

    def __post_init__(self):
        _check_pair(self.train_images, self.train_labels, "training", self.source or self.name)
        _check_pair(self.test_images, self.test_labels, "test", self.source or self.name)

    @property
    def n_inputs(self):
        """Input units: pixels, or the event encoding's units."""
        if self.input_encoding is not None:
            return self.input_encoding.n_units
        return self.train_images.shape[1]

    @property
    def num_train(self):
        """Number of training samples."""
        return len(self.train_labels)

    @property
    def num_test(self):
        """Number of test samples."""
        return len(self.test_labels)


def _has_all_files(directory):
    """Whether ``directory`` holds all four standard files."""
    return all((directory / filename).is_file() for filename in FILENAMES.values())


def _bundled_md5s():
    """Expected MD5 per file of the bundled subset, read from ``bundled/manifest.json``."""
    manifest = BUNDLED_DIR / "manifest.json"
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        return {filename: files[filename]["md5"] for filename in FILENAMES.values()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(manifest, f"missing or invalid bundled manifest ({exc!r}); regenerate it "
                              "with `.venv/bin/python tools/make_bundled_subset.py`") from None


def _locate(name, data_dir):
    """Resolve where to read ``name`` from.

    Returns ``(directory, expected_md5s, description)``; see the module docstring for the order.
    """
    origin = "data_dir argument"
    if data_dir is None and os.environ.get(DATA_DIR_ENV):
        data_dir, origin = os.environ[DATA_DIR_ENV], DATA_DIR_ENV
    if data_dir is None:
        if name != "mnist":
            raise DatasetError(f"{name} is not bundled and needs a data directory: "
                               f"{_download_hint(name)}")
        return BUNDLED_DIR, _bundled_md5s(), "bundled MNIST subset"

    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        raise DatasetError(f"{directory}: data directory ({origin}) does not exist")
    if not _has_all_files(directory) and _has_all_files(directory / name):
        directory = directory / name
    return directory, PUBLISHED_MD5[name], f"{name} ({origin})"


def _event_data_dir(name, data_dir):
    """``data_dir``, else ``$PLAUSIGRAD_DATA_DIR``: an event dataset is never bundled."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir is None:
        raise DatasetError(f"{name} is not bundled and needs a data directory: pass --data-dir "
                           f"DIR or set {DATA_DIR_ENV} (fetch it with `plausigrad download "
                           f"--dataset {name}`)")
    return data_dir


def _check_limit(limit, available, what, where, name):
    """Validate a sample limit; returns the number of samples to keep."""
    if limit is None:
        return available
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit <= 0:
        raise DatasetError(f"{what}_limit must be a positive integer, got {limit!r}")
    if limit > available:
        raise DatasetError(f"{what}_limit={limit} exceeds the {available} {what} samples in "
                           f"{where}; for the full dataset {_download_hint(name)}")
    return int(limit)


def _read_role(directory, role):
    """Read the file for ``role`` (e.g. ``"train_images"``) and check it has the right kind."""
    path = directory / FILENAMES[role]
    array = read_idx(path)
    wants_images = role.endswith("images")
    if (array.ndim == 3) != wants_images:
        raise _fail(path, f"expected an IDX {'image' if wants_images else 'label'} file "
                          f"(magic {IDX_IMAGES_MAGIC if wants_images else IDX_LABELS_MAGIC})")
    if not wants_images and array.size and array.max() >= NUM_CLASSES:
        raise _fail(path, f"label {int(array.max())} out of range 0..{NUM_CLASSES - 1}")
    return array


def load_dataset(name="mnist", data_dir=None, verify_md5=None, train_limit=None,
                 test_limit=None, binning=None):
    """Load MNIST or Fashion-MNIST as a :class:`Dataset`.

    ``name`` is ``"mnist"`` or ``"fashion-mnist"``. The data directory is ``data_dir``, else
    ``$PLAUSIGRAD_DATA_DIR``, else (MNIST only) the bundled subset. Every file's structure is
    checked (gzip stream, IDX magic, header, image size, payload length, label range, equal
    image and label counts); then, with ``verify_md5`` (None: :data:`VERIFY_MD5_DEFAULT`, True
    unless the command was given ``--no-verify``), each file's MD5 against the published one
    (the bundled subset: against its manifest).
    ``train_limit`` / ``test_limit`` keep the first N samples (N must not exceed what is there).
    Raises :class:`DatasetError` with one clear line on any problem.

    ``nmnist`` reads the original N-MNIST layout under the data directory (or its ``nmnist/``)
    and bins it with ``binning`` (a :class:`~plausigrad.protocols.event_data.Binning`; None:
    the default, 60 binary 5 ms bins) (no checksums: the release has per-file data only,
    checked for structure). ``binning`` is refused for image datasets.
    """
    _check_name(name)
    if name in EVENT_DATASETS:
        from plausigrad.protocols.event_data import load_event_dataset
        from plausigrad.protocols.event_data import Binning
        return load_event_dataset(_event_data_dir(name, data_dir),
                                  Binning() if binning is None else binning,
                                  train_limit=train_limit, test_limit=test_limit)
    if binning is not None:
        raise DatasetError(f"{name} is a dataset of images: event binning applies to "
                           f"{', '.join(EVENT_DATASETS)} only")
    directory, expected_md5s, description = _locate(name, data_dir)
    missing = [str(directory / f) for f in FILENAMES.values() if not (directory / f).is_file()]
    if missing:
        raise DatasetError(
            f"{description}: missing {', '.join(missing)}; {_download_hint(name)}")

    if verify_md5 is None:
        verify_md5 = VERIFY_MD5_DEFAULT
    arrays = {role: _read_role(directory, role) for role in FILENAMES}
    where = f"{description} at {directory}"
    _check_pair(arrays["train_images"], arrays["train_labels"], "training", where)
    _check_pair(arrays["test_images"], arrays["test_labels"], "test", where)
    if verify_md5:  # after every structural check: a damaged file is named by its fault
        for filename in FILENAMES.values():
            _verify_md5(directory / filename, expected_md5s[filename], NO_VERIFY_HINT)
    n_train = _check_limit(train_limit, len(arrays["train_labels"]), "train", where, name)
    n_test = _check_limit(test_limit, len(arrays["test_labels"]), "test", where, name)

    checked = "MD5 verified" if verify_md5 else "MD5 not verified"
    return Dataset(
        name=name,
        train_images=_to_float(arrays["train_images"][:n_train]),
        train_labels=arrays["train_labels"][:n_train].astype(np.int64),
        test_images=_to_float(arrays["test_images"][:n_test]),
        test_labels=arrays["test_labels"][:n_test].astype(np.int64),
        source=f"{where} ({checked}; {n_train} train / {n_test} test samples)",
    )


def _to_float(images):
    """uint8 images ``(n, 28, 28)`` -> float32 ``(n, 784)`` in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def _fetch(url, target, expected_md5, timeout):
    """Download ``url`` to ``target`` and check its MD5; returns an error string or ``None``.

    A partial or wrong download is removed.
    """
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                open(partial, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
    except (OSError, ValueError, HTTPException) as exc:
        partial.unlink(missing_ok=True)
        return f"{url}: {_one_line(getattr(exc, 'reason', None) or exc)}"
    actual = file_md5(partial)
    if actual != expected_md5:
        partial.unlink(missing_ok=True)
        return f"{url}: MD5 mismatch (expected {expected_md5}, got {actual}); file removed"
    os.replace(partial, target)
    return None


def download(name, dest_dir, base_urls=None, *, timeout=60.0):
    """Download the four files of ``name`` into ``dest_dir`` and verify their published MD5s.

    Each file is tried from the mirror base URLs in order (``base_urls``, default
    :data:`MIRRORS`; ``file://`` URLs work too). Files already present with the correct MD5 are
    skipped. A download with a wrong checksum is removed; if no mirror delivers a correct file,
    :class:`DatasetError` lists what each mirror did. Returns the four paths.
    """
    _check_name(name)
    if name in EVENT_DATASETS:
        from plausigrad.protocols.event_data import download_nmnist
        return download_nmnist(dest_dir)
    if base_urls is None:
        base_urls = MIRRORS[name]
    elif isinstance(base_urls, str):
        base_urls = [base_urls]
    dest = Path(dest_dir).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(dest, f"cannot create download directory ({exc.strerror or exc})") from None

    paths = []
    for filename in FILENAMES.values():
        target = dest / filename
        expected = PUBLISHED_MD5[name][filename]
        paths.append(target)
        if target.is_file():
            if file_md5(target) == expected:
                logger.info("%s: present with correct MD5, skipped", target)
                continue
            logger.warning("%s: present with wrong MD5, downloading again", target)
        errors = []
        for base in base_urls:
            url = base.rstrip("/") + "/" + filename
            logger.info("downloading %s", url)
            error = _fetch(url, target, expected, timeout)
            if error is None:
                break
            errors.append(error)
        else:
            raise DatasetError(_one_line(
                f"could not download {name} {filename}: " + "; ".join(errors or ["no mirrors"])))
    return paths
