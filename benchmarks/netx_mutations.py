"""Malformed netx files, and a way to read each one without risking the reader's process.

``mutants(count, seed)`` describes a seeded corpus of files mutated from
lava-dl 0.6.0's own netx networks (tiny.net, mnist.net, pilotnet_lif,
ntidigits), one mutation each, of the kinds in ``KINDS``: deleted fields,
wrong dtypes and shapes, NaN/inf, extreme values, huge declared sizes (a
small file that declares a (1, 10**9) weight), links and loops, deep nesting,
long strings, truncations, byte corruption, and paths that are not files
(a FIFO, a directory). ``Mutant.write(folder)`` writes one.

``examine_all(mutants, ...)`` writes each mutant, then reads it (and checks
it, and optionally emulates it) in a forked child under a memory limit
(``RLIMIT_AS``) and a timeout, and classifies what happened (``Outcome``):
accepted, refused with an error that names the file, a traceback (which
exception), a message that does not name the file, a timeout, out of memory,
or a crash.

Used by ``benchmarks/netx_fuzz.py`` (the corpus and its table) and by
``tests/test_netx_fuzz.py`` (a few hundred mutants in CI), which imports this
file by its path: tests must not be imported by code, and the generator
belongs with the benchmark. Linux only (fork, RLIMIT_AS, mkfifo).
"""
from __future__ import annotations

import json
import os
import re
import resource
import select
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

# lava-dl's networks, by the short names used in tables.
BASES = {
    "tiny": "tiny.net",
    "mnist": "mnist.net",
    "pilotnet_lif": "gts/pilotnet_lif/network.net",
    "ntidigits": "gts/ntidigits/ntidigits.net",
}
# ntidigits ends in an 'average' layer, which netx 0.6.0 cannot build and the
# reader refuses by its type; we drop it so that its mutants reach the check
# and the emulator like the others' (the mutations still hit layers 0..4).
DROPPED_LAYERS = {"ntidigits": ("layer/5",)}

# Mutation kinds and their share of a corpus (paths that are not files are
# few: each one that blocks costs the reader a whole timeout).
KINDS = {"delete": 10, "dtype": 10, "shape": 10, "nan_inf": 10, "extreme": 10, "huge_size": 10, "link": 10,
         "nesting": 10, "long_string": 10, "truncate": 10, "corrupt": 10, "not_a_file": 3}

# Values the "extreme" kind writes (whole field or one element).
EXTREMES = (-1, 0, 0.25, 0.5, 1.5, 127.5, 128, 255, 256, 4097, 63, 1e4, 1e9, 2 ** 31, -2 ** 31, 2 ** 63 - 1,
            1e30, -1e30, 1e308)
# Fields the "extreme" kind aims at most (structure and neuron parameters), besides any dataset.
FOCUS = ("stride", "padding", "dilation", "groups", "vThMant", "iDecay", "vDecay", "delay", "shape", "bias",
         "refDelay", "weight")


def lava_dl_netx_dir() -> Path:
    """lava-dl 0.6.0's netx test files (its wheel installs them as the package ``tests``)."""
    import lava.lib.dl.slayer as slayer   # lava.lib.dl is a namespace package: no __file__

    return Path(slayer.__file__).resolve().parents[4] / "tests" / "lava" / "lib" / "dl" / "netx"


@dataclass
class Base:
    """A base network's bytes and the paths inside it (sorted: seeded choices are stable)."""

    name: str
    data: bytes
    datasets: list[str]
    groups: list[str]


