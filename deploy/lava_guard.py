"""Lava runs that always end and leave nothing behind.

Lava's runtime (lava-nc 0.10.0, archived, never patched here) forks a worker
process per Lava process plus a runtime service and a shared-memory manager,
and creates a ``psm_*`` shared-memory segment in /dev/shm per channel. Left to
itself:

* Ctrl-C in a terminal sends SIGINT to the whole process group: the workers
  die of it, and the parent, stopping the runtime, waits forever for an answer
  from the dead runtime service;
* SIGTERM or SIGKILL to the parent leaves every worker alive and the segments
  in place.

``LavaRunGuard`` wraps one run:

* workers die with the process that forked them (``PR_SET_PDEATHSIG``, set in
  an ``os.register_at_fork`` hook) and ignore the terminal's SIGINT, SIGTERM
  and SIGHUP: the parent alone decides, and stops the runtime;
* in the parent, SIGTERM and SIGHUP raise ``LavaRunInterrupted`` (a
  KeyboardInterrupt) as SIGINT raises KeyboardInterrupt, so all unwind
  through the runtime's stop; an interrupt Python drops (raised inside a
  fork callback) is delivered again;
* the runtime gets ``STOP_TIMEOUT_S`` to stop; after that, on a second
  Ctrl-C, or at once if it was still starting, its workers are killed and its
  segments removed;
* every segment the run creates is written, as it is created, to a registry
  file named after the run's process (PID and start time); a normal end
  removes the file, and each run first removes the segments listed by
  registries whose process is dead. Only names a registry lists are ever
  removed: never a live run's, never another program's.
"""
from __future__ import annotations

import ctypes
import functools
import multiprocessing
import multiprocessing.util
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from lavasparse.errors import CommandError

STOP_TIMEOUT_S = 10.0   # seconds Lava's runtime gets to stop before we kill its workers
# A terminal's or a job manager's signals (Ctrl-C, kill, timeout(1), a closed
# terminal): they interrupt the run in the parent; the workers ignore them.
INTERRUPT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
INTERRUPT_REDELIVERY_S = 0.5   # an interrupt Python dropped (see LavaRunGuard._on_interrupt) comes again after this
REGISTRY_ENV = "LAVASPARSE_LAVA_REGISTRY"   # overrides the registry folder (tests use their own)
REGISTRY_SUFFIX = ".shm"
PR_SET_PDEATHSIG = 1   # linux/prctl.h
SEGMENT_NAME = re.compile(r"[A-Za-z0-9_.-]+")   # what we accept from a registry file: no path tricks


class LavaRunInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived during a Lava run; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


class LavaStopTimeout(CommandError):
    """Lava's runtime did not stop in time; its workers were killed."""


def registry_dir() -> Path:
    """Where runs list their shared-memory segments: ``$LAVASPARSE_LAVA_REGISTRY``,
    else ``<temp dir>/lavasparse-<uid>/lava-shm`` (per user, like /dev/shm's files)."""
    env = os.environ.get(REGISTRY_ENV)
    if env:
        return Path(env)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"lavasparse-{uid}" / "lava-shm"


# ---------------------------------------------------------------- processes

