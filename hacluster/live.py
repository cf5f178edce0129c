"""The leader's soft state: heartbeats, live metrics, observed VM states, lease grants and fence
agents' answers, in memory only.

Heartbeats never enter the Raft log (only the transitions they cause do). A new leader starts
with an empty LiveState, so every host gets a full grace period before it can be declared down,
and its lease arithmetic counts from its own start (core.timing).
"""

from __future__ import annotations

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
    def __init__(self, wake: threading.Event, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._beats: dict[str, Heartbeat] = {}
        self.last_granted: dict[str, float] = {}
        self.fenced_off: dict[str, bool] = {}
        self.since = clock.monotonic()
        self.wake = wake  # the leader loop's: set when there may be something to commit

    def record(self, host: str, metrics: HostMetrics, observed: dict[str, str],
               versions: dict[str, int], errors: dict[str, str] | None = None,
               code_version: int = 0) -> None:
        with self._lock:
            previous = self._beats.get(host)
            self._beats[host] = Heartbeat(host, metrics, dict(observed), dict(versions),
                                          self.clock.monotonic(), dict(errors or {}),
                                          code_version)
        if previous is None or previous.observed != observed or previous.versions != versions \
                or previous.code_version != code_version:
            self.wake.set()

    def grant(self, host: str) -> None:
        """Remember when this host's lease was last renewed (after deciding to renew it)."""
        with self._lock:
            self.last_granted[host] = self.clock.monotonic()

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