def load_bases(folder: Path, names=tuple(BASES)) -> dict[str, Base]:
    """Each base network as bytes (ntidigits without its average layer), written once to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    src_dir = lava_dl_netx_dir()
    bases = {}
    for name in names:
        path = folder / f"base-{name}.net"
        shutil.copyfile(src_dir / BASES[name], path)
        with h5py.File(path, "a") as f:
            for drop in DROPPED_LAYERS.get(name, ()):
                del f[drop]
        datasets, groups = [], []
        with h5py.File(path, "r") as f:
            f.visititems(lambda n, o: (datasets if isinstance(o, h5py.Dataset) else groups).append(n))
        bases[name] = Base(name, path.read_bytes(), sorted(datasets), sorted(groups))
        path.unlink()
    return bases


@dataclass
class Mutant:
    """One mutated file: the base it comes from, its kind and seed; ``what``
    describes the mutation once written."""

    index: int
    kind: str
    base: str
    seed: int
    what: str = ""

    @property
    def name(self) -> str:
        return f"m{self.index:05d}-{self.kind}-{self.base}.net"

    def write(self, folder: Path, bases: dict[str, Base]) -> Path:
        """Write the mutant into ``folder``; returns the path to read (for
        not_a_file, the FIFO, directory or link itself)."""
        rng = np.random.default_rng([self.seed, self.index])
        path = folder / self.name
        base = bases[self.base]
        if self.kind == "not_a_file":
            self.what = _not_a_file(path, rng)
            return path
        path.write_bytes(base.data)
        if self.kind in ("truncate", "corrupt"):
            self.what = (_truncate if self.kind == "truncate" else _corrupt)(path, rng)
            return path
        with h5py.File(path, "a") as f:
            self.what = MUTATIONS[self.kind](f, rng, base, path)
        return path


def mutants(count: int, seed: int = 0, bases=tuple(BASES)) -> list[Mutant]:
    """``count`` mutants, kinds in proportion to ``KINDS`` (interleaved, so
    that any prefix holds every kind), each kind's mutants taking the bases in turn."""
    order = _interleaved_kinds()
    seen = dict.fromkeys(KINDS, 0)
    out = []
    for i in range(count):
        kind = order[i % len(order)]
        out.append(Mutant(i, kind, bases[seen[kind] % len(bases)], seed))
        seen[kind] += 1
    return out


def _interleaved_kinds() -> list[str]:
    """One cycle of kinds, each ``share`` times, spread evenly over the cycle."""
    slots = sorted((j / share, k) for k, share in KINDS.items() for j in range(share))
    return [k for _, k in slots]


# ---- Mutations (each returns a description) -----------------------------------------------

def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def _replace(f: h5py.File, name: str, **create) -> None:
    if name in f or f.get(name, getlink=True) is not None:
        del f[name]
    f.create_dataset(name, **create)


def _numeric_datasets(f: h5py.File, base: Base) -> list[str]:
    return [n for n in base.datasets if f[n].dtype.kind in "biuf"]


def _delete(f, rng, base, path):
    name = _pick(rng, base.datasets + base.groups + ["layer"] * 2)
    del f[name]
    return f"deleted {name}"


def _dtype(f, rng, base, path):
    name = _pick(rng, base.datasets)
    v = np.asarray(f[name][()])
    choice = int(rng.integers(9))
    if v.dtype.kind in "OS":
        v = np.array([3])
        choice = min(choice, 4)
    if choice == 0:
        new, label = v.astype(np.float64), "float64"
    elif choice == 1:
        new, label = v.astype(np.int8), "int8 (wrapped)"
    elif choice == 2:
        new, label = v.astype(np.uint8), "uint8 (wrapped)"
    elif choice == 3:
        new, label = v.astype(bool), "bool"
    elif choice == 4:
        new, label = v.astype(np.complex128), "complex"
    elif choice == 5:
        new, label = np.array(str(v.tolist())[:200].encode()), "a string"
    elif choice == 6:
        _replace(f, name, data=np.array([str(v.tolist())[:50]], dtype=object), dtype=h5py.string_dtype())
        return f"{name} as a variable-length string"
    elif choice == 7:
        new = np.zeros(v.shape, dtype=[("a", "<i4"), ("b", "<f8")])
        label = "a compound"
    else:
        new, label = np.frombuffer(v.astype(np.float64).tobytes() or b"\0" * 8, dtype="V8"), "opaque bytes"
    _replace(f, name, data=new)
    return f"{name} as {label}"


