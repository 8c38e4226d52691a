import gzip
import struct

import numpy as np
import pytest
import torch

from lavasparse.train.data import load_digits, load_mnist, read_idx, train_val_split
from lavasparse.train.encode import rate_encode


def test_rate_encode_seeded_and_rate():
    x = torch.tensor([[0.0, 0.25, 1.0]])
    a = rate_encode(x, 4000, seed=3, max_rate=0.8)
    b = rate_encode(x, 4000, seed=3, max_rate=0.8)
    assert a.shape == (1, 3, 4000) and torch.equal(a, b)
    assert not torch.equal(a, rate_encode(x, 4000, seed=4, max_rate=0.8))
    rates = a.mean(-1)[0]
    assert rates[0] == 0
    assert abs(rates[1] - 0.2) < 0.03 and abs(rates[2] - 0.8) < 0.03
    assert set(a.unique().tolist()) <= {0.0, 1.0}


def test_rate_encode_rejects_bad_input():
    with pytest.raises(ValueError):
        rate_encode(torch.tensor([1.5]), 4, 0)
    with pytest.raises(ValueError):
        rate_encode(torch.tensor([0.5]), 0, 0)


def _write_idx(path, arr, gz):
    dtype_code = {np.uint8: 0x08}[arr.dtype.type]
    raw = bytes([0, 0, dtype_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_format(tmp_path, gz):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", 7), ("t10k", 3)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), gz)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n, dtype=np.uint8), gz)
    train, test = load_mnist(tmp_path)
    assert train.images.shape == (7, 1, 28, 28) and test.images.shape == (3, 1, 28, 28)
    assert train.images.max() <= 1.0 and train.labels.dtype == np.int64
    raw = read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}")
    assert np.allclose(train.images[:, 0], raw / 255.0)


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 5) + b"\x00" * 5)
    with pytest.raises(ValueError, match="bad-idx.*magic"):
        read_idx(bad)
    short = tmp_path / "short-idx"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 4)
    with pytest.raises(ValueError, match="short-idx.*10"):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_mnist(tmp_path)


def test_digits_split_is_fixed_and_disjoint():
    train, test = load_digits()
    assert len(train) + len(test) == 1797 and abs(len(test) - 360) <= 1
    assert train.images.shape[1:] == (1, 8, 8) and 0 <= train.images.min() and train.images.max() <= 1
    train2, _ = load_digits()
    assert np.array_equal(train.labels, train2.labels)


def test_train_val_split():
    tr, va = train_val_split(100, 0.2, seed=1)
    assert len(va) == 20 and len(tr) == 80 and not set(tr) & set(va)
    assert np.array_equal(va, train_val_split(100, 0.2, seed=1)[1])
    assert not np.array_equal(va, train_val_split(100, 0.2, seed=2)[1])


def test_test_set_draws_are_draw_major_fresh_encodings():
    """encode_test_set with draws: sample d*N + i is image i's draw d; draw 0
    is the one-draw encoding; later draws are fresh noise of the same images."""
    from lavasparse.train.test_set import encode_test_set
    from lavasparse.train.encode import InputCode

    one, labels1 = encode_test_set("digits", None, "64-16-10", 8, 0, InputCode("rate", 1.0), limit=20)
    three, labels3 = encode_test_set("digits", None, "64-16-10", 8, 0, InputCode("rate", 1.0), limit=20, draws=3)
    assert one.shape == (20, 64, 8) and three.shape == (60, 64, 8)
    assert np.array_equal(labels3, np.tile(labels1, 3))
    assert np.array_equal(three[:20], one)
    assert not np.array_equal(three[20:40], one) and not np.array_equal(three[40:], three[20:40])
    rate = three.reshape(3, 20, 64, 8).mean(axis=(0, 3))        # each image's pixels keep their rate
    assert np.abs(rate - one.mean(axis=-1)).mean() < 0.2
