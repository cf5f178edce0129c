"""The Raft adapter: our pysyncobj fork behind one replicated entry point, and nothing else.

pysyncobj only ever sees `bytes` (a JSON command) through `_apply`, so its method table never
changes. Settings follow ../shared/notes/pysyncobj.md: batching off, short reconnect, a leader
that steps down after a few election timeouts, a mandatory password (pysyncobj unpickles what
it receives), our own tick thread, and an unknown command halts this member instead of
letting it diverge. The fork (hacluster/raftfork, FORK.md) adds what an HA cluster needs:
entries fsync'd before they are acknowledged, checked files (raftstore), snapshots written
from an immutable state in a thread of their own, PreVote, and a leader's proof of its
majority from heartbeat acknowledgements instead of log entries.

Every applied command produces a new ClusterState (copy-on-write, core.state), published by
swapping one reference: `state` is always a consistent, immutable view.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConf

from .config import RaftTimings
from .core import commands as c
from .core.state import ClusterState, Result
from .priority import critical
from .raftfork.syncobj import DISK_FULL, SyncObj, replicated
from .raftstore import (
    SnapshotStore,
    StorageError,
    convert_legacy,
    decode_snapshot,
    snapshot_pause,
    write_atomically,
)

log = logging.getLogger(__name__)

RETRYABLE = {
    FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
    FAIL_REASON.NOT_LEADER, FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME,
}
REJOIN_MARKER = "REJOINING"  # in the data dir: this member's data was wiped (no votes yet)
VERSION_FILE = "CLUSTER_VERSION"  # in the data dir: the highest cluster version applied here


# The longest a tick waits for a socket event when no timer is due sooner (the fork's
# idleWait): an idle member ticks about 20 times a second instead of pysyncobj's 100.
TICK_LONGEST = 0.05
# A learner has no timer of its own to keep (no election, no appends to send): messages and
# its own commands wake it at once, and what is left on a tick (reconnecting, pysyncobj's
# once-a-second work) can wait this long. 43 learners of a 48-host lab ticking 20 times a
# second took a fifth of one of the machine's two cores between them.
LEARNER_TICK_LONGEST = 0.25


class Unavailable(Exception):
    """The cluster could not commit the command in time (no quorum, no leader, halted)."""


class DiskFull(Unavailable):
    """The leader (or this member) has no space left to store the command."""


class Downgrade(Exception):
    """This member's data has applied a cluster version newer than its code."""


def spread(member: str, value: float) -> float:
    """Between two thirds of `value` and all of it, the same for a member every time and
    different between members: they all reached a snapshot's entry count at the same log
    index, and 48 members encoding 10,000 VMs at once starved the two cores of a lab machine
    for seconds (the configured figure stays an upper bound: "at least this often")."""
    return value * (1 - (zlib.crc32(member.encode()) % 1000) / 3000)


def sync_conf(t: RaftTimings, data_dir: str, secret: str, bind: str, rejoining: bool,
              on_state_changed: Callable[[int, int], None],
              previous_secrets: tuple[str, ...] = (), member: str = "") -> SyncObjConf:
    """pysyncobj's settings (and our fork's) from the configured timings."""
    conf = SyncObjConf(
        password=secret,
        journalFile=os.path.join(data_dir, "raft.journal"),
        fullDumpFile=os.path.join(data_dir, "raft.snapshot"),
        autoTick=False,
        appendEntriesUseBatch=False,
        appendEntriesPeriod=t.append_entries_period,
        raftMinTimeout=t.election_min,
        raftMaxTimeout=t.election_max,
        connectionTimeout=t.connection_timeout,
        connectionRetryTime=t.connection_retry,
        leaderFallbackTimeout=t.leader_fallback,
        commandsWaitLeader=False,
        bindAddress=bind,
        maxBindRetries=20,
        logCompactionMinEntries=int(spread(member, t.snapshot_entries)),
        logCompactionMinTime=spread(member, t.snapshot_interval),
        onStateChanged=on_state_changed,
        dynamicMembershipChange=True,  # hactl host add / remove
    )
    conf.fsync = t.fsync  # the fork's own settings
    conf.rejoining = rejoining
    conf.previous_passwords = list(previous_secrets)
    return conf


