"""Each loader on small files written here in the publisher's exact format,
the checksum machinery, and the real MNIST copy when it is on this machine."""
import gzip
import hashlib
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from lavasparse.train import download as dl
from lavasparse.train.data import load_dataset
from lavasparse.train.encode import encode_batch
from lavasparse.train.events import decode_nmnist, encode_nmnist

# ../shared/data/mnist beside the checkout, or wherever LAVASPARSE_MNIST_DIR points
SHARED_MNIST = Path(os.environ.get("LAVASPARSE_MNIST_DIR",
                                   Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def _write_idx(path, arr):
    raw = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    with gzip.open(path, "wb") as f:
        f.write(raw)


def test_fashion_mnist_idx(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    train, test = load_dataset("fashion-mnist", tmp_path)
    assert train.name == "fashion-mnist" and train.images.shape == (6, 1, 28, 28) and len(test) == 4


def _cifar_batch(rng, n):
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    # The python version's layout: a row is 1024 red, then green, then blue values.
    return {b"batch_label": b"x", b"labels": labels, b"data": images.reshape(n, 3072),
            b"filenames": [b"f"] * n}, images, labels


@pytest.mark.parametrize("packed", [False, True])
def test_cifar10_pickle_batches(tmp_path, packed):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch, images, labels = _cifar_batch(rng, 3)
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        expected.append((images, labels))
    root = tmp_path
    if packed:   # the official archive, unpacked by the loader
        root = tmp_path / "dl"
        root.mkdir()
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
    train, test = load_dataset("cifar10", root)
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert np.allclose(train.images[3], expected[1][0][0] / 255.0)   # red plane first, rows in order
    assert test.labels.tolist() == expected[5][1]


def test_cifar10_errors_name_file_and_key(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, f, protocol=2)
    with pytest.raises(ValueError, match="data_batch_1: missing key 'labels'"):
        load_dataset("cifar10", tmp_path)


def test_nmnist_binary_events(tmp_path):
    rng = np.random.default_rng(2)
    written = {}
    for split, digits in (("Train", (0, 3, 3)), ("Test", (7,))):
        for k, digit in enumerate(digits):
            n = 50
            ev = np.stack([rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n),
                           np.sort(rng.integers(0, 290_000, n))], axis=1)
            d = tmp_path / split / str(digit)
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{k:05d}.bin").write_bytes(encode_nmnist(ev))
            written[(split, digit, k)] = ev
    train, test = load_dataset("nmnist", tmp_path)
    assert len(train) == 3 and train.labels.tolist() == [0, 3, 3] and test.labels.tolist() == [7]
    spikes = encode_batch(train, [1], (2, 34, 34), 10, seed=0)
    ev = written[("Train", 3, 1)]
    # each event lands at (polarity, y, x) in the step its time falls into
    for x, y, p, t in ev:
        assert spikes[0, p, y, x, int(t / 300_000 * 10)] == 1
    assert int(spikes.sum()) == len({(p, y, x, int(t / 300_000 * 10)) for x, y, p, t in ev})


def test_nmnist_overflow_marker_and_zip(tmp_path):
    ev = np.array([[1, 2, 1, 100], [5, 240, 0, 0], [3, 4, 0, 50]])   # y == 240: timer overflow
    out = decode_nmnist(encode_nmnist(ev))
    assert out.tolist() == [[1, 2, 1, 100], [3, 4, 0, 50 + 2 ** 13]]
    with pytest.raises(ValueError, match="5-byte"):
        decode_nmnist(b"\x00" * 7, "x.bin")
    with zipfile.ZipFile(tmp_path / "Train.zip", "w") as z, zipfile.ZipFile(tmp_path / "Test.zip", "w") as z2:
        z.writestr("Train/1/00001.bin", encode_nmnist(ev[:1]))
        z2.writestr("Test/2/00001.bin", encode_nmnist(ev[2:]))
    train, test = load_dataset("nmnist", tmp_path)
    assert train.labels.tolist() == [1] and test.labels.tolist() == [2]


def _write_shd(path, samples, labels):
    with h5py.File(path, "w") as f:
        vf, vu = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
        t = f.create_dataset("spikes/times", (len(samples),), dtype=vf)
        u = f.create_dataset("spikes/units", (len(samples),), dtype=vu)
        for i, (times, units) in enumerate(samples):
            t[i], u[i] = times, units
        f["labels"] = np.asarray(labels, np.uint16)
        f["extra/keys"] = np.array([b"k"] * 20)


def test_shd_hdf5(tmp_path):
    samples = [(np.array([0.05, 0.5, 0.95, 1.2], np.float32), np.array([3, 699, 3, 10], np.uint16)),
               (np.array([0.0], np.float32), np.array([0], np.uint16))]
    _write_shd(tmp_path / "shd_train.h5", samples, [4, 19])
    with zipfile.ZipFile(tmp_path / "shd_test.h5.zip", "w") as z:   # the archive as published
        _write_shd(tmp_path / "tmp.h5", samples[1:], [2])
        z.write(tmp_path / "tmp.h5", "shd_test.h5")
    train, test = load_dataset("shd", tmp_path)
    assert train.num_classes == 20 and train.labels.tolist() == [4, 19] and test.labels.tolist() == [2]
    s = encode_batch(train, [0], (700,), 10, seed=0)[0]
    assert s[3, 0] == 1 and s[699, 5] == 1 and s[3, 9] == 1 and s[10].sum() == 0   # 1.2 s is past the window
    _write_shd(tmp_path / "shd_train.h5", [(np.array([0.1], np.float32), np.array([700], np.uint16))], [1])
    with pytest.raises(ValueError, match="shd_train.h5: spikes/units of sample 0 outside"):
        load_dataset("shd", tmp_path)


def test_download_verifies_checksums(tmp_path, monkeypatch):
    src = tmp_path / "remote.bin"
    src.write_bytes(b"payload")
    md5 = hashlib.md5(b"payload").hexdigest()
    monkeypatch.setitem(dl.REMOTES, "toy", [dl.Remote("toy.bin", src.as_uri(), md5, "this test")])
    (path,) = dl.download("toy", tmp_path / "data", progress=False)
    assert path.read_bytes() == b"payload"
    monkeypatch.setitem(dl.REMOTES, "toy", [dl.Remote("bad.bin", src.as_uri(), "0" * 32, "this test")])
    with pytest.raises(dl.ChecksumError, match="expected 0000"):
        dl.download("toy", tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "bad.bin").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["toy.bin"], "no partial file may stay"


def test_sha256sums_file_is_enforced(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "SHA256SUMS").write_text(f"{hashlib.sha256(b'abd').hexdigest()}  a.bin\n")
    with pytest.raises(dl.ChecksumError, match="a.bin: sha256"):
        dl.check_sha256sums(tmp_path)


@pytest.mark.skipif(not SHARED_MNIST.exists(), reason=f"no MNIST copy at {SHARED_MNIST}")
def test_real_mnist_copy():
    train, test = load_dataset("mnist", SHARED_MNIST)
    assert len(train) == 60000 and len(test) == 10000 and train.images.shape[1:] == (1, 28, 28)
    assert np.bincount(test.labels).tolist()[:2] == [980, 1135]   # the standard test set's class counts
    # This copy is rebuilt (its README says so): not the official files, but verified by its SHA256SUMS.
    assert set(dl.official_status("mnist", SHARED_MNIST).values()) == {"differs from the official file"}
