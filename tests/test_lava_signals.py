"""Lava runs end and leave nothing behind (deploy/lava_guard.py): a real
``lavasparse deploy`` in its own session, interrupted while Lava runs; we count
its processes (every process in its process group, from /proc) and the
shared-memory segments its processes map (/proc/PID/maps), before and after."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import numpy as np
import pytest

from conftest import random_spikes
from lavasparse.deploy.lava_guard import (REGISTRY_ENV, REGISTRY_SUFFIX, STOP_TIMEOUT_S, process_start_ticks,
                                          remove_segments_of_dead_runs)
from lavasparse.export.netx_format import read_network

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts processes and segments through /proc and /dev/shm (Linux)")

ARCH = "16-8-4"
HANG_S = STOP_TIMEOUT_S + 30   # a run that takes longer than this to end is hung, not slow
POLL_S = 0.2


# ------------------------------------------------------------ /proc helpers

def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2:].split()[:3]
        if int(group) == pgid and state != "Z":
            found.append(int(entry.name))
    return found


def mapped_segments(pid: int) -> set[str]:
    """Names of the /dev/shm segments process ``pid`` has mapped."""
    try:
        lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return set()
    return {line.split("/dev/shm/")[1].split()[0] for line in lines if "/dev/shm/psm_" in line}


def workers_and_segments(run: subprocess.Popen) -> tuple[dict[int, set[str]], set[str]]:
    """The run's worker processes that map segments, with their segments, and
    all segments mapped in the run's group (its parent's too)."""
    mapped = {pid: mapped_segments(pid) for pid in group_members(run.pid)}
    workers = {pid: names for pid, names in mapped.items() if names and pid != run.pid}
    return workers, set().union(*mapped.values()) if mapped else set()


def existing(names: set[str]) -> set[str]:
    return {n for n in names if Path("/dev/shm", n).exists()}


def wait_until(condition, timeout_s: float = HANG_S):
    """Poll ``condition`` until it returns something true; returns it (or the last falsy value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(POLL_S)


# ------------------------------------------------------------- the run

@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    """A registry folder of the test's own, for the runs and for this process."""
    path = tmp_path / "registry"
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    return path


def _sigint_as_in_a_terminal() -> None:
    """The run's SIGINT as a foreground command in a terminal has it. An
    ignored SIGINT survives exec, and a test suite started in the background
    by a script (``cmd &``: POSIX shells ignore SIGINT there) would hand it
    on: the run would then rightly ignore Ctrl-C, and the test would wait."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def long_run(tmp_net, tmp_path, registry):
    """Start a Lava run far longer than any test; returns start(command) ->
    Popen, in a new session (its own process group). Kills what is left."""
    _, net_path = tmp_net(ARCH)
    inputs = tmp_path / "long.npy"
    np.save(inputs, random_spikes((2000, 16, 50), p=0.3))   # 100 000 Lava steps
    started = []

    def start(script: str | None = None) -> subprocess.Popen:
        if script is None:
            command = [sys.executable, "-m", "lavasparse.cli", "deploy", str(net_path), "--input", str(inputs)]
        else:
            command = [sys.executable, "-c", script.format(net=net_path, inputs=inputs)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        # stderr to a file, not a pipe: the workers inherit it, and a pipe
        # would keep a reader waiting for as long as any of them lives.
        err_path = tmp_path / f"run{len(started)}.err"
        with open(err_path, "w") as err:
            run = subprocess.Popen(command, env=env, start_new_session=True, text=True,
                                   stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_sigint_as_in_a_terminal)
        run.err_path = err_path
        started.append(run)
        return run

    yield start
    for run in started:
        if group_members(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    remove_segments_of_dead_runs(registry)


def end_of(run: subprocess.Popen) -> str:
    """Wait for the run's parent process to end; returns its stderr."""
    run.wait(timeout=HANG_S)
    return run.err_path.read_text()


def wait_for_workers(run: subprocess.Popen, running: bool = True) -> tuple[dict[int, set[str]], set[str]]:
    """Wait until Lava's workers map their segments; with ``running``, also
    until their number has held for a second (the runtime has started)."""
    def ready():
        assert run.poll() is None, f"the run ended early: {run.err_path.read_text()[-2000:]}"
        workers, segments = workers_and_segments(run)
        return (workers, segments) if workers else None

    found = wait_until(ready)
    assert found, f"no Lava worker mapped a segment within {HANG_S} s"
    workers, segments = found
    deadline = time.monotonic() + HANG_S
    while running and time.monotonic() < deadline:
        time.sleep(1.0)
        now, segments = ready()
        if set(now) == set(workers):
            break
        workers = now
    return workers, segments


def registered(registry: Path) -> set[str]:
    return {name for f in registry.glob("*" + REGISTRY_SUFFIX) for name in f.read_text().split()}


def check_segments_seen(segments: set[str], registry: Path) -> None:
    assert segments, "no shared-memory segment before the signal: the test would prove nothing"
    assert existing(segments) == segments
    assert segments <= registered(registry), "the run's registry misses segments its processes map"


def lava_running(run: subprocess.Popen, registry: Path, running: bool = True,
                 min_workers: int = 1) -> tuple[dict[int, set[str]], set[str]]:
    """The run's workers and segments once Lava runs (see wait_for_workers),
    checked to be there, so that what the test sends has something to stop."""
    workers, segments = wait_for_workers(run, running)
    assert len(workers) >= min_workers
    check_segments_seen(segments, registry)
    return workers, segments


def assert_nothing_left(run: subprocess.Popen, segments: set[str], registry: Path) -> None:
    """No process of the run's group, none of its segments, an empty registry."""
    assert wait_until(lambda: not group_members(run.pid), 10) is True, group_members(run.pid)
    assert existing(segments) == set()
    assert list(registry.iterdir()) == []


# ------------------------------------------------------------ the tests

@pytest.mark.parametrize("sig, to_group, when", [
    (signal.SIGINT, True, "running"),     # Ctrl-C in a terminal
    (signal.SIGINT, True, "starting"),    # Ctrl-C while Lava forks its workers
    (signal.SIGTERM, False, "running"),   # kill PID
])
def test_interrupt_ends_the_run_and_leaves_nothing(long_run, registry, sig, to_group, when):
    run = long_run()
    _, segments = lava_running(run, registry, running=when == "running")

    (os.killpg if to_group else os.kill)(run.pid, sig)
    err = end_of(run)

    name = signal.Signals(sig).name
    assert run.returncode == 128 + sig, err[-2000:]
    assert err.strip().splitlines()[-1] == f"lavasparse deploy: interrupted ({name})"
    assert "Traceback" not in err and "Exception ignored" not in err, err[-2000:]
    assert "did not stop" not in err, "the runtime had to be killed: it should stop on its own"
    assert_nothing_left(run, segments, registry)


def test_killed_parent_takes_its_workers_along(long_run, registry):
    """SIGKILL to the parent alone: the workers die with it (PR_SET_PDEATHSIG);
    what segments Python's resource tracker leaves, the registry cleanup removes."""
    run = long_run()
    _, segments = lava_running(run, registry)

    os.kill(run.pid, signal.SIGKILL)
    end_of(run)

    remove_segments_of_dead_runs(registry)
    assert_nothing_left(run, segments, registry)


def test_segments_of_a_killed_group_are_removed_by_the_next_run(long_run, tmp_net, registry):
    """SIGKILL to the whole group kills Python's resource tracker too: the
    segments stay until the next Lava run removes them."""
    from lavasparse.deploy.lava_runner import run_on_lava

    run = long_run()
    _, segments = lava_running(run, registry)

    os.killpg(run.pid, signal.SIGKILL)
    end_of(run)
    assert wait_until(lambda: not group_members(run.pid), 10) is True, group_members(run.pid)
    assert existing(segments) == segments, "nothing was left: the case this test is about did not happen"

    _, small_net = tmp_net(ARCH)
    run_on_lava(read_network(small_net), random_spikes((1, 16, 4)), progress=False)
    assert existing(segments) == set()
    assert list(registry.iterdir()) == []


def test_runtime_that_cannot_stop_is_killed_after_the_time_limit(long_run, registry):
    """A worker dies mid-run (the runtime service then waits for it forever):
    on Ctrl-C, Lava's stop cannot finish; after ``stop_timeout_s`` the run's
    workers are killed and its segments removed, and the interrupt goes on."""
    run = long_run("from numpy import load; from lavasparse.deploy.lava_runner import run_on_lava; "
                   "from lavasparse.export.netx_format import read_network; "
                   "run_on_lava(read_network('{net}'), load('{inputs}'), progress=False, stop_timeout_s=1)")
    workers, segments = lava_running(run, registry, min_workers=2)

    os.kill(min(workers), signal.SIGKILL)
    os.kill(run.pid, signal.SIGINT)
    err = end_of(run)

    assert run.returncode == -signal.SIGINT, err[-2000:]   # python -c dies of the KeyboardInterrupt
    assert "Lava's runtime did not stop within 1 s: killed its" in err, err[-2000:]
    assert_nothing_left(run, segments, registry)


# ------------------------------------------------- the registry, without Lava

def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_registry(folder: Path, pid: int, start_ticks: int, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pid}-{start_ticks}-test{REGISTRY_SUFFIX}"
    path.write_text("".join(n + "\n" for n in names))
    return path


@contextmanager
def own_segments(count: int):
    """``count`` new segments of this process's; whatever is left is removed
    after, and this process's resource tracker forgets them all (it would warn
    at exit about those the cleanup removed)."""
    segments = [shared_memory.SharedMemory(create=True, size=64) for _ in range(count)]
    try:
        yield segments
    finally:
        for s in segments:
            s.close()
            if Path("/dev/shm", s.name).exists():
                s.unlink()
            else:
                resource_tracker.unregister(s._name, "shared_memory")


def test_cleanup_removes_only_segments_of_dead_runs(tmp_path):
    with own_segments(3) as (dead_runs, live_runs, unlisted):
        dead = write_registry(tmp_path, dead_pid(), 1, [dead_runs.name])
        me = os.getpid()
        live = write_registry(tmp_path, me, process_start_ticks(me), [live_runs.name])

        assert remove_segments_of_dead_runs(tmp_path) == [dead_runs.name]
        assert existing({dead_runs.name, live_runs.name, unlisted.name}) == {live_runs.name, unlisted.name}
        assert not dead.exists() and live.exists()


def test_a_reused_pid_does_not_keep_a_dead_runs_segments(tmp_path):
    """The registry names its owner by PID and start time: another process
    that got the same PID later does not count as the owner."""
    with own_segments(1) as (segment,):
        me = os.getpid()
        write_registry(tmp_path, me, process_start_ticks(me) + 1, [segment.name])
        assert remove_segments_of_dead_runs(tmp_path) == [segment.name]
        assert existing({segment.name}) == set()