def _shape(f, rng, base, path):
    name = _pick(rng, _numeric_datasets(f, base))
    v = np.asarray(f[name][()])
    choice = int(rng.integers(9))
    if choice == 0:
        new, label = v[None], "an extra leading axis"
    elif choice == 1:
        new, label = v.T.copy(), "axes reversed"
    elif choice == 2:
        new, label = v.reshape(-1), "flattened"
    elif choice == 3:
        new, label = v.reshape(-1)[:-1], "one value short"
    elif choice == 4:
        new, label = np.concatenate([v.reshape(-1), v.reshape(-1)[:1]]), "one value more"
    elif choice == 5:
        new, label = v.reshape(-1)[:0], "empty"
    elif choice == 6:
        new, label = (v.reshape(-1)[:1].reshape(()) if v.size else np.array(0)), "a scalar"
    elif choice == 7:
        new, label = np.concatenate([v.reshape(1, -1)] * 2), "doubled"
    else:
        _replace(f, name, data=h5py.Empty(v.dtype if v.dtype.kind in "iuf" else "f8"))
        return f"{name} with an empty (null) dataspace"
    _replace(f, name, data=new)
    return f"{name} {label}: shape {v.shape} -> {new.shape}"


def _nan_inf(f, rng, base, path):
    name = _pick(rng, _numeric_datasets(f, base))
    v = np.asarray(f[name][()]).astype(np.float64)
    bad = _pick(rng, [np.nan, np.inf, -np.inf])
    everywhere = rng.random() < 0.3 or v.size == 0
    if everywhere:
        v = np.full(v.shape, bad)
    else:
        v.flat[int(rng.integers(v.size))] = bad
    _replace(f, name, data=v)
    return f"{name}: {'all' if everywhere else 'one value'} {bad}"


def _extreme(f, rng, base, path):
    numeric = _numeric_datasets(f, base)
    focused = [n for n in numeric if n.rsplit("/", 1)[-1] in FOCUS]
    name = _pick(rng, focused if focused and rng.random() < 0.7 else numeric)
    v = np.asarray(f[name][()])
    value = _pick(rng, EXTREMES)
    as_int = isinstance(value, int) and v.dtype.kind in "iu" and -2 ** 63 <= value < 2 ** 63
    new = v.astype(np.int64 if as_int else np.float64)
    one = new.size > 1 and rng.random() < 0.5
    if one:
        new.flat[int(rng.integers(new.size))] = value
    else:
        new = np.full(new.shape, value, dtype=new.dtype)
    _replace(f, name, data=new)
    return f"{name} = {value!r} ({'one value' if one else 'all'}, {new.dtype})"


def _huge_size(f, rng, base, path):
    numeric = _numeric_datasets(f, base)
    weights = [n for n in numeric if n.endswith("weight")] or numeric
    name = _pick(rng, weights if rng.random() < 0.6 else numeric)
    shape = _pick(rng, [(1, 10 ** 9), (10 ** 5, 10 ** 5), (10 ** 9,), (2 ** 20, 2 ** 20), (3, 10 ** 8, 4)])
    chunks = tuple(min(n, 1024) for n in shape)
    _replace(f, name, shape=shape, dtype=np.float32, chunks=chunks, compression="gzip", fillvalue=1.0)
    if rng.random() < 0.3:
        # and a layer shape that agrees with it, so that only its size can stop the reader
        layer = name.split("/")[1] if name.startswith("layer/") else None
        if layer is not None and f"layer/{layer}/shape" in f:
            _replace(f, f"layer/{layer}/shape", data=np.array([shape[0]]))
            return f"{name} declared {shape} (float32, chunked, never written), layer/{layer}/shape = ({shape[0]},)"
    return f"{name} declared {shape} (float32, chunked, never written)"


