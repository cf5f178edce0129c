"""The Raft member in a process of its own (`raft.process = true`), behind RaftNode's face.

Why: a daemon's threads share one GIL. A thread busy with CPU work (the leader loop at 48
hosts and 10,000 VMs, a big `vm list`) makes the Raft tick thread wait for the GIL after each
of its system calls, one per member it sends to (bench.gil_convoy: 0.04 ms alone, 2.4 ms
beside a busy thread); on a loaded host the thread holding the GIL is itself descheduled
while the Raft thread, niced ahead of it, waits: a priority inversion that stretched a 48-host
lab leader's ticks past its voters' election timers. In a process of its own the tick thread
holds its own GIL and its own nice value, as etcd's and Consul's Raft goroutines never wait
on their servers' other work.

How: the child (`python -m hacluster.raftproc`) runs a RaftNode; this process keeps an equal
replica by applying the same commands in the same order (core.state is deterministic), so
every reader here still holds one immutable ClusterState. One socket carries pickled tuples
both ways (the child is this daemon's own code: nothing else can write to a socketpair); a
shared page carries what is read on hot paths without a message: the leader's majority
proof (lease grants), term, leadership; and this daemon's liveness stamp. Whether the replica
has caught up travels in the stream, after the commands it covers: a flag beside the stream
said so while this daemon was still replaying, and its agent acted on an old state.

The child also serves the member port once the daemon asks it to (serve_members,
memberport.py): heartbeats are answered and leases granted here, beside Raft, and forwarded
to the daemon's leader loop in order with the commands applied.

A daemon that stops answering (hung, SIGSTOP) must not keep its Raft member leading: its
leader loop recovers nobody. A leading child stops ticking once the stamp is older than
`RaftTimings.daemon_silence`, or one lease once the child grants the leases itself (a
daemon starved that long under load must not cost the cluster its leader), or twice that
while the daemon uses CPU (resumed and busy: its stamp thread waits for the GIL); the
voters then elect another leader, and the child goes on when the stamp is fresh again. A
follower's or a learner's child goes on: Raft needs nothing of its daemon, and a busy
machine left 48 lab daemons silent for a second at times, which froze voters for nothing
(elected, such a member stops on its first tick as leader). A daemon killed outright takes
its child with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import math
import mmap
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, RaftTimings
from .core import commands as c
from .core.state import ClusterState, Result
from .priority import critical, whole_process
from .raft import Proposing, RaftNode, Unavailable

if TYPE_CHECKING:
    from .heartbeat import Beat
    from .memberport import MemberPort

# the daemon's answer to a member call the child forwarded: reply(ok, message or (code, text))
MemberCall = Callable[[str, Any, Any, Callable[[bool, Any], None]], None]

log = logging.getLogger("hacluster.raftproc")  # not __main__ in the child

# The shared page: doubles, written by one side only.
STAMP, CONFIRMED, TERM, LEADER, QUORUM, DISK_FULL_AT, SIZE = range(7)
_PAGE = 8 * SIZE
PR_SET_PDEATHSIG = 1


class Page:
    """Seven doubles in a memfd both processes map: one writer per slot, aligned 8-byte
    stores (atomic on the machines this runs on), so no lock."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _PAGE)

    @classmethod
    def create(cls) -> Page:
        fd = os.memfd_create("hacluster-raft", 0)
        os.ftruncate(fd, _PAGE)
        return cls(fd)

    def __getitem__(self, slot: int) -> float:
        value: float = struct.unpack_from("d", self._map, 8 * slot)[0]
        return value

    def __setitem__(self, slot: int, value: float) -> None:
        struct.pack_into("d", self._map, 8 * slot, value)


