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
from .core.reconcile import LeaderView, plan
from .fencing import FenceRunner
from .live import LiveState
from .raft import RaftNode, Unavailable

log = logging.getLogger(__name__)


BATCH = 200  # leader commands per log entry: big enough for thousands, small to apply


def _ids() -> Iterator[str]:
    while True:
        yield uuid.uuid4().hex


class LeaderLoop:
    def __init__(self, config: Config, raft: RaftNode, wake: threading.Event,
                 interval: float = 0.25) -> None:
        self.config = config
        self.name = config.name
        self.raft = raft
        self.fencer = FenceRunner(config)
        self.interval = interval
        self.wake = wake
        self.live = LiveState(wake)
        self.term = 0
        self.active = False  # claim committed: this member acts as leader
        self.last_verdict = ""
        self.due_in: float | None = None
        self.pending_judged_at = -1  # pending VMs were judged at this room epoch
        self.pending_from = ""  # a round of judging them resumes after this VM
        self.round_epoch = -1
        self.balanced_at = time.monotonic()  # the first pass one interval after taking over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.live = LiveState(self.wake)  # a fresh grace period for every host
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

    def _claim(self) -> bool:
        """The barrier: commit a claim of our term before acting on anything."""
        result = self.raft.propose(c.ClaimLeadership(
            id=uuid.uuid4().hex, ts=time.time(), term=self.term, leader=self.name), timeout=2.0)
        if not result.ok:
            log.warning("leadership claim for term %d refused: %s", self.term, result.message)
            return False
        return True

    def fresh(self) -> bool:
        """May this leader grant leases now? Only within grant_window of the last proof of a
        majority: a deposed (cut off, or paused and resumed) leader stops granting within
        the bound that a new leader's grace period (core.timing) assumes."""
        confirmed = self.raft.majority_confirmed_at()
        return (self.active and confirmed is not None and self.raft.term() == self.term
                and time.monotonic() - confirmed < self.config.ha.grant_window)

    def view(self) -> LeaderView:
        beats, granted, fenced_off = self.live.snapshot()
        ha = self.config.ha
        return LeaderView(
            now=time.monotonic(), leader_since=self.live.since, margin=ha.margin,
            host_down_after=ha.host_down_after, grant_window=ha.grant_window,
            wall_now=time.time(), last_heard={h: b.at for h, b in beats.items()},
            last_granted=granted, fenced_off=fenced_off,
            metrics={h: b.metrics for h, b in beats.items()},
            observed={h: b.observed for h, b in beats.items()},
            reported_versions={h: b.versions for h, b in beats.items()},
            errors={h: b.errors for h, b in beats.items() if b.errors},
            balance_due=time.monotonic() - self.balanced_at
            >= self.raft.state.policy.balance_interval,
            pending_judged_at=self.pending_judged_at, pending_from=self.pending_from,
            bootstrap_token_sha256=self.config.tls.admin_sha256 if self.config.tls else "")

    def cycle(self) -> str:
        """One pass: plan against the current replica, propose, return the verdict."""
        if not self.raft.is_leader() or self.raft.term() != self.term:
            self._stop.set()
            return f"lost leadership of term {self.term}"
        state = self.raft.state  # one immutable view for the whole pass
        if state.room_epoch != self.round_epoch:  # room may have changed: a new round
            self.round_epoch, self.pending_from = state.room_epoch, ""
        self.fencer.poke(state, self.live)
        p = plan(state, self.view(), self.term, _ids(), time.time())
        self.due_in = p.due_in
        if p.balanced:
            self.balanced_at = time.monotonic()
        refused = []
        for i in range(0, len(p.commands), BATCH):
            chunk = p.commands[i:i + BATCH]
            cmd = chunk[0] if len(chunk) == 1 else c.Batch(
                id=uuid.uuid4().hex, ts=time.time(), term=self.term, commands=tuple(chunk))
            result = self.raft.propose(cmd, timeout=2.0)
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

    def _run(self) -> None:
        self.term = self.raft.term()
        try:
            if not self._claim():
                return
        except Unavailable as exc:
            log.warning("cannot claim leadership: %s", exc)
            return
        self.active = True
        log.info("leader of term %d", self.term)
        while not self._stop.is_set():
            try:
                verdict = self.cycle()
            except Unavailable as exc:
                verdict = f"cannot commit: {exc}"
            except Exception:
                log.exception("leader cycle failed")
                verdict = "cycle failed"
            if verdict != self.last_verdict:
                log.info("leader: %s", verdict)
                self.last_verdict = verdict
            wait = min(self.interval, self.config.ha.confirm_every)
            if self.due_in is not None:
                wait = min(wait, self.due_in)
            self.wake.wait(max(wait, 0.0) + 0.001)
            self.wake.clear()
        self.active = False
