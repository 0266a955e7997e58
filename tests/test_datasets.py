"""Tests of the dataset layer (IDX reading, loading, bundled subset, offline download)."""

import gzip
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from plausigrad.models.errors import PlausigradError
from plausigrad.protocols import datasets
from plausigrad.protocols.datasets import (BUNDLED_DIR, FILENAMES, Dataset, DatasetError,
                                           download, file_md5, load_dataset, read_idx, write_idx)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_shared_mnist = pytest.mark.skipif(
    not SHARED_MNIST.is_dir(), reason=f"full MNIST not available at {SHARED_MNIST}")


@pytest.fixture(autouse=True)
def _no_data_dir_env(monkeypatch):
    """Make every test independent of the user's PLAUSIGRAD_DATA_DIR."""
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)


def write_gz(path, raw):
    """Gzip ``raw`` bytes into ``path`` (for hand-made, possibly invalid, IDX files)."""
    path.write_bytes(gzip.compress(raw, mtime=0))
    return path


def make_data_dir(directory, n_train=12, n_test=5, seed=0):
    """Write four small valid IDX files into ``directory``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for role, array in arrays.items():
        write_idx(directory / FILENAMES[role], array)
    return arrays


def raises_one_line(func, *args, match=None, **kwargs):
    """Assert ``func`` raises a single-line DatasetError; returns its message."""
    with pytest.raises(DatasetError, match=match) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message
    error = info.value  # no chained gzip/struct/OS traceback is shown
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return message


# --- bundled subset -------------------------------------------------------------------------

def test_bundled_subset_loads():
    data = load_dataset()
    assert data.name == "mnist" and "bundled" in data.source and "MD5 verified" in data.source
    assert data.train_images.shape == (2000, 784) and data.test_images.shape == (500, 784)
    assert data.train_images.dtype == np.float32 and data.test_images.dtype == np.float32
    for images in (data.train_images, data.test_images):
        assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() == 1.0
    for labels in (data.train_labels, data.test_labels):
        assert labels.dtype == np.int64 and labels.min() == 0 and labels.max() == 9
    assert len(data.train_labels) == data.num_train == 2000
    assert len(data.test_labels) == data.num_test == 500
    assert data.train_labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first MNIST labels
    assert data.test_labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_bundled_subset_matches_manifest_and_is_small():
    manifest = json.loads((BUNDLED_DIR / "manifest.json").read_text())
    total = 0
    for role, filename in FILENAMES.items():
        entry = manifest["files"][filename]
        path = BUNDLED_DIR / filename
        assert file_md5(path) == entry["md5"]
        assert entry["source_md5"] == datasets.PUBLISHED_MD5["mnist"][filename]
        expected_samples = 2000 if role.startswith("train") else 500
        assert len(read_idx(path)) == entry["samples"] == expected_samples
        total += path.stat().st_size
    assert total < 1_000_000
    assert (BUNDLED_DIR / "README.md").is_file()


def test_limits_take_first_samples():
    full, part = load_dataset(), load_dataset(train_limit=100, test_limit=7)
    assert part.train_images.shape == (100, 784) and part.test_labels.shape == (7,)
    np.testing.assert_array_equal(part.train_images, full.train_images[:100])
    np.testing.assert_array_equal(part.test_labels, full.test_labels[:7])


@pytest.mark.parametrize("limit", [0, -3, 2.5, True, 2001])
def test_bad_limits(limit):
    raises_one_line(load_dataset, train_limit=limit, match="train_limit")


def test_tampered_bundled_manifest(tmp_path, monkeypatch):
    for filename in FILENAMES.values():
        (tmp_path / filename).write_bytes((BUNDLED_DIR / filename).read_bytes())
    manifest = json.loads((BUNDLED_DIR / "manifest.json").read_text())
    manifest["files"][FILENAMES["test_labels"]]["md5"] = "0" * 32
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(datasets, "BUNDLED_DIR", tmp_path)
    raises_one_line(load_dataset, match="t10k-labels-idx1-ubyte.gz: MD5 mismatch")
    (tmp_path / "manifest.json").write_text("{not json")
    raises_one_line(load_dataset, match="manifest")


@needs_shared_mnist
def test_bundled_subset_is_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_bundled_subset", REPO_ROOT / "tools" / "make_bundled_subset.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--source", str(SHARED_MNIST), "--out", str(tmp_path)]) == 0
    for name in [*FILENAMES.values(), "manifest.json", "README.md"]:
        assert (tmp_path / name).read_bytes() == (BUNDLED_DIR / name).read_bytes(), name


# --- data directories -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_data_dir_loads(tmp_path, name):
    arrays = make_data_dir(tmp_path)
    data = load_dataset(name, data_dir=tmp_path, verify_md5=False)
    assert data.name == name and str(tmp_path) in data.source and "not verified" in data.source
    assert data.train_images.shape == (12, 784) and data.test_images.shape == (5, 784)
    np.testing.assert_array_equal(data.train_labels, arrays["train_labels"].astype(np.int64))
    np.testing.assert_allclose(data.test_images[3], arrays["test_images"][3].ravel() / 255.0,
                               rtol=1e-6)


def test_data_dir_from_environment_and_subdirectory(tmp_path, monkeypatch):
    make_data_dir(tmp_path / "fashion-mnist", n_train=3, n_test=2)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    data = load_dataset("fashion-mnist", verify_md5=False)
    assert data.num_train == 3 and datasets.DATA_DIR_ENV in data.source


def test_small_files_fail_published_md5(tmp_path):
    make_data_dir(tmp_path)
    raises_one_line(load_dataset, "mnist", data_dir=tmp_path, match="MD5 mismatch")


@needs_shared_mnist
def test_full_mnist_with_md5_verification():
    data = load_dataset("mnist", data_dir=SHARED_MNIST)
    assert data.train_images.shape == (60000, 784) and data.test_images.shape == (10000, 784)
    assert "MD5 verified" in data.source
    assert sorted(np.unique(data.train_labels).tolist()) == list(range(10))
    bundled = load_dataset()
    np.testing.assert_array_equal(bundled.train_images, data.train_images[:2000])
    np.testing.assert_array_equal(bundled.test_labels, data.test_labels[:500])


@needs_shared_mnist
def test_mnist_files_asked_for_as_fashion_mnist():
    message = raises_one_line(load_dataset, "fashion-mnist", data_dir=SHARED_MNIST,
                              match="MD5 mismatch")
    assert "published MD5 of mnist" in message


# --- error cases ----------------------------------------------------------------------------

def test_error_is_a_plausigrad_error():
    assert issubclass(DatasetError, PlausigradError)


def test_unknown_dataset_name():
    message = raises_one_line(load_dataset, "cifar10", match="unknown dataset")
    assert "mnist" in message and "fashion-mnist" in message


def test_fashion_mnist_needs_a_directory():
    raises_one_line(load_dataset, "fashion-mnist", match="needs a data directory")


def test_missing_data_dir(tmp_path):
    raises_one_line(load_dataset, data_dir=tmp_path / "nope", match="does not exist")


def test_missing_file(tmp_path):
    make_data_dir(tmp_path)
    missing = tmp_path / FILENAMES["test_labels"]
    missing.unlink()
    message = raises_one_line(load_dataset, data_dir=tmp_path, verify_md5=False)
    assert str(missing) in message
    assert "--data-dir" in message and datasets.DATA_DIR_ENV in message
    assert "plausigrad download" in message
    raises_one_line(read_idx, missing, match="file not found")


def test_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((4, 28, 28), np.uint8) + 7)
    path.write_bytes(path.read_bytes()[:-20])
    raises_one_line(read_idx, path, match=r"x\.gz: truncated gzip")


def test_not_gzip(tmp_path):
    path = tmp_path / "garbage.gz"
    path.write_bytes(b"this is not a gzip file at all" * 10)
    raises_one_line(read_idx, path, match=r"garbage\.gz: not a valid gzip file")


def test_corrupt_gzip_payload(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.arange(200, dtype=np.uint8))
    raw = bytearray(path.read_bytes())
    raw[15:25] = b"\xff" * 10
    path.write_bytes(bytes(raw))
    raises_one_line(read_idx, path, match=r"x\.gz: ")


def test_wrong_magic(tmp_path):
    path = write_gz(tmp_path / "m.gz", struct.pack(">II", 2050, 3) + bytes(3))
    raises_one_line(read_idx, path, match="bad IDX magic number 2050")


def test_payload_shorter_than_header(tmp_path):
    path = write_gz(tmp_path / "s.gz", struct.pack(">IIII", 2051, 10, 28, 28) + bytes(5 * 784))
    message = raises_one_line(read_idx, path, match="shape mismatch")
    assert "7840" in message and "3920" in message


def test_truncated_header_and_wrong_image_size(tmp_path):
    short = write_gz(tmp_path / "h.gz", struct.pack(">II", 2051, 10))
    raises_one_line(read_idx, short, match="truncated IDX header")
    odd = write_gz(tmp_path / "o.gz", struct.pack(">IIII", 2051, 1, 32, 32) + bytes(1024))
    raises_one_line(read_idx, odd, match="unexpected image size 32x32")


def test_read_idx_md5(tmp_path):
    path = write_idx(tmp_path / "l.gz", np.arange(10, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(path, expected_md5=file_md5(path)), np.arange(10))
    raises_one_line(read_idx, path, expected_md5="0" * 32,
                    match=r"l\.gz: MD5 mismatch \(expected 0{32}, got [0-9a-f]{32}\)")


def test_images_labels_count_mismatch(tmp_path):
    make_data_dir(tmp_path)
    write_idx(tmp_path / FILENAMES["train_labels"], np.zeros(11, np.uint8))
    raises_one_line(load_dataset, data_dir=tmp_path, verify_md5=False,
                    match="12 training images but 11 training labels")
    with pytest.raises(DatasetError, match="test images"):
        Dataset("x", np.zeros((2, 784)), np.zeros(2), np.zeros((3, 784)), np.zeros(2), "here")


def test_swapped_and_out_of_range_files(tmp_path):
    make_data_dir(tmp_path)
    write_idx(tmp_path / FILENAMES["test_images"], np.zeros(5, np.uint8))
    raises_one_line(load_dataset, data_dir=tmp_path, verify_md5=False,
                    match="expected an IDX image file")
    make_data_dir(tmp_path)
    write_idx(tmp_path / FILENAMES["test_labels"], np.full(5, 10, np.uint8))
    raises_one_line(load_dataset, data_dir=tmp_path, verify_md5=False,
                    match="label 10 out of range")


# --- download -------------------------------------------------------------------------------

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// mirror with four small files, and the MD5 table patched to match them."""
    source = tmp_path / "mirror"
    make_data_dir(source, n_train=4, n_test=2)
    table = {filename: file_md5(source / filename) for filename in FILENAMES.values()}
    monkeypatch.setitem(datasets.PUBLISHED_MD5, "mnist", table)
    return source