def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (/proc/PID/stat,
    field 22), to tell a process from a later one with the same PID; None
    where /proc does not say (not Linux, or no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()   # after "pid (comm) "; comm may hold spaces
    return int(fields[19])


def process_alive(pid: int, start_ticks: int | None) -> bool:
    """Whether process ``pid`` still runs and (where known) is the same one
    that started at ``start_ticks``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass   # someone else's process holds the PID: alive, but not ours
    if start_ticks is None:
        return True
    now = process_start_ticks(pid)
    return now is None or now == start_ticks


# ------------------------------------------------------- workers (fork hook)

class _ForkHook:
    """State for the ``os.register_at_fork`` hook: installed once per
    process, acting only while a guarded run is active (``active_runs`` > 0).
    Forked children inherit it, so a worker's own children die with it."""

    installed = False
    active_runs = 0
    forking_pid = 0          # the process about to fork (set just before each fork)
    prctl = None             # libc's prctl, looked up in the parent: no dlopen in a fresh child


def _remember_forking_process() -> None:
    _ForkHook.forking_pid = os.getpid()


def _in_forked_worker() -> None:
    """In a child forked during a run: die with the parent, leave signals to it."""
    if not _ForkHook.active_runs:
        return
    if _ForkHook.prctl is not None:
        _ForkHook.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != _ForkHook.forking_pid:
            os._exit(1)   # the parent died between fork and prctl: nobody would kill us
    for sig in INTERRUPT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _libc_prctl():
    """prctl(2) from libc on Linux; None elsewhere (workers then outlive a killed parent)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _install_fork_hook() -> None:
    if _ForkHook.installed:
        return
    _ForkHook.prctl = _libc_prctl()
    os.register_at_fork(before=_remember_forking_process, after_in_child=_in_forked_worker)
    _ForkHook.installed = True


def _child_pids() -> set[int]:
    """PIDs of the live children this process started through multiprocessing
    (Lava's workers and its shared-memory manager are such children)."""
    return {p.pid for p in multiprocessing.active_children()}


def _kill_processes(pids: set[int]) -> int:
    """SIGKILL each of ``pids`` and reap it; returns how many were still alive."""
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    multiprocessing.active_children()   # joins (reaps) the finished ones
    return killed


# ----------------------------------------------------------- shared memory

def unlink_segment(name: str) -> bool:
    """Remove shared-memory segment ``name`` (as in /dev/shm); False if it was gone."""
    try:
        import _posixshmem
    except ImportError:   # not POSIX: no named segments to remove
        return False
    try:
        _posixshmem.shm_unlink("/" + name)
        return True
    except FileNotFoundError:
        return False


class SegmentRegistry:
    """The file listing the shared-memory segments one run created, one name a
    line, written as each is created. Its name holds the owner's PID and start
    time: ``<pid>-<start ticks>-<random>.shm``."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        fd, path = tempfile.mkstemp(prefix=f"{pid}-{process_start_ticks(pid) or 0}-",
                                    suffix=REGISTRY_SUFFIX, dir=directory)
        self.path = Path(path)
        self.names: list[str] = []
        self._file = os.fdopen(fd, "a")

    def record(self, name: str) -> None:
        self._file.write(name + "\n")
        self._file.flush()
        self.names.append(name)

    def remove_segments(self) -> int:
        """Remove the run's segments still present; returns how many were.
        This process's resource tracker forgets them too (it would warn at exit)."""
        from multiprocessing import resource_tracker   # only after a Lava run: Lava starts it

        removed = 0
        for name in self.names:
            if unlink_segment(name):
                removed += 1
                resource_tracker.unregister("/" + name, "shared_memory")
        return removed

    def close(self) -> None:
        """Delete the file: the run ended and its segments are gone."""
        self._file.close()
        self.path.unlink(missing_ok=True)


def _registry_owner(path: Path) -> tuple[int, int | None] | None:
    """(pid, start ticks or None) from a registry file's name; None if it is not one."""
    parts = path.name.split("-")
    if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1]) or None


def remove_segments_of_dead_runs(directory: Path | None = None) -> list[str]:
    """Remove the segments listed by registries whose process has died (a run
    killed with SIGKILL, or a machine's power cut) and those registry files.
    Returns the names of the segments that were still there."""
    directory = registry_dir() if directory is None else directory
    removed = []
    for path in sorted(directory.glob("*" + REGISTRY_SUFFIX)) if directory.is_dir() else []:
        owner = _registry_owner(path)
        if owner is None or process_alive(*owner):
            continue
        try:
            names = path.read_text().split()
        except FileNotFoundError:   # another run cleaned it just now
            continue
        removed += [n for n in names if SEGMENT_NAME.fullmatch(n) and unlink_segment(n)]
        path.unlink(missing_ok=True)
    return removed


class _SegmentRecorder:
    """Lists every segment Lava creates in this process into the active run's
    registry. Lava creates them all through its ``SharedMemoryManager.
    create_shared_memory`` (lava/magma/runtime/message_infrastructure/
    shared_memory_manager.py, called by pypychannel.PyPyChannel); we wrap that
    method in memory once (site-packages stays untouched), and the wrapper
    records the name right after the segment exists."""

    registry: SegmentRegistry | None = None
    installed = False
    creating = False   # inside create_shared_memory: an interrupt now waits (LavaRunGuard._on_interrupt)

    @classmethod
    def install(cls) -> None:
        if cls.installed:
            return
        # Lava: only where a run needs it (it imports only on Python 3.10)
        from lava.magma.runtime.message_infrastructure.shared_memory_manager import SharedMemoryManager

        create = SharedMemoryManager.create_shared_memory

        @functools.wraps(create)
        def create_and_record(self, size: int):
            cls.creating = True
            try:
                handle = create(self, size)
                if cls.registry is not None:
                    cls.registry.record(handle.name)
                return handle
            finally:
                cls.creating = False

        SharedMemoryManager.create_shared_memory = create_and_record
        cls.installed = True


