"""Atomic file writes: a file is either the old one or the complete new one,
never half-written (a crash or Ctrl-C leaves at most a stray temporary file,
which ``remove_stale_temporaries`` clears); and a lock on a folder, so that
two processes never write one run folder at once."""
from __future__ import annotations

import fcntl
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lavasparse.errors import CommandError

TEMPORARY_GLOB = ".*.tmp"      # what atomic_path names its temporary files
LOCK_NAME = ".lock"


class FolderBusy(CommandError):
    """Another process holds the folder's lock."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")   # TEMPORARY_GLOB
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_npy(path: str | Path, array) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def write_npz(path: str | Path, **arrays) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextmanager
def folder_lock(folder: str | Path, what: str = "run") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (its .lock file) for the block.

    A second process asking for it is refused at once with FolderBusy naming
    the folder and the holder's PID. The lock is flock(2)'s: the kernel drops
    it when its holder exits, however it dies, so a crash never leaves a folder
    locked. (The .lock file itself stays: deleting it would let two processes
    lock two different files of one name.)"""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    f = open(path, "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise FolderBusy(f"{folder}: another {what} is using this folder (pid {holder}); "
                             f"wait for it to end, or use another folder") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()   # releases the lock


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files atomic_path left in ``folder`` and its
    subfolders when a process was killed mid-write; returns what was removed.
    Call it only while holding the folder's lock (a live writer's temporary
    file would go too)."""
    removed = []
    for tmp in Path(folder).rglob(TEMPORARY_GLOB):
        if tmp.is_file():
            tmp.unlink()
            removed.append(tmp)
    return removed


def not_a_regular_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as an ordinary file, or None if it can.

    Checked from ``os.stat`` before anything opens the path: opening a FIFO
    for reading blocks until some writer appears (for good, if none does), a
    directory or a device is no file of data."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as e:
        return f"cannot be examined ({e.strerror})"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    what = next((name for test, name in kinds if test(mode)), "a special file")
    return f"{what}, not a regular file"
