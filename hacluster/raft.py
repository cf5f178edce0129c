"""The Raft adapter: pysyncobj behind one replicated entry point, and nothing else.

pysyncobj only ever sees `bytes` (a JSON command) through `_apply`, so its method table never
changes and its pickles hold no objects of ours except the ClusterState, whose pickled form is
its plain-data dict. Settings follow ../shared/notes/pysyncobj.md: journal *and* dump file,
batching off, short reconnect, a leader that steps down after a few election timeouts, a
mandatory password (pysyncobj unpickles what it receives), our own tick thread started after
the state exists, and an unknown command halts this member instead of letting it diverge.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

from .core import commands as c
from .core.state import ClusterState, Result

log = logging.getLogger(__name__)

RETRYABLE = {
    FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
    FAIL_REASON.NOT_LEADER, FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME,
}


class Unavailable(Exception):
    """The cluster could not commit the command in time (no quorum, no leader, halted)."""


@dataclass(frozen=True)
class RaftTimings:
    append_entries_period: float = 0.05
    election_min: float = 0.3
    election_max: float = 0.6
    connection_timeout: float = 5.0  # long: idle follower links are judged on send (F3)
    connection_retry: float = 0.5
    leader_fallback: float = 1.5  # a leader without a majority steps down after this

    def problems(self) -> list[str]:
        """pysyncobj's own rules (it would fail an assert), said plainly."""
        out = []
        if self.election_min <= 3 * self.append_entries_period:
            out.append("raft.election_min must be more than 3 x append_entries_period")
        if self.election_max <= self.election_min:
            out.append("raft.election_max must be more than election_min")
        if self.connection_timeout < self.election_max:
            out.append("raft.connection_timeout must be at least election_max")
        if self.leader_fallback <= self.append_entries_period:
            out.append("raft.leader_fallback must be more than append_entries_period")
        return out

    def conf(self, data_dir: str, secret: str, bind: str,
             on_state_changed: Callable[[int, int], None]) -> SyncObjConf:
        return SyncObjConf(
            password=secret,
            journalFile=os.path.join(data_dir, "raft.journal"),
            fullDumpFile=os.path.join(data_dir, "raft.dump"),
            useFork=False,  # forking a process full of gRPC threads is unsafe
            autoTick=False,
            appendEntriesUseBatch=False,
            appendEntriesPeriod=self.append_entries_period,
            raftMinTimeout=self.election_min,
            raftMaxTimeout=self.election_max,
            connectionTimeout=self.connection_timeout,
            connectionRetryTime=self.connection_retry,
            leaderFallbackTimeout=self.leader_fallback,
            commandsWaitLeader=False,
            bindAddress=bind,
            maxBindRetries=20,
            logCompactionMinEntries=20_000,
            logCompactionSplit=True,
            onStateChanged=on_state_changed,
        )


class _Replica(SyncObj):  # type: ignore[misc]
    """The pysyncobj object; `_cluster` is its only replicated attribute."""

    def __init__(self, self_addr: str, peers: list[str], conf: SyncObjConf,
                 on_applied: Callable[[c.Command, Result, ClusterState], None]) -> None:
        super().__init__(self_addr, peers, conf)
        # Set after super().__init__ so that snapshots include it; safe because autoTick is
        # off and our tick thread starts only after this.
        self._cluster = ClusterState()
        self._on_applied = on_applied

    @replicated  # type: ignore[untyped-decorator]
    def _apply(self, blob: bytes) -> dict[str, Any]:
        try:
            cmd = c.decode(blob)
        except c.MalformedCommand as exc:
            return Result(ok=False, code="invalid", message=str(exc)).to_dict()
        # UnsupportedCommand propagates: pysyncobj then does not advance lastApplied, and the
        # tick thread halts this member (see RaftNode._run).
        result = self._cluster.apply(cmd)
        self._on_applied(cmd, result, self._cluster)
        return result.to_dict()


class RaftNode:
    """A running Raft member holding the ClusterState replica."""

    def __init__(self, self_addr: str, peers: list[str], data_dir: str, secret: str,
                 timings: RaftTimings | None = None,
                 on_applied: Callable[[c.Command, Result, ClusterState], None] | None = None,
                 ) -> None:
        if not secret:
            raise ValueError("a cluster secret is required: pysyncobj unpickles what it receives")
        os.makedirs(data_dir, exist_ok=True)
        self.timings = timings or RaftTimings()
        self.leadership_changed = threading.Event()
        self.halted: str | None = None
        self._stop = threading.Event()
        conf = self.timings.conf(data_dir, secret, self_addr,
                                 lambda old, new: self.leadership_changed.set())
        self._obj = _Replica(self_addr, peers, conf, on_applied or (lambda cmd, res, state: None))
        self._thread = threading.Thread(target=self._run, name="raft-tick", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._obj.doTick(0.01)
            except c.UnsupportedCommand as exc:
                self.halted = f"halted: cannot apply a committed command: {exc}"
                log.critical("%s; upgrade this member's hacluster", self.halted)
                return
            except Exception:
                log.exception("raft tick failed")
                self._stop.wait(0.05)

    # ---- reads (local replica, may lag the leader by a few milliseconds) -----------------

    @property
    def state(self) -> ClusterState:
        state: ClusterState = self._obj._cluster
        return state

    def is_leader(self) -> bool:
        return bool(self._obj._isLeader())

    def leader_addr(self) -> str | None:
        leader = self._obj._getLeader()
        return None if leader is None else str(getattr(leader, "address", leader))

    def term(self) -> int:
        return int(self._obj.raftCurrentTerm)

    def has_quorum(self) -> bool:
        return bool(self._obj.hasQuorum)

    def is_ready(self) -> bool:
        """This replica has caught up with the commit index it learnt from a leader."""
        return bool(self._obj.isReady()) and self.halted is None

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._obj.getStatus()
        return status

    # ---- writes -----------------------------------------------------------------------------

    def propose(self, cmd: c.Command, timeout: float = 5.0) -> Result:
        """Commit cmd and return apply's result. Retries (same id, so it applies once) until
        the timeout; raises Unavailable if it cannot commit."""
        if self.halted:
            raise Unavailable(self.halted)
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
                return Result(**res)
            last_error = _reason_name(err)
            if err not in RETRYABLE or deadline - time.monotonic() <= 0:
                raise Unavailable(f"cannot commit: {last_error}")
            self._stop.wait(min(0.05, max(deadline - time.monotonic(), 0)))

    def _propose_once(self, blob: bytes, timeout: float) -> tuple[Any, int] | None:
        """One attempt: (apply's result dict, pysyncobj FAIL_REASON), or None on timeout."""
        done = threading.Event()
        outcome: list[Any] = []

        def callback(res: Any, err: int) -> None:
            outcome.extend((res, err))
            done.set()

        self._obj._apply(blob, callback=callback)
        if not done.wait(max(timeout, 0.0)):
            return None
        return outcome[0], outcome[1]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._obj.destroy()


def _reason_name(code: int) -> str:
    for name in dir(FAIL_REASON):
        if not name.startswith("_") and getattr(FAIL_REASON, name) == code:
            return name.lower().replace("_", " ")
    return f"failure {code}"
