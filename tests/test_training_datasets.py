"""Dataset readers on tiny generated files; missing data gives instructions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from training.datasets import (
    DataMissingError,
    load_cifar,
    load_dataset,
    load_fashion_mnist,
    read_idx,
    write_idx,
)


def _fake_fashion_mnist(folder, n_train=12, n_test=5):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test) % 10,
    }
    for name, a in arrays.items():
        write_idx(folder / name, a)
    return arrays


@pytest.mark.parametrize("name", ["x.gz", "x"])
def test_idx_round_trip(tmp_path, name):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, a)
    b = read_idx(tmp_path / name)
    assert b.dtype == np.uint8 and np.array_equal(a, b)


def test_idx_reader_rejects_truncated_file_naming_it(tmp_path):
    write_idx(tmp_path / "t.idx", np.zeros((4, 4), np.uint8))
    data = (tmp_path / "t.idx").read_bytes()
    (tmp_path / "t.idx").write_bytes(data[:-3])
    with pytest.raises(ValueError, match=r"t\.idx.*payload"):
        read_idx(tmp_path / "t.idx")


def test_idx_reader_rejects_truncated_gzip_naming_it(tmp_path):
    write_idx(tmp_path / "t.idx.gz", np.zeros((64, 64), np.uint8))
    data = (tmp_path / "t.idx.gz").read_bytes()
    (tmp_path / "t.idx.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"t\.idx\.gz: unreadable gzip"):
        read_idx(tmp_path / "t.idx.gz")
    (tmp_path / "t.idx.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"t\.idx\.gz: unreadable gzip"):
        read_idx(tmp_path / "t.idx.gz")


def test_fashion_mnist_reads_torchvision_layout(tmp_path):
    arrays = _fake_fashion_mnist(tmp_path / "FashionMNIST" / "raw")
    d = load_fashion_mnist(tmp_path, system_dirs=())
    assert d.train_images.shape == (12, 1, 28, 28) and d.test_images.shape == (5, 1, 28, 28)
    assert np.array_equal(d.train_images[:, 0], arrays["train-images-idx3-ubyte.gz"])
    assert d.train_labels.dtype == np.int64 and d.num_classes == 10
    x = d.train_images.astype(float) / 255
    assert d.mean[0] == pytest.approx(x.mean()) and d.std[0] == pytest.approx(x.std())


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(DataMissingError, match="apt-get install dataset-fashion-mnist") as e:
        load_fashion_mnist(tmp_path, system_dirs=())
    assert str(tmp_path / "FashionMNIST" / "raw") in str(e.value)


def test_cifar_reads_python_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [0, 1, 9]}, f)
    d = load_cifar("cifar10", tmp_path)
    assert d.train_images.shape == (15, 3, 32, 32) and d.test_images.shape == (3, 3, 32, 32)
    assert len(d.mean) == 3 and d.num_classes == 10


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_reader_accepts_numpy_array_pickles_of_any_protocol(tmp_path, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        raw = pickle.dumps({b"batch_label": b"x", b"data": data, b"labels": [3, 7]}, protocol=protocol)
        if protocol == 2:  # the official files are Python 2 pickles naming numpy.core, not numpy._core
            raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
        (folder / name).write_bytes(raw)
    d = load_cifar("cifar10", tmp_path)
    assert np.array_equal(d.train_images[:2].reshape(2, -1), data)
    assert d.train_labels.tolist() == [3, 7] * 5


class _RunsCode:
    def __reduce__(self):
        return (print, ("pickle payload executed",))


def test_cifar_reader_refuses_pickles_that_call_other_globals(tmp_path, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": _RunsCode(), b"labels": [0]}))
    with pytest.raises(ValueError, match=r"data_batch_1: not a CIFAR python batch.*builtins\.print"):
        load_cifar("cifar10", tmp_path)
    assert "executed" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "batch, message",
    [
        ({b"labels": [0]}, r"not a CIFAR python batch \(KeyError"),
        ({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}, r"not a CIFAR python batch \(ValueError"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, r"2 images but labels of shape \(1,\)"),
    ],
)
def test_cifar_reader_rejects_malformed_batches_naming_the_file(tmp_path, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=r"data_batch_1: " + message):
        load_cifar("cifar10", tmp_path)


def test_cifar_missing_says_where_to_put_files(tmp_path):
    with pytest.raises(DataMissingError, match=r"cifar-100-python\.tar\.gz.*extract"):
        load_cifar("cifar100", tmp_path)


def test_digits_split_is_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.train_images.shape == (1347, 1, 8, 8) and a.test_images.shape == (450, 1, 8, 8)
    assert np.array_equal(a.train_labels, b.train_labels)
    assert a.train_images.max() <= 255


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="Expected dataset name"):
        load_dataset("mnist")