def _link(f, rng, base, path):
    fifo = path.with_suffix(".fifo")
    name = _pick(rng, base.datasets + base.groups)
    parent = name.rsplit("/", 1)[0] if "/" in name else "/"
    choice = int(rng.integers(8))
    del f[name]
    if choice == 0:
        f[name] = h5py.SoftLink("/nowhere/at/all")
        return f"{name}: a dangling soft link"
    if choice == 1:
        other = _pick(rng, [n for n in base.datasets + base.groups if not n.startswith(name)] or ["layer"])
        f[name] = h5py.SoftLink("/" + other)
        return f"{name}: a soft link to /{other}"
    if choice == 2:
        f[name] = h5py.SoftLink("/" + name)
        return f"{name}: a soft link to itself"
    if choice == 3:
        os.mkfifo(fifo)
        f[name] = h5py.ExternalLink(str(fifo), "/layer")
        return f"{name}: an external link into a FIFO"
    if choice == 4:
        f[name] = h5py.ExternalLink(str(path), "/" + name)
        return f"{name}: an external link to itself in the same file"
    if choice == 5:
        f[name] = h5py.ExternalLink("/dev/zero", "/layer")
        return f"{name}: an external link into /dev/zero"
    if choice == 6:
        f[name] = f[parent] if parent != "/" else f["/"]
        return f"{name}: a hard link to its own parent group {parent} (a loop)"
    os.mkfifo(fifo)
    f.create_dataset(name, shape=(4,), dtype=np.float32, external=[(str(fifo), 0, 16)])
    return f"{name}: a dataset whose data is stored in a FIFO"


def _nesting(f, rng, base, path):
    name = _pick(rng, base.datasets + base.groups)
    depth = int(_pick(rng, [50, 200, 1000]))
    del f[name]
    g = f.create_group(name)
    for _ in range(depth):
        g = g.create_group("0" if rng.random() < 0.5 else "type")
    g["type"] = np.array([b"dense"])
    return f"{name}: a chain of {depth} nested groups"


def _long_string(f, rng, base, path):
    strings = [n for n in base.datasets if n.endswith("type")]
    name = _pick(rng, strings)
    size = int(_pick(rng, [1000, 100_000, 1_000_000]))
    choice = int(rng.integers(5))
    if choice == 0:
        _replace(f, name, data=np.array([b"d" * size]))
        return f"{name}: a {size:,}-byte fixed-length string"
    if choice == 1:
        _replace(f, name, data=np.array(["dense" + "x" * size], dtype=object), dtype=h5py.string_dtype())
        return f"{name}: a {size:,}-character variable-length string"
    if choice == 2:
        _replace(f, name, data=np.array([bytes(rng.integers(128, 256, 64, dtype=np.uint8))]))
        return f"{name}: 64 non-ASCII bytes"
    if choice == 3:
        _replace(f, name, data=np.array([b"dense"] * 1000))
        return f"{name}: 1,000 strings"
    layer = f["layer"]
    layer.create_group("k" * min(size, 60_000))
    return "layer: a subgroup with a 60,000-character name"


def _truncate(path: Path, rng) -> str:
    data = path.read_bytes()
    keep = int(len(data) * float(rng.uniform(0.0, 0.999)))
    path.write_bytes(data[:keep])
    return f"truncated to {keep:,} of {len(data):,} bytes"


def _corrupt(path: Path, rng) -> str:
    data = bytearray(path.read_bytes())
    if rng.random() < 0.5:
        n = int(rng.integers(1, 65))
        where = rng.integers(0, min(len(data), 4096) if rng.random() < 0.5 else len(data), n)
        for i in where:
            data[int(i)] ^= 1 << int(rng.integers(8))
        what = f"{n} bits flipped"
    else:
        start = int(rng.integers(0, max(1, len(data) - 4096)))
        data[start:start + 4096] = bytes(rng.integers(0, 256, min(4096, len(data) - start), dtype=np.uint8))
        what = f"4 KiB of random bytes at {start:,}"
    path.write_bytes(bytes(data))
    return what


