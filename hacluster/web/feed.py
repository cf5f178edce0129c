"""The console's live stream: typed deltas of what each committed command changed, as
Server-Sent Events, one stream per browser tab.

The Raft thread only notes (command, result) pairs (O(1), never blocks). The web loop wakes,
waits a few milliseconds for more, and has one delta built from them for everybody (its
records rendered once, however many tabs watch), numbered `BOOT.SEQ` and kept in a ring, so a
tab that reconnects with Last-Event-ID gets exactly what it missed; one too far behind, or
from before this member restarted, is told to `reset` (reload what it shows). Each stream is
a bounded queue: a tab that stops reading is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from ..core.commands import Command
from ..core.state import Result

Pair = tuple[Command, Result]
COALESCE = 0.03  # seconds a delta waits for more commits to share it
FLUSH = 0.02  # seconds what is published waits for more, to go to every tab in one write
MAX_PENDING = 20_000  # noted pairs kept before a delta; past it, streams are told to reset
RESUME_GRACE = 120.0  # seconds after the last stream closed during which deltas are still
# built and kept, so a tab back from a network blip resumes instead of reloading


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One Server-Sent Event (JSON data: one line, as json.dumps escapes newlines)."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class TooManyStreams(Exception):
    pass


class Stream:
    """One tab's pending messages. The feed appends and sets `ready`; the tab's handler
    wakes, takes everything pending and writes it in one go (one wake-up and one write per
    burst, not per message: what keeps 500 tabs cheap)."""

    def __init__(self, depth: int) -> None:
        self.pending: list[bytes] = []
        self.ready = asyncio.Event()
        self.depth = depth
        self.overflowed = False

    def offer(self, message: bytes) -> None:
        if self.overflowed:
            return
        if len(self.pending) >= self.depth:
            self.overflowed = True  # the handler ends it; the tab resumes from the ring
        else:
            self.pending.append(message)
        self.ready.set()

    async def take(self, timeout: float) -> bytes:
        """Everything pending (b"" if nothing came within timeout)."""
        if not self.pending:
            try:
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
            except TimeoutError:
                pass
        self.ready.clear()
        out, self.pending = b"".join(self.pending), []
        return out


class ChangeFeed:
    def __init__(self, keep: int = 2000, depth: int = 500, max_streams: int = 1000) -> None:
        self.boot = secrets.token_hex(4)  # a restarted member's numbers mean nothing to a tab
        self.seq = 0
        self.ring: deque[tuple[int, bytes]] = deque(maxlen=keep)
        self.depth = depth
        self.max_streams = max_streams
        self.streams: set[Stream] = set()
        self.dropped = 0
        self._pending: list[Pair] = []
        self._overrun = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._woken = False
        self._watched = float("-inf")  # when a stream was last open
        self._outbox: list[bytes] = []  # published, not yet handed to the streams
        self._flushing = False

    # ---- the Raft thread ------------------------------------------------------------------------

    def note(self, cmd: Command, result: Result) -> None:
        with self._lock:
            if self._loop is None:
                return  # nobody can be watching yet (the journal replays at start)
            if len(self._pending) < MAX_PENDING:
                self._pending.append((cmd, result))
            else:
                self._overrun = True
            if self._woken:
                return
            self._woken = True
            loop, wake = self._loop, self._wake
        assert wake is not None
        loop.call_soon_threadsafe(wake.set)

    # ---- the web loop ---------------------------------------------------------------------------

    async def run(self, build: Callable[[list[Pair]], Any], pool: Executor) -> None:
        """Forever: wait for commits, have `build` make one delta of them (in a worker
        thread: it renders records), number it and hand it to every stream."""
        self._wake = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            await asyncio.sleep(COALESCE)
            self._wake.clear()
            with self._lock:
                pairs, self._pending = self._pending, []
                overrun, self._overrun, self._woken = self._overrun, False, False
            if self.streams:
                self._watched = time.monotonic()
            elif time.monotonic() - self._watched > RESUME_GRACE:
                # nobody watched for a while: build nothing, and no old id resumes any more
                self.ring.clear()
                self.seq += 1
                continue
            if overrun:
                self.publish("reset", {"why": "too many changes at once"})
                continue
            delta = await asyncio.get_running_loop().run_in_executor(pool, build, pairs)
            if delta:
                self.publish("delta", delta)

    def publish(self, event: str, data: Any, keep: bool = True) -> None:
        """To every stream, within FLUSH seconds, together with whatever else is published
        meanwhile (a commit's delta and its events: one wake-up and one write per tab, not
        three); kept in the ring (resumable) unless it is ephemeral."""
        if keep:
            self.seq += 1
            message = sse(event, data, f"{self.boot}.{self.seq}")
            self.ring.append((self.seq, message))
        else:
            message = sse(event, data)
        self._outbox.append(message)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_later(FLUSH, self._flush)

    def _flush(self) -> None:
        self._flushing = False
        burst, self._outbox = b"".join(self._outbox), []
        for stream in list(self.streams):
            stream.offer(burst)

    def open(self, last_event_id: str | None) -> tuple[Stream, list[bytes]]:
        """A new stream and what it must be sent first: what it missed since
        last_event_id, or a `reset` when that cannot be told."""
        if len(self.streams) >= self.max_streams:
            raise TooManyStreams(f"this member serves at most {self.max_streams} live "
                                 "streams; try another member or later")
        stream = Stream(self.depth)
        self.streams.add(stream)
        return stream, self._missed(last_event_id)

    def _missed(self, last_event_id: str | None) -> list[bytes]:
        hello = sse("hello", {"id": f"{self.boot}.{self.seq}"}, f"{self.boot}.{self.seq}")
        if not last_event_id:
            return [hello]
        boot, _, number = last_event_id.partition(".")
        oldest = self.ring[0][0] if self.ring else self.seq + 1
        if boot != self.boot or not number.isdigit() or not (
                oldest - 1 <= int(number) <= self.seq):
            return [sse("reset", {"why": "cannot resume: reload"}, f"{self.boot}.{self.seq}")]
        return [m for seq, m in self.ring if seq > int(number)]

    def close(self, stream: Stream) -> None:
        self.streams.discard(stream)
        if stream.overflowed:
            self.dropped += 1
