"""The leader loop: runs only on the Raft leader, only after its claim of the term committed.

It gathers the soft state (LiveState), asks core.reconcile for the commands to commit, and
proposes them, many to a log entry (core.commands.Batch). Every command carries this leader's
term, so once a newer leader has claimed its term, anything a deposed leader still proposes
is rejected by apply.

Its proof that it still leads (which lease grants depend on) comes from the Raft layer: the
newest heartbeat a majority acknowledged (raft.majority_confirmed_at), renewed every
append_entries period whatever this loop is busy with.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

from .config import Config
from .core import commands as c
from .core import lease
from .core.model import MemberRecord
from .core.reconcile import LeaderView, plan
from .fencing import FenceRunner
from .heartbeat import Answer, Beat
from .live import LiveState
from .ports import SYSTEM_CLOCK, Clock, Consensus
from .raft import Unavailable
from .verdict import run_cycle

log = logging.getLogger(__name__)


BATCH = 200  # leader commands per log entry: big enough for thousands, small to apply
SLOW_COMMIT = 0.5  # a leader's command committed later than this is logged (a failover waits)
REST_MAX = 0.25  # the most a pass's duty-cycle rest may delay the next one (seconds)


def _ids() -> Iterator[str]:
    while True:
        yield uuid.uuid4().hex


def rest_after(cpu: float, waited: float) -> float:
    """The pause before the next pass: as long as the CPU the last one used (at most
    REST_MAX), less what was waited since. At 10,000 VMs a pass costs tens of ms, and a pass
    per commit would leave nothing to the writes themselves. Waiting for a commit is no work:
    timed by the clock, a pass that waited 0.7 s for its fence to commit (a 48-host lab)
    placed the fenced host's VMs a whole REST_MAX later."""
    return min(cpu, REST_MAX) - waited