class _Replica(SyncObj):
    """The pysyncobj object; `_cluster` holds the published ClusterState."""

    def __init__(self, self_addr: str | None, peers: list[str], conf: SyncObjConf,
                 on_applied: Callable[[c.Command, Result, ClusterState], None],
                 code_version: int,
                 on_restored: Callable[[ClusterState], None] = lambda state: None) -> None:
        self._cluster = ClusterState().indexed()
        self._on_applied = on_applied
        self._on_restored = on_restored
        self._code_version = code_version
        self.data_dir = os.path.dirname(conf.journalFile)
        super().__init__(self_addr, peers, conf)  # type: ignore[no-untyped-call]

    @property
    def cluster(self) -> ClusterState:
        return self._cluster

    def submit(self, blob: bytes, callback: Callable[[Any, int], None]) -> None:
        """Propose a command; `callback(result, error)` runs once it is applied here."""
        self._apply(blob, callback=callback)

    def _createSnapshotStore(self, path: str, batch_size: int) -> SnapshotStore:
        self.snapshots = SnapshotStore(path, batch_size,
                                       lambda s: s.to_dict(pause=snapshot_pause),
                                       ClusterState.from_dict)
        return self.snapshots

    def _snapshotState(self) -> ClusterState:
        return self._cluster  # immutable: the next apply works on a fork

    def _restoreSnapshotState(self, state: ClusterState) -> None:
        if state.cluster_version > self._code_version:  # halts this member (RaftNode._run)
            raise c.UnsupportedCommand(
                f"a snapshot at cluster version {state.cluster_version}; this member runs "
                f"version {self._code_version}")
        if state.cluster_version > recorded_version(self.data_dir):
            record_version(self.data_dir, state.cluster_version)
        self._cluster = state.indexed()  # carried from here on: applies never scan
        self._on_restored(state)

    @replicated  # type: ignore[untyped-decorator]
    def _apply(self, blob: bytes) -> dict[str, Any]:
        try:
            cmd = c.decode(blob, self._code_version)
        except c.MalformedCommand as exc:
            return Result(ok=False, code="invalid", message=str(exc)).to_dict()
        # UnsupportedCommand propagates: pysyncobj then does not advance lastApplied, and the
        # tick thread halts this member (see RaftNode._run).
        state, result = self._cluster.after(cmd)
        if state.cluster_version != self._cluster.cluster_version:
            record_version(self.data_dir, state.cluster_version)
        self._cluster = state  # published: readers holding the old one are unaffected
        self._on_applied(cmd, result, state)
        return result.to_dict()


class Proposing:
    """propose(): the retry loop over one attempt (`_propose_once`), shared by the Raft
    member in this process (RaftNode) and the one in a process of its own (RaftProcess)."""

    halted: str | None
    _stop: threading.Event

    @property
    def state(self) -> ClusterState:
        raise NotImplementedError

    def _propose_once(self, blob: bytes, timeout: float) -> tuple[Any, int] | None:
        """One attempt: (apply's result dict, pysyncobj FAIL_REASON), or None on timeout."""
        raise NotImplementedError

    def propose(self, cmd: c.Command, timeout: float = 5.0) -> Result:
        """Commit cmd and return apply's result. Retries (same id, so it applies once) until
        the timeout; raises Unavailable if it cannot commit."""
        if self.halted:
            raise Unavailable(self.halted)
        c.check_allowed(cmd, self.state.cluster_version)  # TooNew: an older member lags
        blob = c.encode(cmd)
        deadline = time.monotonic() + timeout
        last_error = "no leader"
        while True:
            outcome = self._propose_once(blob, deadline - time.monotonic())
            if outcome is None:
                raise Unavailable(f"the cluster did not commit the command in {timeout:g}s "
                                  f"({last_error}); it may still apply, retry with the same id")
            res, err = outcome
            if err == FAIL_REASON.SUCCESS:
                return Result.from_dict(res)
            if err == DISK_FULL:
                raise DiskFull("the leader's disk is full: the command was not stored")
            last_error = _reason_name(err)
            if err not in RETRYABLE or deadline - time.monotonic() <= 0:
                raise Unavailable(f"cannot commit: {last_error}")
            self._stop.wait(min(0.05, max(deadline - time.monotonic(), 0)))


