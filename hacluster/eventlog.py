"""This member's recent events (from core.events), for WatchEvents streams to follow."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    seq: int
    ts: float
    kind: str
    message: str


class EventLog:
    def __init__(self, keep: int = 1000) -> None:
        self._events: deque[Event] = deque(maxlen=keep)
        self._seq = 0
        self._cond = threading.Condition()

    def add(self, ts: float, kind: str, message: str) -> None:
        with self._cond:
            self._seq += 1
            self._events.append(Event(self._seq, ts, kind, message))
            self._cond.notify_all()

    def since(self, seq: int, timeout: float) -> list[Event]:
        """Events after seq, waiting up to timeout for the first one."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seq, timeout)
            return [e for e in self._events if e.seq > seq]

    def last_seq(self, backlog: int) -> int:
        """The seq to follow from so that the newest `backlog` events come first."""
        with self._cond:
            return max(self._seq - backlog, self._events[0].seq - 1 if self._events else 0)