class RaftProcess(Proposing):
    """RaftNode's reads and writes, served by a Raft member in a child process."""

    def __init__(self, self_addr: str, peers: list[str], data_dir: str, secret: str,
                 timings: RaftTimings | None = None,
                 on_applied: Callable[[c.Command, Result, ClusterState], None] | None = None,
                 previous_secrets: tuple[str, ...] = (),
                 code_version: int = c.CODE_VERSION, voter: bool = True) -> None:
        if not secret:
            raise ValueError("a cluster secret is required: pysyncobj unpickles what it receives")
        self.self_addr, self.voter, self.code_version = self_addr, voter, code_version
        self.timings = timings or RaftTimings()
        self.leadership_changed = threading.Event()
        self.halted: str | None = None
        self.storage_error: str | None = None
        self.process_lost: str | None = None
        self._stop = threading.Event()
        self._on_applied = on_applied or (lambda cmd, res, state: None)
        # set by serve_members: the member port's calls and heartbeats, from the child
        self._member_call: MemberCall | None = None
        self._on_beat: Callable[[Beat, float, bool], None] = lambda beat, at, granted: None
        self._on_heard: Callable[[float], None] = lambda until: None
        # applied here, in the child's order; with its VM index, as every replica (raft.py),
        # which a restored state brings along from the child
        self._state = ClusterState().indexed()
        self._frozen: ClusterState | None = None  # shown while the child's replica replays
        # The child's word, in order with the commands it applied: when it says caught up,
        # this replica has applied all it had (a flag beside the stream said so early).
        self._ready = False
        self._leader: str | None = None
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self.page = Page.create()
        self.page[STAMP] = time.monotonic()
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "hacluster.raftproc", str(theirs.fileno()),
             str(self.page.fd), str(os.getpid())],
            pass_fds=(theirs.fileno(), self.page.fd))
        theirs.close()
        self._conn = Connection(ours.detach())
        self._send(("start", dict(
            self_addr=self_addr, peers=peers, data_dir=data_dir, secret=secret,
            timings=asdict(self.timings), previous_secrets=previous_secrets,
            code_version=code_version, voter=voter,
            log_level=logging.getLogger().level,
            log_format=next((h.formatter._fmt for h in logging.getLogger().handlers
                             if h.formatter is not None and h.formatter._fmt), None))))
        while (msg := self._first())[0] != "started":  # what the start applied, in order
            if msg[0] == "failed":
                self._proc.wait()
                raise msg[1]  # Downgrade, StorageError...: what RaftNode() raised there
            self._take(msg)
        self._reader = threading.Thread(target=self._read, name="raft-reader", daemon=True)
        self._reader.start()
        self._stamper = threading.Thread(target=self._stamp, name="raft-stamp", daemon=True)
        self._stamper.start()

    # ---- the child's messages ---------------------------------------------------------------

    def _first(self) -> tuple[Any, ...]:
        try:
            msg: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError):
            raise OSError(f"the Raft process ended as it started (exit status "
                          f"{self._proc.wait()})") from None
        return msg

    def _read(self) -> None:
        """Applies what the child applied, in its order, and hands back answers."""
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):
                break
            try:
                self._take(msg)
            except Exception as exc:  # a bug: this replica can no longer follow the child's
                log.exception("the daemon's replica failed on %s", msg[0])
                self.halted = f"halted: this daemon's replica failed to follow Raft: {exc}"
                self.leadership_changed.set()
                return
        if not self._stop.is_set() and self.halted is None:
            code = self._proc.wait()
            self.process_lost = self.halted = f"the Raft process ended (exit status {code})"
            log.critical("%s", self.halted)
            self.leadership_changed.set()

    def _take(self, msg: tuple[Any, ...]) -> None:
        """One message of the child's."""
        kind = msg[0]
        if kind == "applied":
            cmd = msg[1]
            self._state, result = self._state.after(cmd)
            try:
                self._on_applied(cmd, result, self._state)
            except Exception:  # the daemon's reaction (events, wake-ups), not the replica
                log.exception("after applying %s", cmd.TYPE)
        elif kind == "restored":
            self._state = msg[1]
        elif kind == "reset":  # the child's replica is replaced: it replays from scratch
            self._frozen = self._frozen or self.state
            self._state, self._ready = ClusterState().indexed(), False
        elif kind == "ready":
            self._ready = msg[1]
        elif kind == "leader":
            self._leader = msg[1]
            self.leadership_changed.set()
        elif kind == "halted":
            self.storage_error = msg[2]
            self.halted = msg[1]
            self.leadership_changed.set()
        elif kind == "beat":
            self._on_beat(msg[1], msg[2], msg[3])
        elif kind == "heard":
            self._on_heard(msg[1])
        elif kind == "member" and self._member_call is not None:
            ident = msg[1]
            self._member_call(msg[2], msg[3], msg[4], lambda ok, payload: self._send(
                ("member_answer", ident, ok, payload)))
        elif kind == "answer":
            waiter = self._waiting.pop(msg[1], None)
            if waiter is not None:
                waiter[1].extend(msg[2:])
                waiter[0].set()

    def _stamp(self) -> None:
        """This daemon's liveness, as the child judges it: a thread of ours that runs."""
        critical(self.timings.critical_nice if self.voter else 0)
        period = self.timings.daemon_silence / 5
        while not self._stop.wait(period):
            self.page[STAMP] = time.monotonic()

    def _send(self, msg: tuple[Any, ...]) -> None:
        with self._send_lock, contextlib.suppress(OSError):  # gone: _read says so
            self._conn.send(msg)

    def _ask(self, kind: str, *args: Any, timeout: float | None) -> list[Any] | None:
        """Send a request; the child's answer (a list), or None if none came in time."""
        ident = next(self._ids)
        done: tuple[threading.Event, list[Any]] = (threading.Event(), [])
        self._waiting[ident] = done
        self._send((kind, ident, *args))
        if not done[0].wait(timeout):
            self._waiting.pop(ident, None)
            return None
        return done[1]

    def _call(self, method: str, *args: Any, timeout: float = 30.0) -> Any:
        """A RaftNode method run in the child; its exception, raised here."""
        answer = self._ask("call", method, args, timeout=timeout)
        if answer is None:
            raise Unavailable(f"the Raft process did not answer {method} in {timeout:g}s")
        ok, value = answer
        if not ok:
            raise value
        return value

    # ---- RaftNode's face --------------------------------------------------------------------

    @property
    def state(self) -> ClusterState:
        """As RaftNode's: frozen while the child's replica replays, until it has caught up."""
        if self._frozen is not None and not self.is_ready():  # is_ready() unfreezes
            return self._frozen
        return self._state

    @property
    def pid(self) -> int:
        return self._proc.pid

    def is_leader(self) -> bool:
        return self.page[LEADER] == 1.0

    def leader_addr(self) -> str | None:
        return self._leader

    def term(self) -> int:
        return int(self.page[TERM])

    def has_quorum(self) -> bool:
        return self.page[QUORUM] == 1.0

    def disk_full(self) -> bool:
        at = self.page[DISK_FULL_AT]
        return not math.isnan(at) and time.monotonic() - at < 10.0

    def majority_confirmed_at(self) -> float | None:
        at = self.page[CONFIRMED]
        return None if math.isnan(at) else at

    def is_ready(self) -> bool:
        ready = self._ready and self.halted is None
        if ready:
            self._frozen = None
        return ready

    def raft_members(self) -> set[str]:
        members: set[str] = self._call("raft_members")
        return members

    def change_membership(self, add: bool, addr: str, timeout: float = 15.0) -> None:
        self._call("change_membership", add, addr, timeout, timeout=timeout + 5)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._call("status")
        return status

    def serve_members(self, config: Config, call: MemberCall,
                      on_beat: Callable[[Beat, float, bool], None],
                      on_heard: Callable[[float], None]) -> None:
        """Have the child serve this member's port (memberport.py): heartbeats answered and
        leases granted there, each beat handed to on_beat(beat, at, granted) and each
        ("heard", t) mark to on_heard(t), in order with the commands applied; every other
        member call handed to `call`. OSError if the port cannot be served.

        A leading child then waits on a silent daemon for one lease (ha.lease), not
        daemon_silence: its hosts keep their leases meanwhile, and a daemon starved that
        long under load must not cost the cluster its leader; a hung one is still replaced
        (a host lost meanwhile is recovered up to one lease later)."""
        self._member_call, self._on_beat, self._on_heard = call, on_beat, on_heard
        answer = self._ask("serve_members", config,
                           max(self.timings.daemon_silence, config.ha.lease), timeout=20.0)
        if answer is None:
            raise OSError("the Raft process did not start the member port")
        if not answer[0]:
            raise OSError(str(answer[1]))

    def become_voter(self, peers: list[str]) -> None:
        self._restart("become_voter", peers, voter=True)

    def become_learner(self, voters: list[str]) -> None:
        self._restart("become_learner", voters, voter=False)

    def _restart(self, method: str, peers: list[str], voter: bool) -> None:
        if self.voter == voter:
            return
        state, self._ready = self.state, False  # the child says when it has replayed
        self._frozen = state
        self._call(method, peers)
        self.voter = voter

    def _propose_once(self, blob: bytes, timeout: float) -> tuple[Any, int] | None:
        answer = self._ask("submit", blob, timeout=max(timeout, 0.0))
        return None if answer is None else (answer[0], answer[1])

    def close(self) -> None:
        self._stop.set()
        self._send(("close",))
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._conn.close()


