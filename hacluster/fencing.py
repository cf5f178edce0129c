"""Fence agents: a command per host, in the style of ClusterLabs' fence agents
(`fence_ipmilan ... -o off`), run by the leader when a host goes down. Exit status 0 means the
host is off now, which lets the leader restart its HA VMs without waiting for its lease."""

from __future__ import annotations

import logging
import subprocess
import threading
import time

from .config import Config
from .core.model import HostStatus
from .core.state import ClusterState
from .live import LiveState

log = logging.getLogger(__name__)

FENCE_TIMEOUT = 30.0
RETRY_AFTER = 5.0  # a fence agent that failed is tried again after this


class FenceRunner:
    def __init__(self, config: Config) -> None:
        self.commands = {m.name: list(m.fence) for m in config.members if m.fence}
        self._running: set[str] = set()
        self._last_try: dict[str, float] = {}
        self._lock = threading.Lock()

    def poke(self, state: ClusterState, live: LiveState) -> None:
        """Start the fence agent of every down host that has one and is not being fenced."""
        for host in state.hosts.values():
            if host.status is HostStatus.UP and live.fenced_off.get(host.name):
                live.mark_fenced_off(host.name, False)  # it came back: a new incident needs
            if host.status is not HostStatus.DOWN or host.name not in self.commands:
                continue
            with self._lock:
                recently = time.monotonic() - self._last_try.get(host.name, -RETRY_AFTER)
                if (host.name in self._running or live.fenced_off.get(host.name)
                        or recently < RETRY_AFTER):
                    continue
                self._running.add(host.name)
                self._last_try[host.name] = time.monotonic()
            threading.Thread(target=self._run, args=(host.name, live), daemon=True,
                             name=f"fence-{host.name}").start()

    def _run(self, host: str, live: LiveState) -> None:
        argv = self.commands[host]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=FENCE_TIMEOUT)
            off = proc.returncode == 0
            log.warning("fence agent for %s: exit %d%s", host, proc.returncode,
                        f": {proc.stderr.strip()[-200:]}" if proc.stderr.strip() else "")
        except (OSError, subprocess.TimeoutExpired) as exc:
            off = False
            log.error("fence agent for %s failed: %s", host, exc)
        if off:
            live.mark_fenced_off(host, True)
        with self._lock:
            self._running.discard(host)
