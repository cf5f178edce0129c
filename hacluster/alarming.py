"""The alarm evaluator: on the acting leader, every few seconds, gathers the facts alarms
need (live figures, each member's replication, the failures the cluster tolerates) and
commits what core.alarms says. A thread of its own, not the leader loop: judging the failure
tolerance places every HA VM for each failure tried, a second at 10,000 VMs, which must
delay no placement and no fencing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from .config import Config
from .core import commands as c
from .core.admission import failures_tolerated
from .core.alarms import BEHIND_ENTRIES, Facts, Sustained, conditions, judged, reconcile
from .core.state import ClusterState
from .leader import LeaderLoop
from .membership import Membership
from .raft import Unavailable
from .raftproc import RaftMember

log = logging.getLogger(__name__)

EVERY = 2.0  # seconds between evaluations
TOLERANCE_EVERY = 30.0  # the failure tolerance is recomputed at most this often
# after each failure scenario tried (~12 ms of CPU at 48 hosts and 10,000 VMs): a thread
# busy with CPU work makes the Raft thread wait for the GIL after each of its system calls
# (bench.gil_convoy), and a leader's makes one per member it sends to
PAUSE = 0.003


class Tolerance:
    """How many host failures the cluster tolerates now: recomputed when the state changed,
    at most every TOLERANCE_EVERY seconds (it places every HA VM for each failure tried);
    the alarm evaluator and the console's dashboard share one."""

    def __init__(self) -> None:
        self._cached: tuple[int, float, int] | None = None  # revision, when, value
        self._lock = threading.Lock()

    def value(self, state: ClusterState) -> int:
        with self._lock:
            now, cached = time.monotonic(), self._cached
            if cached is not None and (cached[0] == state.revision
                                       or now - cached[1] < TOLERANCE_EVERY):
                return cached[2]
            value = failures_tolerated(state.hosts.values(), state.vms.values(), state.policy,
                                      state, between=lambda: time.sleep(PAUSE))
            self._cached = (state.revision, now, value)
            return value


class AlarmEvaluator:
    def __init__(self, config: Config, raft: RaftMember, leader: LeaderLoop,
                 tolerance: Tolerance, membership: Membership) -> None:
        self.config = config
        self.membership = membership
        self.raft = raft
        self.leader = leader
        self.tolerance = tolerance

    def run(self, stop: threading.Event) -> None:
        sustained, term = Sustained(), -1
        while not stop.wait(EVERY):
            if not self.leader.active:
                term = -1
                continue
            if self.leader.term != term:  # a new leadership times everything afresh
                sustained, term = Sustained(), self.leader.term
            try:
                self.evaluate(sustained, term)
            except Unavailable as exc:
                log.debug("alarms: cannot commit: %s", exc)
            except Exception:  # alarms must never take the daemon down
                log.exception("alarm evaluation failed")

    def evaluate(self, sustained: Sustained, term: int) -> int:
        state = self.raft.state
        beats, _, _ = self.leader.live.snapshot()
        facts = Facts(metrics={h: b.metrics for h, b in beats.items()},
                      members_behind=self._members_behind(),
                      failures_tolerated=self.tolerance.value(state))
        holding = sustained.filter(conditions(state, facts), time.monotonic(),
                                   state.policy.alarm_for)
        ids = (uuid.uuid4().hex for _ in iter(int, 1))
        cmds = reconcile(state, judged(state, facts, holding, sustained), term, ids,
                         time.time())
        if cmds:
            self.raft.propose(c.Batch(id=uuid.uuid4().hex, ts=time.time(), term=term,
                                      commands=tuple(cmds)), timeout=2.0)
        return len(cmds)

    def _members_behind(self) -> dict[str, str]:
        """Members the leader cannot replicate to: disconnected, or far behind."""
        status = self.raft.status()
        commit = int(status.get("commit_idx", 0))
        out = {}
        for m in self.membership.current():
            if m.name == self.config.name or not m.voter:  # learners: not Raft partners
                continue
            if status.get(f"partner_node_status_server_{m.raft}") != 2:
                out[m.name] = "the leader cannot reach it"
                continue
            match = int(status.get(f"match_idx_server_{m.raft}", commit))
            if commit - match > BEHIND_ENTRIES:
                out[m.name] = f"{commit - match} entries behind (its journal or disk?)"
        return out
