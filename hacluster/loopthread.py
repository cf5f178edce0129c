"""An asyncio event loop on a thread of its own: each server of a member (the gRPC API, the
web console) gets one, so what one of them does cannot hold up the other's loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from .priority import critical

log = logging.getLogger(__name__)


class LoopThread:
    def __init__(self, name: str, setup: Callable[[], Coroutine[Any, Any, None]],
                 nice: int = 0) -> None:
        """nice: the thread's own (priority.py), for a loop members depend on."""
        self.loop = asyncio.new_event_loop()
        self._nice = nice
        self._setup = setup
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, what: str) -> None:
        """Start the thread; return once `setup` has run on its loop, or raise OSError with
        what it raised (a port in use, say)."""
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise OSError(f"{what}: {self._error}")

    def _run(self) -> None:
        critical(self._nice)
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._setup())
        except BaseException as exc:  # reported to start()
            self._error = exc
            return
        finally:
            self._ready.set()
        self.loop.run_forever()

    def stop(self, teardown: Coroutine[Any, Any, None] | None, timeout: float) -> None:
        """Run `teardown` on the loop (at most `timeout`), then stop the loop and thread."""
        if teardown is not None and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(teardown, self.loop).result(timeout)
            except Exception as exc:  # stopping anyway
                log.debug("%s stop: %s", self._thread.name, exc)
        elif teardown is not None:
            teardown.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(3)