RaftMember = RaftNode | RaftProcess  # what the daemon's parts are handed (raft.process)


def daemon_heard(late: float, silence: float, ran: bool) -> bool:
    """Whether a leader's daemon counts as alive: its stamp is at most `silence` old, or at
    most twice that while the daemon has used CPU since the stamp was first late (busy, not
    stopped nor blocked; a daemon that spins without stamping is hung all the same, and the
    bound stops its leader too)."""
    return late <= silence or (ran and late <= 2 * silence)


def cpu_time_if_running(pid: int) -> int | None:
    """The process's CPU time in clock ticks, or None if it is stopped, a zombie or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces and brackets
    if fields[0] in "TtZX":
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


# ---- the child ----------------------------------------------------------------------------


class _Child:
    """Runs the RaftNode; sends what it applies and answers the daemon's requests."""

    def __init__(self, conn: Connection, page: Page, params: dict[str, Any],
                 base_nice: int) -> None:
        self.conn, self.page, self.base_nice = conn, page, base_nice
        self.outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.timings = RaftTimings(**params["timings"])
        self.leader: str | None = None
        self.frozen_since: float | None = None
        self.silence = self.timings.daemon_silence  # a leader's wait on a silent daemon
        self.daemon = os.getppid()
        self.cpu_when_late: int | None = None  # the daemon's CPU ticks when its stamp was late
        self.order = threading.Lock()  # held while an applied command is queued (memberport)
        self.ready_sent = False  # what the daemon was last told: caught up or not
        self.resetting = False  # the replica is being replaced: its readiness says nothing
        self.port: MemberPort | None = None
        threading.Thread(target=self._send_all, name="raft-send", daemon=True).start()
        self.node = RaftNode(
            params["self_addr"], params["peers"], params["data_dir"], params["secret"],
            self.timings, on_applied=self._applied,
            previous_secrets=tuple(params["previous_secrets"]),
            code_version=params["code_version"], voter=params["voter"],
            on_restored=lambda state: self.outbox.put(("restored", state)),
            on_tick=self._on_tick)

    def _applied(self, cmd: c.Command, result: Result, state: ClusterState) -> None:
        with self.order:
            self.outbox.put(("applied", cmd))

    def _send_all(self) -> None:
        """One thread sends (a Connection is not safe for two): the tick thread only queues."""
        while (msg := self.outbox.get()) is not None:
            try:
                self.conn.send(msg)
            except OSError:
                os._exit(0)  # the daemon is gone

    def _on_tick(self, node: RaftNode) -> None:
        """Before each tick: publish what the daemon reads; a leader waits while it is silent."""
        page = self.page
        confirmed = node.majority_confirmed_at()
        page[CONFIRMED] = math.nan if confirmed is None else confirmed
        page[TERM] = node.term()
        page[LEADER] = float(leading := node.is_leader())
        page[QUORUM] = float(node.has_quorum())
        at = node.disk_full_at()
        page[DISK_FULL_AT] = math.nan if at is None else at
        with self.order:  # after every command applied so far, before any applied later
            if not self.resetting and (ready := node.is_ready()) != self.ready_sent:
                self.outbox.put(("ready", ready))
                self.ready_sent = ready
        if (leader := node.leader_addr()) != self.leader:
            self.leader = leader
            self.outbox.put(("leader", leader))
        if leading:
            self._wait_for_daemon()

    def _wait_for_daemon(self) -> None:
        while not self._daemon_heard():
            if self.frozen_since is None:
                self.frozen_since = time.monotonic()
                log.warning("the daemon has not run for %.1fs: this leader stops until it "
                            "does (a hung daemon recovers no host)", self.silence)
            time.sleep(0.02)
        if self.frozen_since is not None:
            log.warning("the daemon runs again: Raft goes on after %.1fs",
                        time.monotonic() - self.frozen_since)
            self.frozen_since = None

    def _daemon_heard(self) -> bool:
        """The stamp, or the daemon's CPU time once the stamp is late (read from /proc only
        then): a daemon resumed on a loaded machine runs a while before its stamp thread
        gets the GIL (0.9 s in a suite run), and is not hung."""
        late = time.monotonic() - self.page[STAMP]
        if late <= self.silence / 2:
            self.cpu_when_late = None
            return True
        cpu = cpu_time_if_running(self.daemon)
        if self.cpu_when_late is None:
            self.cpu_when_late = -1 if cpu is None else cpu
        return daemon_heard(late, self.silence, cpu is not None and cpu > self.cpu_when_late)

    def serve(self) -> None:
        """The daemon's requests, each answered in the order its result is known."""
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                break
            kind = msg[0]
            if kind == "close":
                break
            if kind == "submit":
                ident = msg[1]
                self.node.submit(msg[2], self._answer(ident))
            elif kind == "call":
                threading.Thread(target=self._call, args=msg[1:], daemon=True).start()
            elif kind == "member_answer" and self.port is not None:
                self.port.resolve(*msg[1:])
            elif kind == "serve_members":
                self._serve_members(*msg[1:])
        if self.port is not None:
            self.port.stop()
        self.node.close()
        self.outbox.put(None)

    def _serve_members(self, ident: int, config: Config, silence: float) -> None:
        from .memberport import MemberPort  # the child's alone (it imports the API server)
        port = MemberPort(config, self.node, self.order, self.outbox.put)
        try:
            port.start()
        except OSError as exc:
            self.outbox.put(("answer", ident, False, exc))
            return
        self.port, self.silence = port, silence
        self.outbox.put(("answer", ident, True, None))

    def _answer(self, ident: int) -> Callable[[Any, int], None]:
        return lambda res, err: self.outbox.put(("answer", ident, res, err))

    def _call(self, ident: int, method: str, args: tuple[Any, ...]) -> None:
        resets = method in ("become_voter", "become_learner")
        if resets:
            with self.order:  # the old replica says nothing more: it is being replaced
                self.resetting = True
                self.outbox.put(("reset",))  # the new replica replays snapshot and journal
        try:
            answer: tuple[Any, ...] = ("answer", ident, True, getattr(self.node, method)(*args))
        except Exception as exc:  # raised again in the daemon
            answer = ("answer", ident, False, exc)
        if method == "become_voter":
            whole_process(self.timings.critical_nice)
        elif method == "become_learner":  # demoted: back to the daemon's priority
            whole_process(self.base_nice, back=True)
        if resets:
            with self.order:  # the new one says caught up once it has replayed and caught up
                self.resetting = self.ready_sent = False
        self.outbox.put(answer)

    def watch_halt(self) -> None:
        """The node's tick thread ends on a command it cannot apply or a storage error."""
        self.node.stopped.wait()
        self.outbox.put(("halted", self.node.halted, self.node.storage_error))


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[0]))
    page = Page(int(argv[1]))
    # Killed with the daemon: a power loss of the lab kills haclusterd's pid alone.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(argv[2]):
        return 1  # the daemon died before the line above
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon stops us (close), not ^C
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kind, params = conn.recv()
    assert kind == "start"
    if params["log_format"]:
        logging.basicConfig(level=params["log_level"], format=params["log_format"])
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    sys.setswitchinterval(0.001)
    base_nice = os.getpriority(os.PRIO_PROCESS, 0)  # the daemon's: a demoted voter's again
    if params["voter"]:  # before any thread starts: all inherit it
        whole_process(params["timings"]["critical_nice"])
    try:
        child = _Child(conn, page, params, base_nice)
    except Exception as exc:  # raised again by RaftProcess() in the daemon, as RaftNode's
        conn.send(("failed", exc))
        return 1
    child.outbox.put(("started",))
    threading.Thread(target=child.watch_halt, name="raft-halt", daemon=True).start()
    child.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
