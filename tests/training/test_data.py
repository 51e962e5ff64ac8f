"""Reading MNIST IDX files from a path, partitions, and typed errors naming the culprit."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from optcert.errors import InvalidOptionError, UnreadableFileError
from optcert.training.data import IMAGES, LABELS, Partition, load_mnist, read_idx, write_images
from tests.training.conftest import synthetic, write_idx


def test_partitions_parse_and_describe():
    p = Partition.parse("0-7999")
    assert (p.start, p.stop, p.size, str(p)) == (0, 8000, 8000, "0-7999")
    assert "images 0–7999" in p.describe()
    assert Partition.parse("5") == Partition(5, 6)
    assert p.overlaps(Partition(7999, 8001)) and not p.overlaps(Partition(8000, 10000))
    for bad in ("a-b", "9-3", "-1"):
        with pytest.raises(InvalidOptionError):
            Partition.parse(bad)


def test_load_a_partition(mnist_dir):
    images, labels = synthetic()
    x, y = load_mnist(mnist_dir, Partition(10, 20))
    assert x.shape == (10, 784) and x.dtype == np.float32 and np.array_equal(y, labels[10:20])
    assert np.allclose(x, images[10:20].reshape(10, -1) / 255.0, atol=1e-7)
    x64, _ = load_mnist(mnist_dir, Partition(10, 20), dtype=np.float64)
    assert np.array_equal(x64, images[10:20].reshape(10, -1) / 255.0)
    with pytest.raises(InvalidOptionError, match="beyond"):
        load_mnist(mnist_dir, Partition(0, 401))


def test_real_mnist_slice_has_the_documented_class_counts(real_mnist):
    _, y = load_mnist(real_mnist, Partition(0, 10000))
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bad_files_are_typed_errors(tmp_path, mnist_dir):
    with pytest.raises(UnreadableFileError, match="no MNIST folder"):
        load_mnist(tmp_path / "missing")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x05" + b"\x00" * 8))
    with pytest.raises(UnreadableFileError, match="magic"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "trunc.gz").write_bytes(gzip.compress((2049).to_bytes(4, "big") + (10).to_bytes(4, "big") + b"\x01"))
    with pytest.raises(UnreadableFileError, match="data bytes"):
        read_idx(tmp_path / "trunc.gz")
    (tmp_path / "notgz.gz").write_bytes(b"plain")
    with pytest.raises(UnreadableFileError):
        read_idx(tmp_path / "notgz.gz")
    folder = write_idx(tmp_path / "mismatch", *synthetic(20))
    (folder / LABELS).write_bytes((mnist_dir / LABELS).read_bytes())
    with pytest.raises(UnreadableFileError, match="do not match"):
        load_mnist(folder)
    assert (folder / IMAGES).is_file()


def test_written_images_are_read_by_the_gap_study(tmp_path, mnist_dir):
    from optcert.spec.images import load_images

    x, y = load_mnist(mnist_dir, Partition(0, 5), dtype=np.float64)
    path = write_images(tmp_path / "eval.npz", x, y, Partition(0, 5))
    images, labels = load_images(path)
    assert np.array_equal(images, x) and np.array_equal(labels, y)
