"""An oracle independent of the daemons: it asks every host's own libvirt, many times a
second, what really runs there, and records a violation if a VM is seen running on two hosts
in one poll. It also keeps, per VM, the moments it was seen running, to measure outages."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import libvirt


class Oracle:
    def __init__(self, uris: Callable[[], dict[str, str]], period: float = 0.05) -> None:
        self.uris = uris  # host -> libvirt URI (re-read: hosts come and go)
        self.period = period
        self.violations: list[str] = []
        self.polls = 0
        self.last_seen: dict[str, tuple[float, str]] = {}  # vm -> (when, host) seen running
        self.down_since: dict[str, float] = {}  # vm -> first poll it was running nowhere
        self.outages: dict[str, list[float]] = {}  # vm -> lengths of finished outages
        self._conns: dict[str, libvirt.virConnect] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

    def __enter__(self) -> Oracle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns.values():
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def _running(self, host: str, uri: str) -> list[str]:
        conn = self._conns.get(host)
        try:
            if conn is None or not conn.isAlive():
                conn = self._conns[host] = libvirt.openReadOnly(uri)
            # running, not merely active: an incoming live migration is active but paused
            return [d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)
                    if d.name() != "test"]
        except libvirt.libvirtError:
            self._conns.pop(host, None)
            return []  # libvirtd gone: the host is off, nothing runs there

    def poll(self) -> dict[str, list[str]]:
        with self._lock:
            return self._poll()

    def _poll(self) -> dict[str, list[str]]:
        started = time.monotonic()
        where: dict[str, list[str]] = {}
        for host, uri in sorted(self.uris().items()):
            for vm in self._running(host, uri):
                where.setdefault(vm, []).append(host)
        now = time.monotonic()
        for vm, hosts in where.items():
            if len(hosts) > 1:
                self.violations.append(f"{vm} running on {hosts} in one poll "
                                       f"({(now - started) * 1000:.0f} ms)")
            self.last_seen[vm] = (now, hosts[0])
            if vm in self.down_since:
                self.outages.setdefault(vm, []).append(now - self.down_since.pop(vm))
        for vm in self.last_seen:
            if vm not in where and vm not in self.down_since:
                self.down_since[vm] = now
        self.polls += 1
        return where

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.period)

    def running_now(self) -> dict[str, list[str]]:
        return self.poll()