# ------------------------------------------------------------ the guard

class LavaRunGuard:
    """Context manager around one Lava run (see the module's docstring);
    lava.magma must import first (``lava_runner.import_lava``).

        with LavaRunGuard() as guard:
            net = netx.hdf5.Network(...)
            guard.net = net          # the process whose runtime to stop
            net.run(...)

    On leaving, the runtime is stopped within ``stop_timeout_s`` seconds (its
    workers killed and segments removed otherwise), the signal handlers are
    restored and the run's registry is removed. A timeout raises
    LavaStopTimeout when the run itself went well; after an error or an
    interrupt it is reported on stderr and the original exception goes on.
    """

    def __init__(self, stop_timeout_s: float = STOP_TIMEOUT_S):
        self.stop_timeout_s = stop_timeout_s
        self.net = None
        self._children_before: set[int] = set()
        self._saved_handlers: dict[int, object] = {}
        self._registry: SegmentRegistry | None = None
        self._owner_pid = os.getpid()
        self._interrupt: int | None = None   # the first interrupting signal of this run
        self._unwinding = False              # __exit__ has begun: no more redelivery
        self._redelivering = False           # the next signal is one we sent again
        self._saved_unraisablehook = None

    def __enter__(self) -> "LavaRunGuard":
        remove_segments_of_dead_runs()
        _install_fork_hook()
        _SegmentRecorder.install()
        self._children_before = _child_pids()
        self._registry = SegmentRegistry(registry_dir())
        _SegmentRecorder.registry = self._registry
        _ForkHook.active_runs += 1
        self._install_signal_handlers()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._unwinding = True
        try:
            problem, interrupted_while_stopping = self._stop_runtime()
        finally:
            self._restore_signal_handlers()
            _ForkHook.active_runs -= 1
            _SegmentRecorder.registry = None
            self._registry.remove_segments()   # none after a normal stop: Lava unlinked them
            self._registry.close()
        if exc_type is not None:
            if problem:
                print(f"lavasparse: {problem}", file=sys.stderr)
            return False
        interrupt = interrupted_while_stopping or self._interrupt
        if interrupt:   # a Ctrl-C the run swallowed, or one while stopping
            if problem:
                print(f"lavasparse: {problem}", file=sys.stderr)
            raise _interrupt_exception(interrupt)
        if problem:
            raise LavaStopTimeout(problem)
        return False

    # -- signals in the parent

    def _install_signal_handlers(self) -> None:
        """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt (SIGINT) or
        LavaRunInterrupted (the others) in the parent. Python lets only the
        main thread set handlers; elsewhere they stay as they are. A signal
        someone chose to ignore (nohup, a background job's SIGINT) stays
        ignored."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in INTERRUPT_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is not signal.SIG_IGN:
                self._saved_handlers[sig] = previous
                signal.signal(sig, self._on_interrupt)
        # The interrupts Python drops are delivered again: say nothing of them.
        self._saved_unraisablehook = sys.unraisablehook
        sys.unraisablehook = self._quiet_about_dropped_interrupts

    def _restore_signal_handlers(self) -> None:
        for sig, previous in self._saved_handlers.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._saved_handlers.clear()
        if self._saved_unraisablehook is not None:
            sys.unraisablehook = self._saved_unraisablehook
            self._saved_unraisablehook = None

    def _quiet_about_dropped_interrupts(self, unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._saved_unraisablehook(unraisable)

    def _on_interrupt(self, signum: int, frame) -> None:
        """Raise the interrupt, and make sure it arrives: Python drops an
        exception raised inside an ``os.fork`` callback or a ``__del__`` ("Exception
        ignored in ..."), and Lava forks its workers from the main thread, so
        a Ctrl-C during its start-up could vanish and the run go on. Until
        __exit__ begins, a helper thread sends the signal to the main thread
        again every ``INTERRUPT_REDELIVERY_S`` seconds (and the dropped ones
        are not reported: see ``_quiet_about_dropped_interrupts``)."""
        if os.getpid() != self._owner_pid:
            return   # a worker forked a moment ago, before it set SIG_IGN: leave it to the parent
        redelivered, self._redelivering = self._redelivering, False
        if redelivered and self._unwinding:
            return   # the first one arrived after all: not a second Ctrl-C
        if self._interrupt is None:
            self._interrupt = signum
            threading.Thread(target=self._redeliver_interrupt, name="lava-interrupt", daemon=True).start()
        if _SegmentRecorder.creating or _inside_half_built_object(frame):
            # Python's SharedMemory, interrupted between shm_open and its
            # resource_tracker.register, leaks the segment unrecorded; a
            # Finalize interrupted in __init__ has a weakref callback but no
            # _key, and says "AttributeError: 'Finalize' object has no
            # attribute '_key'" when its object dies: let either finish; the
            # interrupt comes again in INTERRUPT_REDELIVERY_S.
            return
        raise _interrupt_exception(signum)

    def _redeliver_interrupt(self) -> None:
        main = threading.main_thread().ident
        while True:
            time.sleep(INTERRUPT_REDELIVERY_S)
            if self._unwinding:
                return
            self._redelivering = True
            signal.pthread_kill(main, self._interrupt)

    # -- stopping the runtime

    def _stop_runtime(self) -> tuple[str | None, int | None]:
        """Stop the runtime, waiting ``stop_timeout_s``; on a timeout, a
        second interrupt or a runtime that never started (its workers wait
        for a command that never comes), kill the run's workers and remove its
        segments. Returns (what went wrong or None, the signal that
        interrupted the stop or None). An error raised by Lava's stop itself
        is raised here."""
        runtime = getattr(self.net, "runtime", None)
        if runtime is None:
            return None, None   # nothing forked yet
        if not getattr(runtime, "_is_started", True):
            # Interrupted (or failed) in Runtime.initialize: the workers wait
            # for a first command and would never answer a STOP. Expected, so quiet.
            self._kill_run()
            return None, None
        failures: list[BaseException] = []

        def stop() -> None:
            try:
                self.net.stop()
            except BaseException as e:   # noqa: BLE001 - handed to the waiting thread
                failures.append(e)

        # A daemon thread: if Lava's stop blocks for good, it must not keep
        # the interpreter from exiting.
        stopper = threading.Thread(target=stop, name="lava-stop", daemon=True)
        stopper.start()
        interrupted = None
        try:
            stopper.join(self.stop_timeout_s)
            why = f"Lava's runtime did not stop within {self.stop_timeout_s:g} s"
        except KeyboardInterrupt as e:   # a second Ctrl-C (or SIGTERM) while stopping: stop now
            interrupted = getattr(e, "signum", signal.SIGINT)
            why = "interrupted again while Lava's runtime was stopping"
        if not stopper.is_alive():
            if failures:
                raise failures[0]
            return None, interrupted
        killed, removed = self._kill_run()
        problem = f"{why}: killed its {killed} worker processes and removed its {removed} shared-memory segments"
        return problem, interrupted

    def _kill_run(self) -> tuple[int, int]:
        """Kill the workers this run started and remove its segments; returns
        (workers killed, segments removed)."""
        killed = _kill_processes(_child_pids() - self._children_before)
        removed = self._registry.remove_segments()
        self._forget_runtime()
        return killed, removed

    def _forget_runtime(self) -> None:
        """Mark the killed runtime as stopped: Lava's ``Runtime.__del__`` calls
        ``stop()`` on a started runtime, which would block forever on the dead
        workers when the interpreter exits."""
        runtime = getattr(self.net, "runtime", None)
        if runtime is not None and hasattr(runtime, "_is_started"):
            runtime._is_started = False


def _inside_half_built_object(frame) -> bool:
    """Whether ``frame`` (where a signal landed) or a caller runs code an
    exception would leave half done, with side effects already made."""
    while frame is not None:
        if frame.f_code is multiprocessing.util.Finalize.__init__.__code__:
            return True
        frame = frame.f_back
    return False


def _interrupt_exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else LavaRunInterrupted(signum)