def test_download_from_file_mirror(tmp_path, mirror):
    dest = tmp_path / "dest"
    dead = (tmp_path / "no-such-mirror").as_uri() + "/"
    paths = download("mnist", dest, base_urls=[dead, mirror.as_uri() + "/"])
    assert [p.name for p in paths] == list(FILENAMES.values())
    for path in paths:
        assert path.read_bytes() == (mirror / path.name).read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILENAMES.values())
    data = load_dataset("mnist", data_dir=dest)  # MD5-verified against the patched table
    assert data.num_train == 4 and data.num_test == 2

    # Already present with the right MD5: skipped, so even an unusable mirror list works.
    assert download("mnist", dest, base_urls=[dead]) == paths


def test_download_wrong_md5_removes_file(tmp_path, mirror, monkeypatch):
    filename = FILENAMES["train_labels"]
    monkeypatch.setitem(datasets.PUBLISHED_MD5["mnist"], filename, "0" * 32)
    dest = tmp_path / "dest"
    message = raises_one_line(download, "mnist", dest, base_urls=mirror.as_uri(),
                              match=f"could not download mnist {filename}")
    assert "MD5 mismatch" in message and "removed" in message
    assert not (dest / filename).exists()
    assert not list(dest.glob("*.part"))


def test_download_unreachable_mirror(tmp_path, mirror):
    raises_one_line(download, "mnist", tmp_path / "dest",
                    base_urls=[(tmp_path / "absent").as_uri()], match="could not download")
    raises_one_line(download, "emnist", tmp_path / "dest", match="unknown dataset")