def _not_a_file(path: Path, rng) -> str:
    choice = int(rng.integers(6))
    if choice == 0:
        os.mkfifo(path)
        return "a FIFO (named pipe) with no writer"
    if choice == 1:
        fifo = path.with_suffix(".fifo")
        os.mkfifo(fifo)
        path.symlink_to(fifo)
        return "a symbolic link to a FIFO"
    if choice == 2:
        path.mkdir()
        (path / "layer").write_text("x")
        return "a directory"
    if choice == 3:
        path.symlink_to("/dev/null")
        return "a symbolic link to /dev/null"
    if choice == 4:
        path.symlink_to(path)
        return "a symbolic link to itself"
    path.write_bytes(b"")
    return "an empty file"


MUTATIONS = {"delete": _delete, "dtype": _dtype, "shape": _shape, "nan_inf": _nan_inf, "extreme": _extreme,
             "huge_size": _huge_size, "link": _link, "nesting": _nesting, "long_string": _long_string}


# ---- Reading each mutant in a child process ------------------------------------------------

OUTCOMES = ("accepted", "refused", "traceback", "raw message", "timeout", "memory", "crashed")


@dataclass
class Outcome:
    """What reading one mutant did: ``outcome`` is one of OUTCOMES; ``exc``
    the exception's type (refused, traceback, raw message, memory); ``stage``
    where it happened (read, check, read_cuba, emulate); ``peak_mb`` the
    child's peak resident memory above its parent's, in MB."""

    mutant: Mutant
    outcome: str
    exc: str = ""
    stage: str = ""
    message: str = ""
    seconds: float = 0.0
    peak_mb: float = 0.0
    extra: dict = field(default_factory=dict)


# How a failed allocation reads when it is not a MemoryError (torch's CPU allocator, C++).
_ALLOCATION_FAILED = re.compile(r"(unable to|can't|cannot|failed to) allocate|DefaultCPUAllocator|bad_alloc", re.I)


def preload(emulate: bool) -> None:
    """Import what the children use, once, before forking them."""
    import lavasparse.deploy.resources  # noqa: F401
    import lavasparse.export.netx_format  # noqa: F401
    import lavasparse.layers  # noqa: F401
    if emulate:
        import lavasparse.simulate.emulator  # noqa: F401


def examine(path: Path, emulate: bool) -> dict:
    """Read ``path`` as ``lavasparse check`` does (any neuron), check it, read
    it as the simulators do and, with ``emulate``, run the emulator on one
    sample of 4 steps. Returns where it stopped and why."""
    import warnings

    from lavasparse.deploy.resources import check_network
    from lavasparse.export.netx_format import read_network

    warnings.simplefilter("ignore")
    stage = "read"
    try:
        desc = read_network(path, any_neuron=True)
        stage = "check"
        check_network(desc)
        stage = "read_cuba"
        desc = read_network(path)
        if emulate:
            stage = "emulate"
            from lavasparse.simulate.emulator import Emulator

            x = (np.random.default_rng(0).random((1, *desc.input_shape, 4)) < 0.5).astype(np.int32)
            Emulator(desc).run(x)
    except BaseException as e:  # noqa: BLE001 -- the point is to see every kind of failure
        return {"ok": False, "exc": type(e).__name__, "stage": stage, "message": str(e)[:400],
                "is_value_error": isinstance(e, ValueError), "names_file": str(path) in str(e),
                "memory": isinstance(e, MemoryError) or bool(_ALLOCATION_FAILED.search(str(e)))}
    return {"ok": True, "stage": stage}


