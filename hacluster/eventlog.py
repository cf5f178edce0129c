"""This member's recent events (from core.events), fanned out to live streams.

Events are added by the Raft thread as commands apply; streams (`hactl events --follow`, and
later the web console) read them on the API's event loop. A stream costs a small bounded queue,
not a thread; a stream that falls more than its queue behind is dropped (it can reconnect and
resume), so a slow reader never holds anything up; the number of streams is capped.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    seq: int
    ts: float
    kind: str
    message: str


class TooManyStreams(Exception):
    pass


class Subscription:
    """One live stream's view: the backlog, then every new event, until it falls behind."""

    def __init__(self, log: EventLog, backlog: list[Event], seq: int, depth: int) -> None:
        self._log = log
        self.loop = asyncio.get_running_loop()  # the gRPC server's, or the web server's
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=depth)
        self.backlog = backlog
        self.after = seq  # events up to here were in the backlog (or before it)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """On the event loop: queue it, or give up on a reader this far behind."""
        if self.overflowed or event.seq <= self.after:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._log.dropped += 1

    async def next(self, timeout: float) -> Event | None:
        if self.backlog:
            return self.backlog.pop(0)
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._log.unsubscribe(self)


class EventLog:
    def __init__(self, keep: int = 1000, max_streams: int = 1000, depth: int = 1000) -> None:
        self._events: deque[Event] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self.max_streams = max_streams
        self.depth = depth
        self.dropped = 0  # streams dropped for falling behind

    def add(self, ts: float, kind: str, message: str) -> None:
        """From any thread (the Raft thread): record it and hand it to the streams."""
        with self._lock:
            self._seq += 1
            event = Event(self._seq, ts, kind, message)
            self._events.append(event)
            loops = {sub.loop for sub in self._subs}
        for loop in loops:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._deliver, event, loop)

    def _deliver(self, event: Event, loop: asyncio.AbstractEventLoop) -> None:
        for sub in list(self._subs):
            if sub.loop is loop:
                sub.offer(event)

    def recent(self, backlog: int) -> list[Event]:
        with self._lock:
            return list(self._events)[-backlog:] if backlog > 0 else []

    def subscribe(self, backlog: int, after: int | None = None) -> Subscription:
        """On an event loop: the newest `backlog` events (or every kept one after seq
        `after`, to resume a stream), then every later one, no gap."""
        with self._lock:
            if len(self._subs) >= self.max_streams:
                raise TooManyStreams(f"this member serves at most {self.max_streams} event "
                                     "streams; try another member or later")
            if after is not None:
                past = [e for e in self._events if e.seq > after]
            else:
                past = list(self._events)[-backlog:] if backlog > 0 else []
            sub = Subscription(self, past, self._seq, self.depth)
            self._subs.add(sub)
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def streams(self) -> int:
        return len(self._subs)