# --- structure before checksum; --no-verify ---------------------------------------------------

def _copy_of_mnist(directory, damage):
    """The published MNIST files in ``directory`` (links), the test labels as ``damage`` of
    their bytes."""
    directory.mkdir()
    for filename in FILENAMES.values():
        if filename != FILENAMES["test_labels"]:
            (directory / filename).symlink_to(SHARED_MNIST / filename)
    labels = (SHARED_MNIST / FILENAMES["test_labels"]).read_bytes()
    (directory / FILENAMES["test_labels"]).write_bytes(damage(labels))
    return directory


@needs_shared_mnist
def test_a_damaged_file_is_named_by_its_fault_not_by_its_md5(tmp_path):
    """With MD5 verification on (the default), a truncated or wrongly labelled published file
    is reported as what is wrong with it: the structure is checked before the checksum."""
    truncated = _copy_of_mnist(tmp_path / "truncated", lambda data: data[:len(data) // 2])
    message = raises_one_line(load_dataset, "mnist", data_dir=truncated)
    assert "truncated gzip stream" in message and "MD5" not in message
    bad_label = _copy_of_mnist(tmp_path / "label", lambda data: gzip.compress(
        gzip.decompress(data)[:-1] + b"\x0b"))
    message = raises_one_line(load_dataset, "mnist", data_dir=bad_label)
    assert "label 11 out of range" in message and "MD5" not in message


@needs_shared_mnist
def test_a_recompressed_copy_fails_the_md5_and_loads_with_no_verify(tmp_path, capsys):
    """A valid copy compressed anew (other gzip bytes, the same IDX content): an MD5 mismatch
    that says the structure is sound and names --no-verify; with it, the same arrays load."""
    from plausigrad.protocols.cli import main
    copy = _copy_of_mnist(tmp_path / "copy", lambda data: gzip.compress(gzip.decompress(data),
                                                                        compresslevel=1))
    message = raises_one_line(load_dataset, "mnist", data_dir=copy)
    assert "t10k-labels-idx1-ubyte.gz: MD5 mismatch" in message and "--no-verify" in message
    loaded = load_dataset("mnist", data_dir=copy, verify_md5=False, test_limit=100)
    np.testing.assert_array_equal(
        loaded.test_labels, load_dataset("mnist", data_dir=SHARED_MNIST, test_limit=100).test_labels)
    argv = ["train", "ssnnbp", "--device", "runtime", "--hidden", "6", "--train-limit", "2",
            "--test-limit", "2", "--forward-steps", "3", "--data-dir", str(copy)]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "MD5 mismatch" in lines[0] and "--no-verify" in lines[0], lines
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-verify"]) == 0
    assert "MD5 not verified" in capsys.readouterr().out
    assert datasets.VERIFY_MD5_DEFAULT  # --no-verify held for that command only
    assert main([*argv, "--out", str(tmp_path / "again")]) == 2