def _vm_bytes() -> int:
    """This process's current virtual memory size (bytes), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _child(path: Path, emulate: bool, memory_bytes: int, wfd: int) -> None:
    """In the forked child: limit address space to what it has plus
    ``memory_bytes``, examine the file, write the JSON result, exit."""
    try:
        # What the child holds at the start (pages it shares with its parent
        # included), on a line of its own: the parent subtracts it from the
        # child's peak, even for a child it has to kill.
        os.write(wfd, f"{_rss_kb()}\n".encode())
        limit = _vm_bytes() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        # One thread: a forked child must not reuse its parent's OpenMP pool
        # (libgomp's is not fork-safe), and torch runs the check's conv fan-out.
        import torch

        torch.set_num_threads(1)
        result = examine(path, emulate)
        os.write(wfd, json.dumps(result).encode()[:60_000])
    finally:
        os._exit(0)


@dataclass
class _Running:
    mutant: Mutant
    path: Path
    pid: int
    rfd: int
    started: float
    chunks: list = field(default_factory=list)


def examine_all(items: list[Mutant], folder: Path, bases: dict[str, Base], timeout_s: float = 10.0,
                memory_bytes: int = 2 << 30, jobs: int = 2, emulate: bool = False, keep: bool = False,
                progress=None) -> list[Outcome]:
    """Write and examine every mutant, ``jobs`` children at a time, each
    under ``memory_bytes`` more address space than it starts with and killed
    after ``timeout_s`` seconds. Files are removed after use unless ``keep``."""
    preload(emulate)
    pending = list(items)
    running: list[_Running] = []
    done: list[Outcome] = []
    while pending or running:
        while pending and len(running) < jobs:
            m = pending.pop(0)
            sub = folder / m.name.replace(".net", "")
            sub.mkdir(parents=True, exist_ok=True)
            path = m.write(sub, bases)
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(rfd)
                _child(path, emulate, memory_bytes, wfd)
            os.close(wfd)
            running.append(_Running(m, path, pid, rfd, time.monotonic()))
        ready, _, _ = select.select([r.rfd for r in running], [], [], 0.05)
        for r in running:
            if r.rfd in ready:
                chunk = os.read(r.rfd, 65536)
                if chunk:
                    r.chunks.append(chunk)
        for r in list(running):
            pid, status, usage = os.wait4(r.pid, os.WNOHANG)
            timed_out = pid == 0 and time.monotonic() - r.started > timeout_s
            if pid == 0 and not timed_out:
                continue
            if timed_out:
                os.kill(r.pid, signal.SIGKILL)
                _, status, usage = os.wait4(r.pid, 0)
            while True:   # the rest of the child's report
                chunk = os.read(r.rfd, 65536)
                if not chunk:
                    break
                r.chunks.append(chunk)
            os.close(r.rfd)
            running.remove(r)
            out = _classify(r, status, timed_out, time.monotonic() - r.started, usage.ru_maxrss)
            done.append(out)
            if progress:
                progress(out)
            if not keep:
                shutil.rmtree(r.path.parent, ignore_errors=True)
    done.sort(key=lambda o: o.mutant.index)
    return done


def _classify(r: _Running, status: int, timed_out: bool, seconds: float, maxrss_kb: int) -> Outcome:
    first, _, raw = b"".join(r.chunks).partition(b"\n")
    start_kb = int(first) if first else maxrss_kb
    base = dict(mutant=r.mutant, seconds=seconds, peak_mb=max(0, maxrss_kb - start_kb) / 1024)
    if timed_out:
        return Outcome(outcome="timeout", **base)
    if not raw:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return Outcome(outcome="crashed", exc=f"signal {sig}" if sig else f"exit {os.WEXITSTATUS(status)}", **base)
    res = json.loads(raw)
    if res["ok"]:
        return Outcome(outcome="accepted", stage=res["stage"], **base)
    kind = ("memory" if res["memory"] else "refused" if res["is_value_error"] and res["names_file"]
            else "raw message" if res["is_value_error"] else "traceback")
    return Outcome(outcome=kind, exc=res["exc"], stage=res["stage"], message=res["message"], **base)
