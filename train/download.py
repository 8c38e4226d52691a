"""Where each dataset's official files live, their checksums, and a download
that verifies them. Nothing is fetched unless asked (``--download``).

Checksums are MD5, as the datasets' publishers and torchvision/tonic give
them; the URL and the source of each checksum are listed beside it. They
identify the *official* files: local copies rebuilt from other sources (such
as the MNIST in ../shared/data/mnist, whose README says so) differ, and that is
reported, not refused. A folder holding a ``SHA256SUMS`` file is checked
against it, and there a mismatch is an error.
"""
from __future__ import annotations

import hashlib
import shutil
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from lavasparse.fileio import atomic_path


@dataclass(frozen=True)
class Remote:
    """One official file: where to get it, its MD5, and who published that MD5."""

    filename: str
    url: str
    md5: str
    md5_source: str


_TV = "torchvision.datasets (resources)"
_TONIC = "tonic.datasets (neuromorphs/tonic)"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
REMOTES: dict[str, list[Remote]] = {
    "mnist": [Remote("train-images-idx3-ubyte.gz", _MNIST + "train-images-idx3-ubyte.gz",
                     "f68b3c2dcbeaaa9fbdd348bbdeb94873", _TV),
              Remote("train-labels-idx1-ubyte.gz", _MNIST + "train-labels-idx1-ubyte.gz",
                     "d53e105ee54ea40749a09fcbcd1e9432", _TV),
              Remote("t10k-images-idx3-ubyte.gz", _MNIST + "t10k-images-idx3-ubyte.gz",
                     "9fb629c4189551a2d022fa330f9573f3", _TV),
              Remote("t10k-labels-idx1-ubyte.gz", _MNIST + "t10k-labels-idx1-ubyte.gz",
                     "ec29112dd5afa0611ce80d1b7f02629c", _TV)],
    "fashion-mnist": [Remote("train-images-idx3-ubyte.gz", _FASHION + "train-images-idx3-ubyte.gz",
                             "8d4fb7e6c68d591d4c3dfef9ec88bf0d", _TV),
                      Remote("train-labels-idx1-ubyte.gz", _FASHION + "train-labels-idx1-ubyte.gz",
                             "25c81989df183df01b3e8a0aad5dffbe", _TV),
                      Remote("t10k-images-idx3-ubyte.gz", _FASHION + "t10k-images-idx3-ubyte.gz",
                             "bef4ecab320f06d8554ea6380940ec79", _TV),
                      Remote("t10k-labels-idx1-ubyte.gz", _FASHION + "t10k-labels-idx1-ubyte.gz",
                             "bb300cfdad3c16e7a12a480ee83cd310", _TV)],
    "cifar10": [Remote("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                       "c58f30108f718f92721af3b95e74349a", _TV)],
    "nmnist": [Remote("Train.zip", "https://www.dropbox.com/sh/tg2ljlbmtzygrag/AABlMOuR15ugeOxMCX0Pvoxga/Train.zip?dl=1",
                      "20959b8e626244a1b502305a9e6e2031", _TONIC),
               Remote("Test.zip", "https://www.dropbox.com/sh/tg2ljlbmtzygrag/AADSKgJ2CjaBWh75HnTNZyhca/Test.zip?dl=1",
                      "69ca8762b2fe404d9b9bad1103e97832", _TONIC)],
    "shd": [Remote("shd_train.h5.zip", "https://zenkelab.org/datasets/shd_train.h5.zip",
                   "f3252aeb598ac776c1b526422d90eecb", _TONIC),
            Remote("shd_test.h5.zip", "https://zenkelab.org/datasets/shd_test.h5.zip",
                   "1503a5064faa34311c398fb0a1ed0a6f", _TONIC)],
}


class ChecksumError(ValueError):
    """A file whose checksum differs from the one it must have."""


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha256sums(folder: str | Path) -> dict[str, str]:
    """Verify the files a folder's SHA256SUMS lists; return {file: sha256}.
    Raises ChecksumError naming the file on a mismatch; {} without SHA256SUMS."""
    folder = Path(folder)
    sums = folder / "SHA256SUMS"
    if not sums.exists():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*")
        actual = file_digest(folder / name)
        if actual != digest:
            raise ChecksumError(f"{folder / name}: sha256 {actual}, but {sums} says {digest}")
        out[name] = actual
    return out


def official_status(dataset: str, folder: str | Path) -> dict[str, str]:
    """{file: 'official' | 'differs from the official file' | 'missing'} for a
    dataset's archive files in ``folder`` (provenance for reports)."""
    folder = Path(folder)
    status = {}
    for r in REMOTES.get(dataset, []):
        p = folder / r.filename
        if not p.exists():
            status[r.filename] = "missing"
        else:
            status[r.filename] = "official" if file_digest(p, "md5") == r.md5 else "differs from the official file"
    return status


def download(dataset: str, folder: str | Path, progress: bool = True) -> list[Path]:
    """Fetch the dataset's official files into ``folder`` (skipping those
    already there with the right MD5), verify each, and return their paths.
    Raises ChecksumError (the partial file is removed) or the network's error."""
    if dataset not in REMOTES:
        raise ValueError(f"no download known for {dataset!r} (known: {sorted(REMOTES)})")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in REMOTES[dataset]:
        path = folder / r.filename
        if path.exists() and file_digest(path, "md5") == r.md5:
            paths.append(path)
            continue
        if progress:
            print(f"downloading {r.url} -> {path}", flush=True)
        with atomic_path(path) as tmp:
            with urllib.request.urlopen(r.url) as resp, open(tmp, "wb") as f:
                shutil.copyfileobj(resp, f)
            got = file_digest(tmp, "md5")
            if got != r.md5:
                raise ChecksumError(f"{r.url}: md5 {got}, expected {r.md5} ({r.md5_source})")
        paths.append(path)
    return paths


def warn_if_unofficial(dataset: str, folder: str | Path, files: list[str]) -> None:
    """A warning (not an error) for local files that are not the official ones."""
    folder = Path(folder)
    by_name = {r.filename: r for r in REMOTES.get(dataset, [])}
    for name in files:
        r = by_name.get(name)
        if r and (folder / name).exists() and file_digest(folder / name, "md5") != r.md5:
            warnings.warn(f"{folder / name}: not the official file (md5 differs from {r.md5_source}'s); "
                          f"fine for a rebuilt copy, but say so when you report results", stacklevel=3)