class RaftNode(Proposing):
    """A running Raft member holding the ClusterState replica."""

    def __init__(self, self_addr: str, peers: list[str], data_dir: str, secret: str,
                 timings: RaftTimings | None = None,
                 on_applied: Callable[[c.Command, Result, ClusterState], None] | None = None,
                 previous_secrets: tuple[str, ...] = (),
                 code_version: int = c.CODE_VERSION, voter: bool = True,
                 on_restored: Callable[[ClusterState], None] = lambda state: None,
                 on_tick: Callable[[RaftNode], None] = lambda node: None) -> None:
        """peers: the other voters. A learner (voter=False) is pysyncobj's readonly node: it
        connects to the voters, receives the log and forwards writes, and never votes.
        on_restored: a snapshot replaced the replica; on_tick: before every tick."""
        if not secret:
            raise ValueError("a cluster secret is required: pysyncobj unpickles what it receives")
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        if (applied := recorded_version(data_dir)) > code_version:
            raise Downgrade(f"this member's data is at cluster version {applied}; its code is "
                            f"version {code_version}: a downgrade below the cluster version is "
                            "refused (run the newer hacluster)")
        self.code_version = code_version
        self.data_dir = data_dir
        self.timings = timings or RaftTimings()
        self.leadership_changed = threading.Event()
        self.halted: str | None = None
        self.storage_error: str | None = None
        self.stopped = threading.Event()  # the tick thread ended on `halted`
        self._stop = threading.Event()
        self._failures: dict[str, float] = {}
        self._marker = Path(data_dir) / REJOIN_MARKER
        convert_legacy(os.path.join(data_dir, "raft.journal"))
        snapshot = Path(data_dir) / "raft.snapshot"
        if snapshot.exists():  # checked now, before anything is served (loaded at first tick)
            decode_snapshot(snapshot, snapshot.read_bytes())
        self.process_lost: str | None = None  # RaftProcess's: its Raft process ended
        self.self_addr = self_addr
        self.voter = voter
        self._secrets = (secret, previous_secrets)
        self._on_applied = on_applied or (lambda cmd, res, state: None)
        self._on_restored, self._on_tick = on_restored, on_tick
        # the fork is untyped pysyncobj code: Any keeps mypy's strictness on our side of it
        self._obj: Any = self._replica(self_addr if voter else None, peers)
        self._frozen: ClusterState | None = None  # shown while a new replica replays
        self._running: Any = self._obj  # the replica the tick thread drives
        self._thread = self._start_tick()

    def _replica(self, addr: str | None, peers: list[str]) -> Any:
        conf = sync_conf(self.timings, self.data_dir, self._secrets[0], addr or "",
                         self._marker.exists(), lambda old, new: self.leadership_changed.set(),
                         self._secrets[1], self.self_addr)
        if addr is None:
            conf.bindAddress = None  # a learner listens to nobody: it dials the voters
        return _Replica(addr, peers, conf, self._on_applied, self.code_version,
                        self._on_restored)

    def become_voter(self, peers: list[str]) -> None:
        """A learner the leader promoted: the same data, served again as a voter at its own
        address (pysyncobj cannot promote a readonly node in place). Readers keep the last
        state until the new replica has replayed and caught up (is_ready)."""
        if not self.voter:
            self._restart_replica(True, peers)
            log.info("promoted: a Raft voter from now on")

    def become_learner(self, voters: list[str]) -> None:
        """A voter demoted while it was away, which learnt it from another member: the same
        data, served again as a learner of these voters (the cluster no longer counts it)."""
        if self.voter:
            self._restart_replica(False, voters)
            log.info("demoted while away: a Raft learner from now on")

    def _restart_replica(self, voter: bool, peers: list[str]) -> None:
        old, self._running = self._obj, None  # the old tick loop ends at its next turn
        self._frozen = old.cluster  # after the line above: is_ready() cannot unfreeze it now
        self._thread.join(timeout=2)
        old.destroy()
        self.voter = voter
        self._obj = self._running = self._replica(self.self_addr if voter else None, peers)
        self._thread = self._start_tick()

    def _start_tick(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(self._obj,), name="raft-tick",
                                  daemon=True)
        thread.start()
        return thread

    def _run(self, obj: Any) -> None:
        # a learner's keeps the daemon's priority (priority.py)
        critical(self.timings.critical_nice if self.voter else 0)
        while not self._stop.is_set() and self._running is obj:
            try:
                self._on_tick(self)
                obj.doTick(obj.idleWait(TICK_LONGEST if self.voter else LEARNER_TICK_LONGEST))
            except c.UnsupportedCommand as exc:
                self.halted = f"halted: cannot apply a committed command: {exc}"
                log.critical("%s; upgrade this member's hacluster", self.halted)
                self.stopped.set()
                return
            except StorageError as exc:
                self.storage_error = self.halted = str(exc)  # the daemon says it and exits
                self.stopped.set()
                return
            except Exception as exc:
                # logged once a minute per kind of failure (a full disk fails every tick)
                key = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - self._failures.get(key, float("-inf")) > 60:
                    self._failures[key] = time.monotonic()
                    log.exception("raft tick failed")
                self._stop.wait(0.05)

    @property
    def thread_id(self) -> int | None:
        """The tick thread's id in the kernel (its priority: priority.nice_of)."""
        return self._thread.native_id

    # ---- reads (local replica, may lag the leader by a few milliseconds) -----------------

    @property
    def state(self) -> ClusterState:
        """The replica as of the last applied entry: immutable, consistent. While a new
        replica replays, the last state of the old one, until the new one has caught up:
        asked here too, since a reader may never ask is_ready() (an agent behind its lease
        reads the state alone, and waited on a frozen one for good)."""
        if self._frozen is not None and not self.is_ready():  # is_ready() unfreezes
            return self._frozen
        state: ClusterState = self._obj.cluster
        return state

    def is_leader(self) -> bool:
        return bool(self._obj.isLeader())

    def leader_addr(self) -> str | None:
        leader = self._obj.leader()
        return None if leader is None else str(getattr(leader, "address", leader))

    def term(self) -> int:
        return int(self._obj.raftCurrentTerm)

    def has_quorum(self) -> bool:
        return bool(self._obj.hasQuorum)

    def disk_full(self) -> bool:
        """This member failed to store an entry for want of space in the last 10 s: it can
        take no write (as a follower it could not apply it; as the leader not store it)."""
        at = self.disk_full_at()
        return at is not None and time.monotonic() - at < 10.0

    def disk_full_at(self) -> float | None:
        """When this member last failed to store an entry for want of space (monotonic)."""
        at = getattr(self._obj, "diskFullAt", None)
        return None if at is None else float(at)

    def majority_confirmed_at(self) -> float | None:
        """As leader: the newest monotonic time a majority of voters still followed it."""
        at = self._obj.majorityConfirmedAt()
        return None if at is None else float(at)

    def is_ready(self) -> bool:
        """This replica has caught up with the commit index it learnt from a leader."""
        # not while the replica is being replaced: the old one's word would unfreeze readers
        # onto the new one, which replays from scratch
        ready = self._running is not None and bool(self._obj.isReady()) and self.halted is None
        if ready:
            self._frozen = None
        if ready and self._marker.exists():
            self._marker.unlink()  # caught up after a wipe: this member votes again
            log.info("caught up with the cluster after a wipe: voting again")
        return ready

    def raft_members(self) -> set[str]:
        """The Raft addresses of the voters as this member knows them (itself, if one)."""
        me = {self.self_addr} if self.voter else set()
        return me | {n.address for n in self._obj.otherNodes}

    def change_membership(self, add: bool, addr: str, timeout: float = 15.0) -> None:
        """Add a voter, or remove one, and return once done here (pysyncobj's single-server
        change: one at a time, effective on append). A member already in (or out) is left
        as it is, so a retry after a failure is safe. Raises Unavailable."""
        deadline = time.monotonic() + timeout
        change = self._obj.addNodeToCluster if add else self._obj.removeNodeFromCluster
        last = "no leader"
        while (addr in self.raft_members()) != add:
            if self.halted:
                raise Unavailable(self.halted)
            if time.monotonic() > deadline:
                raise Unavailable(f"the membership change was not committed in {timeout:g}s "
                                  f"({last}); it may still happen: retry")
            outcome = _await(lambda callback: change(addr, callback=callback),
                             deadline - time.monotonic())
            # REQUEST_DENIED: the leader's no-op or a previous change is not committed yet
            if outcome is not None and outcome[1] != FAIL_REASON.SUCCESS:
                last = _reason_name(outcome[1])
                if outcome[1] not in RETRYABLE | {FAIL_REASON.REQUEST_DENIED}:
                    raise Unavailable(f"membership change refused: {last}")
            self._stop.wait(0.2)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._obj.getStatus()
        status["snapshot_bytes"] = self._obj.snapshots.last_bytes
        status["snapshot_seconds"] = self._obj.snapshots.last_seconds
        return status

    # ---- writes -----------------------------------------------------------------------------

    def _propose_once(self, blob: bytes, timeout: float) -> tuple[Any, int] | None:
        """One attempt: (apply's result dict, pysyncobj FAIL_REASON), or None on timeout."""
        return _await(lambda callback: self.submit(blob, callback), timeout)

    def submit(self, blob: bytes, callback: Callable[[Any, int], None]) -> None:
        """Propose an encoded command; `callback(result dict, FAIL_REASON)` runs in the tick
        thread once it is applied here (or failed)."""
        self._obj.submit(blob, callback)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._obj.destroy()


