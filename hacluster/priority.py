"""The threads that keep a member in the cluster, ahead of the rest of a busy host.

A member that answers late is as good as lost: a voter that misses its election timers
(0.3-0.6 s) costs the cluster its leader, a leader that answers heartbeats late costs hosts
their leases. Corosync runs its token ring at realtime priority for the same reason, and a
host full of guests (or, in the lab, of other members) leaves a thread at the default share
waiting. Linux nices each thread on its own: a voter's Raft thread and the member port's
event loop (heartbeats, lease grants) run at `raft.critical_nice` (-10 by default: about
nine times the weight of a nice-0 thread when both are runnable). They use little CPU, so
they take little from the guests. A learner's Raft thread keeps the daemon's: it votes on
nothing, and applying an entry a few milliseconds later costs nobody. grpc's own threads
(started by the event loop: they carry the heartbeats too) keep the loop's value; the pools
that run client calls get the daemon's back (like_the_daemon). A voter's Raft process
(`raft.process`) runs every thread at that value (whole_process): all it does is Raft and
the member port, a few percent of a core.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

log = logging.getLogger(__name__)

PR_SET_NAME = 15  # prctl(2): the calling thread's name, 15 bytes
_libc = ctypes.CDLL(None, use_errno=True)


def name_this_thread() -> None:
    """The kernel's name for the calling thread, its Python name: `top -H`, `ps -L` and
    /proc/PID/task/TID/comm then say which of a daemon's threads uses the CPU."""
    _libc.prctl(PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)


def critical(nice: int) -> bool:
    """The calling thread named, and given `nice` (negative: more CPU when contended; 0
    leaves it); False if not allowed (root, or RLIMIT_NICE: the unit's LimitNICE)."""
    name_this_thread()
    if nice >= 0:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as exc:
        log.warning("the %s thread keeps the daemon's CPU priority (nice %d refused: %s)",
                    threading.current_thread().name, nice, exc.strerror)
        return False
    return True


def like_the_daemon() -> None:
    """The calling thread named, with the daemon's own nice value (its main thread's): a
    thread inherits its creator's, and the pools an event loop fills for client calls must
    not run ahead of the host's other work (ThreadPoolExecutor's initializer)."""
    name_this_thread()
    mine = os.getpriority(os.PRIO_PROCESS, os.getpid())
    if nice_of(threading.get_native_id()) != mine:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), mine)


def whole_process(nice: int, back: bool = False) -> bool:
    """Every thread of this process at `nice`, and those it starts from now on (a thread
    inherits its creator's): for a process whose every thread the member depends on, the
    Raft process of a voter (raftproc.py). Niced one by one, its critical threads waited for
    the GIL behind a thread of nice 0 that the kernel had put aside on a busy machine.
    `back`: return to `nice`, the process's own (a voter's Raft process demoted to learner);
    otherwise 0 or more leaves every thread as it is."""
    if nice >= 0 and not back:
        return False
    ok = True
    for tid in os.listdir("/proc/self/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except OSError as exc:
            ok = False
            log.warning("thread %s keeps its CPU priority (nice %d refused: %s)", tid, nice,
                        exc.strerror)
    return ok


def nice_of(native_id: int) -> int:
    """A thread's nice value, as the kernel holds it."""
    return os.getpriority(os.PRIO_PROCESS, native_id)