class LeaderLoop:
    def __init__(self, config: Config, raft: Consensus, wake: threading.Event,
                 interval: float = 0.25, clock: Clock = SYSTEM_CLOCK,
                 fencer: FenceRunner | None = None) -> None:
        self.config = config
        self.clock = clock
        self.name = config.name
        self.raft = raft
        self.fencer = fencer or FenceRunner(config, clock)
        self.interval = interval
        self.wake = wake
        self.forwarded = False  # heartbeats answered in the Raft process (memberport.py)
        self.live = LiveState(wake, clock)
        self.term = 0
        self.active = False  # claim committed: this member acts as leader
        self.last_verdict = ""
        self.due_in: float | None = None
        self.pending_judged_at = -1  # pending VMs were judged at this room epoch
        self.pending_from = ""  # a round of judging them resumes after this VM
        self.round_epoch = -1
        self.balanced_at = clock.monotonic()  # the first pass one interval after taking over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.active = False
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def begin(self) -> bool:
        """Take over: a fresh grace period for every host, then the barrier (a committed
        claim of our term) before acting on anything. False if the claim failed."""
        self.term = self.raft.term()
        self.live = LiveState(self.wake, self.clock, self.forwarded)
        self.balanced_at = self.clock.monotonic()
        try:
            result = self.raft.propose(c.ClaimLeadership(
                id=uuid.uuid4().hex, ts=self.clock.time(), term=self.term, leader=self.name),
                timeout=2.0)
        except Unavailable as exc:
            log.warning("cannot claim leadership: %s", exc)
            return False
        if not result.ok:
            log.warning("leadership claim for term %d refused: %s", self.term, result.message)
            return False
        self.active = True
        log.info("leader of term %d", self.term)
        return True

    def fresh(self) -> bool:
        """May this leader grant leases now (core.lease.leader_fresh)?"""
        return lease.leader_fresh(self.active, self.term, self.raft.term(),
                                  self.raft.majority_confirmed_at(), self.clock.monotonic(),
                                  self.config.ha.grant_window)

    def answer(self, beat: Beat) -> Answer:
        """A host's heartbeat (validated by whoever received it): remember what it said,
        and renew its lease if this leader may."""
        self.live.record(beat.host, beat.metrics, beat.observed, beat.versions, beat.errors,
                         beat.code_version)
        state = self.raft.state
        seconds, why = lease.grant(state, beat.host, self.fresh())
        if seconds > 0:
            self.live.grant(beat.host)
        return Answer(self.term, seconds, why, state.revision)

    def heard(self, beat: Beat, at: float, granted: bool) -> None:
        """A heartbeat the Raft process answered at `at` (memberport.py), in order."""
        live = self.live
        live.record(beat.host, beat.metrics, beat.observed, beat.versions, beat.errors,
                    beat.code_version, at=at)
        if granted:
            live.grant(beat.host, at=at)

    def view(self) -> LeaderView:
        beats, granted, fenced_off = self.live.snapshot()
        ha = self.config.ha
        return LeaderView(
            now=self.live.now(), leader_since=self.live.since, margin=ha.margin,
            host_down_after=ha.host_down_after, grant_window=ha.grant_window,
            wall_now=self.clock.time(), last_heard={h: b.at for h, b in beats.items()},
            last_granted=granted, fenced_off=fenced_off,
            metrics={h: b.metrics for h, b in beats.items()},
            observed={h: b.observed for h, b in beats.items()},
            reported_versions={h: b.versions for h, b in beats.items()},
            errors={h: b.errors for h, b in beats.items() if b.errors},
            balance_due=self.clock.monotonic() - self.balanced_at
            >= self.raft.state.policy.balance_interval,
            pending_judged_at=self.pending_judged_at, pending_from=self.pending_from,
            bootstrap_token_sha256=self.config.tls.admin_sha256 if self.config.tls else "",
            code_versions={h: b.code_version for h, b in beats.items()},
            code_version=self.config.code_version,
            configured_members=tuple(MemberRecord(m.name, m.raft, m.api, m.peer, m.web)
                                     for m in self.config.members))

    def cycle(self) -> str:
        """One pass: plan against the current replica, propose, return the verdict."""
        if not self.raft.is_leader() or self.raft.term() != self.term:
            self.active = False  # no more lease grants from this term
            self._stop.set()
            return f"lost leadership of term {self.term}"
        state = self.raft.state  # one immutable view for the whole pass
        if state.room_epoch != self.round_epoch:  # room may have changed: a new round
            self.round_epoch, self.pending_from = state.room_epoch, ""
        self.fencer.poke(state, self.live, self.config.ha.host_down_after)
        p = plan(state, self.view(), self.term, _ids(), self.clock.time())
        self.due_in = p.due_in
        if p.balanced:
            self.balanced_at = self.clock.monotonic()
        refused = []
        for i in range(0, len(p.commands), BATCH):
            chunk = p.commands[i:i + BATCH]
            cmd = chunk[0] if len(chunk) == 1 else c.Batch(
                id=uuid.uuid4().hex, ts=self.clock.time(), term=self.term, commands=tuple(chunk))
            asked = self.clock.monotonic()
            result = self.raft.propose(cmd, timeout=2.0)
            if (took := self.clock.monotonic() - asked) > SLOW_COMMIT:
                log.warning("leader: %d command(s) (%s) took %.2fs to commit", len(chunk),
                            ", ".join(sorted({sub.TYPE for sub in chunk})), took)
            for sub, res in zip(chunk, result.parts or (result,), strict=False):
                if not res.ok:
                    refused.append(f"{sub.TYPE} {res.code}")
        # pending VMs stay as judged until something may make room (state.room_epoch)
        self.pending_from = p.pending_next or ""
        if p.pending_next is None:
            self.pending_judged_at = state.room_epoch
        if refused:
            return f"{p.verdict}; refused: {', '.join(refused[:5])}" + (
                f" (+{len(refused) - 5})" if len(refused) > 5 else "")
        return p.verdict

    def step(self) -> str:
        """One cycle whatever it meets; its verdict logged when it changes."""
        self.last_verdict = run_cycle(self._cycle, self.last_verdict, log, "leader")
        return self.last_verdict

    def _cycle(self) -> str:
        try:
            return self.cycle()
        except Unavailable as exc:
            return f"cannot commit: {exc}"

    def next_cycle_in(self) -> float:
        """Seconds until the next cycle is due (a committed change wakes it earlier)."""
        wait = min(self.interval, self.config.ha.confirm_every)
        if self.due_in is not None:
            wait = min(wait, self.due_in)
        return max(wait, 0.0) + 0.001

    def _run(self) -> None:
        if not self.begin():
            return
        while not self._stop.is_set():
            cpu = time.thread_time()
            self.step()
            cpu = time.thread_time() - cpu
            ended = self.clock.monotonic()
            self.wake.wait(self.next_cycle_in())
            self.wake.clear()
            if (rest := rest_after(cpu, self.clock.monotonic() - ended)) > 0:
                self._stop.wait(rest)
        self.active = False