def _await(start: Callable[[Callable[[Any, int], None]], None], timeout: float
           ) -> tuple[Any, int] | None:
    """Start a pysyncobj call with a callback; (its result, FAIL_REASON), or None if it did
    not call back within timeout."""
    done = threading.Event()
    outcome: list[Any] = []

    def callback(res: Any, err: int) -> None:
        outcome.extend((res, err))
        done.set()

    start(callback)
    if not done.wait(max(timeout, 0.0)):
        return None
    return outcome[0], outcome[1]


def recorded_version(data_dir: str) -> int:
    """The highest cluster version this member has applied (1 if none was ever raised)."""
    try:
        return int((Path(data_dir) / VERSION_FILE).read_text().strip())
    except (OSError, ValueError):
        return c.FORMAT_VERSION


def record_version(data_dir: str, version: int) -> None:
    """Kept beside the journal (and synced) so that a downgrade is refused before the old
    code replays anything or touches a VM: etcd refuses a data dir newer than itself."""
    write_atomically(Path(data_dir) / VERSION_FILE, f"{version}\n".encode())


def wipe(data_dir: str) -> str:
    """Set this member's data aside (renamed, not deleted) so it rejoins from the others: it
    receives a snapshot and the log from the leader, and casts no vote until it has caught
    up (its votes from before the wipe are lost; voting again at once could elect two
    leaders in one term). Returns where the old data went."""
    path = Path(data_dir)
    aside = path.with_name(f"{path.name}.wiped-{time.strftime('%Y%m%dT%H%M%S')}")
    if path.exists():
        path.rename(aside)
    path.mkdir(mode=0o700, parents=True)
    (path / REJOIN_MARKER).write_text("wiped; votes again once caught up with a leader\n")
    return str(aside)


def _reason_name(code: int) -> str:
    for name in dir(FAIL_REASON):
        if not name.startswith("_") and getattr(FAIL_REASON, name) == code:
            return name.lower().replace("_", " ")
    return f"failure {code}"
