"""The leader's soft state: heartbeats, live metrics and observed VM states, in memory only.

Heartbeats never enter the Raft log (only the transitions they cause do). A new leader starts
with an empty LiveState, so every host gets a full grace period before it can be declared down.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .core.placement import HostMetrics
from .core.reconcile import LeaderView


@dataclass(frozen=True)
class Heartbeat:
    host: str
    metrics: HostMetrics
    observed: dict[str, str]
    at: float  # monotonic


class LiveState:
    def __init__(self, wake: threading.Event) -> None:
        self._lock = threading.Lock()
        self._beats: dict[str, Heartbeat] = {}
        self.since = time.monotonic()
        self.wake = wake  # the leader loop's: set when there may be something to commit

    def record(self, host: str, metrics: HostMetrics, observed: dict[str, str]) -> None:
        with self._lock:
            previous = self._beats.get(host)
            self._beats[host] = Heartbeat(host, metrics, dict(observed), time.monotonic())
        if previous is None or previous.observed != observed:
            self.wake.set()

    def heartbeats(self) -> dict[str, Heartbeat]:
        with self._lock:
            return dict(self._beats)

    def view(self) -> LeaderView:
        beats = self.heartbeats()
        return LeaderView(
            now=time.monotonic(),
            leader_since=self.since,
            last_heard={h: b.at for h, b in beats.items()},
            metrics={h: b.metrics for h, b in beats.items()},
            observed={h: b.observed for h, b in beats.items()},
        )
