"""CPU scheduling of the runtime's threads (Linux): their nice value and their time slice.

Linux schedules each thread on its own. The event loop, which serves every function's HTTP, and
the isolates serving short invocations run with a short time slice, so that when one of them
wakes up on a core taken by a CPU-bound thread it runs at once (the EEVDF scheduler, Linux 6.6
and later, lets a waking thread with a shorter slice preempt the running one; older kernels
ignore the request). Threads that make isolates get a longer one, and a thread that hogs a core
is demoted: nice 19 and the longest slice, so it runs only on what the others leave. An
unprivileged process can lower its threads' priority but never raise it again.

The threads that serve also share one CPU (`pin_serving`): handing an invocation from the event
loop to an isolate's thread and back is then a switch on one CPU, not a wake-up of another one,
which costs far more where CPUs idle in a virtual machine (measured on 2 vCPUs: a round trip of
about 45 us instead of 150 us). Isolates are made on the other CPUs and move to the serving one
when they start serving a function; a demoted thread leaves it again. Every call is
best effort: where the kernel refuses, nothing changes. Called by __main__.py (the event loop's
thread), isolate.py (isolates) and watchdog.py (the closer thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct

# struct sched_attr (SCHED_ATTR_SIZE_VER1): size, policy, flags, nice, priority, runtime,
# deadline, period, util_min, util_max. For SCHED_OTHER, `runtime` is the slice asked for.
_ATTR = struct.Struct("IIQiIQQQII")
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}  # sched_setattr, sched_getattr
# The kernel accepts 0.1 ms to 100 ms (its default is 0.7 ms times 1 + log2 of the CPUs).
LOOP_SLICE_NS = 100_000  # the event loop: it preempts every other thread of the process
SHORT_SLICE_NS = 300_000  # isolates: they preempt helpers and demoted isolates
HELPER_SLICE_NS = 3_000_000  # making isolates: never urgent
LONG_SLICE_NS = 100_000_000  # demoted
DEMOTED_NICE = 19


def _syscalls() -> tuple[ctypes.CDLL, int, int] | None:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        return None
    try:
        return ctypes.CDLL(None, use_errno=True), *numbers
    except OSError:
        return None


_SYS = _syscalls()


def _get(tid: int) -> tuple[int, ...] | None:
    if _SYS is None:
        return None
    libc, _, get = _SYS
    buffer = ctypes.create_string_buffer(_ATTR.size)
    if libc.syscall(get, tid, buffer, _ATTR.size, 0) != 0:
        return None
    return _ATTR.unpack(buffer.raw)


def set_thread(tid: int, *, nice: int | None = None, slice_ns: int | None = None) -> bool:
    """Give thread `tid` (0: the calling thread) a nice value and/or a time slice; the other
    keeps its current value. False where the kernel refused or cannot do it."""
    attr = _get(tid)
    if _SYS is None or attr is None:
        if nice is None:
            return False
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)  # Linux: per thread
        except OSError:
            return False
        return True
    _size, policy, flags, old_nice, priority, runtime, *rest = attr
    if policy != 0:  # not SCHED_OTHER: someone chose another policy, which stays
        return False
    packed = _ATTR.pack(
        _ATTR.size,
        policy,
        flags,
        old_nice if nice is None else nice,
        priority,
        runtime if slice_ns is None else slice_ns,
        *rest,
    )
    libc, set_call, _ = _SYS
    return bool(libc.syscall(set_call, tid, ctypes.create_string_buffer(packed), 0) == 0)


_serving_cpu: int | None = None  # where the event loop and function isolates run, if pinned
_spare_cpus: set[int] | None = None  # where helpers and demoted threads run, then


def choose_cpu(setting: str, worker_index: int | None) -> int | None:
    """The CPU to serve on for a `serve_cpu` setting, among those this process may use; None
    when serving is not to be pinned ("off", or a single CPU anyway)."""
    allowed = sorted(os.sched_getaffinity(0))
    if setting == "off" or len(allowed) < 2:
        return None
    if setting != "auto":
        return int(setting) if int(setting) in allowed else None
    # Only where the layout is known: local mode's workers, one CPU each in turn. A pod cannot
    # know which CPUs its neighbours on the node picked, so it leaves the choice to the kernel.
    return None if worker_index is None else allowed[worker_index % len(allowed)]


def pin_serving(cpu: int) -> bool:
    """Pin the calling thread (the event loop, before any other thread starts: they inherit it)
    to `cpu`; helpers and demoted threads go to the other CPUs from then on."""
    global _serving_cpu, _spare_cpus
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    _serving_cpu = cpu
    _spare_cpus = (allowed - {cpu}) or None
    return True


def to_spare(tid: int) -> None:
    """Move a thread off the serving CPU (helpers: isolates are made and their bootstrap run
    there, so that making one never competes with serving)."""
    if _spare_cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, _spare_cpus)


def to_serving(tid: int) -> None:
    """Move a thread to the serving CPU (an isolate that starts serving a function)."""
    if _serving_cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, {_serving_cpu})


def demote(tid: int) -> bool:
    """Run a CPU-bound thread only on what the others leave (for good), and off the CPU that
    serves. (Not SCHED_IDLE: V8's threads take the GIL for their callbacks, and one starved
    while holding it would stall the whole process.)"""
    to_spare(tid)
    return set_thread(tid, nice=DEMOTED_NICE, slice_ns=LONG_SLICE_NS)


def thread_slice_ns(tid: int = 0) -> int | None:
    """The slice a thread asked for (None where unknown)."""
    attr = _get(tid)
    return None if attr is None else attr[5]
