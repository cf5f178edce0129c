"""Fence agents: a command per host, in the style of ClusterLabs' fence agents
(`fence_ipmilan ... -o off`), run by the leader when a host goes down. Exit status 0 means the
host is off now, which lets the leader restart its HA VMs without waiting for its lease.

FenceRunner decides when; how a fence agent runs and in what thread are ports (the simulator
runs the same runner with fake ones)."""

from __future__ import annotations

import functools
import logging
import subprocess
import threading
from collections.abc import Sequence

from .config import Config
from .core.model import HostStatus
from .core.state import ClusterState
from .live import LiveState
from .ports import SYSTEM_CLOCK, Clock, FenceCall, Spawn, spawn_thread

log = logging.getLogger(__name__)

FENCE_TIMEOUT = 30.0
RETRY_AFTER = 5.0  # a fence agent that failed is tried again after this


def run_fence_agent(host: str, argv: Sequence[str]) -> bool:
    """Run the command; True when it exits 0 (the host is off now)."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True,
                              timeout=FENCE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("fence agent for %s failed: %s", host, exc)
        return False
    log.warning("fence agent for %s: exit %d%s", host, proc.returncode,
                f": {proc.stderr.strip()[-200:]}" if proc.stderr.strip() else "")
    return proc.returncode == 0


class FenceRunner:
    def __init__(self, config: Config, clock: Clock = SYSTEM_CLOCK,
                 spawn: Spawn = spawn_thread, call: FenceCall = run_fence_agent) -> None:
        self.commands = {m.name: list(m.fence) for m in config.members if m.fence}
        self.me = config.name
        self.clock = clock
        self.spawn = spawn
        self.call = call
        self._running: set[str] = set()
        self._last_try: dict[str, float] = {}
        self._lock = threading.Lock()

    def poke(self, state: ClusterState, live: LiveState, heard_within: float) -> None:
        """Start the fence agent of every down host that has one and is not being fenced,
        unless it is this leader's own or has heartbeated within `heard_within` seconds: the
        state may still say down (a new leader, a host just back), but a host that speaks is
        not fenced, least of all the one this leader runs on."""
        beats = live.heartbeats()
        now = self.clock.monotonic()
        for host in state.hosts.values():
            if host.status is HostStatus.UP and live.fenced_off.get(host.name):
                live.mark_fenced_off(host.name, False)  # it came back: a new incident needs
            if host.status is not HostStatus.DOWN or host.name not in self.commands:
                continue
            beat = beats.get(host.name)
            if host.name == self.me or (beat is not None and now - beat.at < heard_within):
                continue
            with self._lock:
                now = self.clock.monotonic()
                recently = now - self._last_try.get(host.name, float("-inf"))
                if (host.name in self._running or live.fenced_off.get(host.name)
                        or recently < RETRY_AFTER):
                    continue
                self._running.add(host.name)
                self._last_try[host.name] = now
            self.spawn(f"fence-{host.name}", functools.partial(self._run, host.name, live))

    def _run(self, host: str, live: LiveState) -> None:
        off = self.call(host, self.commands[host])
        if off:
            live.mark_fenced_off(host, True)
        with self._lock:
            self._running.discard(host)
