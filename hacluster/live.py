"""The leader's soft state: heartbeats, live metrics, observed VM states, lease grants and fence
agents' answers, in memory only.

Heartbeats never enter the Raft log (only the transitions they cause do). A new leader starts
with an empty LiveState, so every host gets a full grace period before it can be declared down,
and its lease arithmetic counts from its own start (core.timing).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from .core.placement import HostMetrics
from .ports import SYSTEM_CLOCK, Clock


@dataclass(frozen=True)
class Heartbeat:
    host: str
    metrics: HostMetrics
    observed: dict[str, str]
    versions: dict[str, int]  # the VM record versions the agent's replica had
    at: float  # monotonic
    errors: dict[str, str] = field(default_factory=dict)  # VM -> why a start was refused
    code_version: int = 0  # the hacluster code version it runs (0: too old to say)


class LiveState:
    def __init__(self, wake: threading.Event, clock: Clock = SYSTEM_CLOCK,
                 forwarded: bool = False) -> None:
        """forwarded: heartbeats are answered in the Raft process (memberport.py) and reach
        this one in order, later; what is known holds only up to `heard_until`."""
        self.clock = clock
        self._lock = threading.Lock()
        self._beats: dict[str, Heartbeat] = {}
        self.last_granted: dict[str, float] = {}
        self.fenced_off: dict[str, bool] = {}
        self.since = clock.monotonic()
        # every heartbeat and grant up to this time has been recorded (here: all of them)
        self.heard_until = self.since if forwarded else math.inf
        self.wake = wake  # the leader loop's: set when there may be something to commit

    def record(self, host: str, metrics: HostMetrics, observed: dict[str, str],
               versions: dict[str, int], errors: dict[str, str] | None = None,
               code_version: int = 0, at: float | None = None) -> None:
        """at: when the beat was answered (by the Raft process), if not now."""
        with self._lock:
            previous = self._beats.get(host)
            self._beats[host] = Heartbeat(host, metrics, dict(observed), dict(versions),
                                          self.clock.monotonic() if at is None else at,
                                          dict(errors or {}), code_version)
        if previous is None or previous.observed != observed or previous.versions != versions \
                or previous.code_version != code_version:
            self.wake.set()

    def grant(self, host: str, at: float | None = None) -> None:
        """Remember when this host's lease was last renewed (after deciding to renew it)."""
        with self._lock:
            self.last_granted[host] = self.clock.monotonic() if at is None else at

    def heard(self, until: float) -> None:
        """Every forwarded heartbeat answered before `until` is recorded."""
        self.heard_until = max(self.heard_until, until)

    def now(self) -> float:
        """The time up to which this soft state is whole: a leader that took its heartbeats
        late (forwarded, behind a busy daemon) judges as of then, and sees no host silent
        that was not."""
        return min(self.clock.monotonic(), self.heard_until)

    def mark_fenced_off(self, host: str, off: bool) -> None:
        with self._lock:
            self.fenced_off[host] = off
        self.wake.set()

    def heartbeats(self) -> dict[str, Heartbeat]:
        with self._lock:
            return dict(self._beats)

    def snapshot(self) -> tuple[dict[str, Heartbeat], dict[str, float], dict[str, bool]]:
        with self._lock:
            return dict(self._beats), dict(self.last_granted), dict(self.fenced_off)
