"""Monitoring history, kept by each member for its own host and VMs, in memory only.

Every 5 s the sampler reads the host (psutil; a test-driver host's memory from libvirt) and
its running domains (one bulk-stats call to libvirt), turns counters into rates, and keeps an
hour at full resolution and a day at one-minute averages (vSphere keeps an hour at 20 s).
Never through Raft: history is soft, per member; another member's page asks this one for it
over the member port. A restarted member starts a new history (the charts say "no data"
for the gap instead of drawing a line across it).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil

from .hypervisor import DomainStats, Hypervisor, HypervisorError

log = logging.getLogger(__name__)

STEP = 5.0  # seconds between samples
RANGES = {"1h": (STEP, 720), "1d": (60.0, 1440)}  # range -> (step, points)
HOST_FIELDS = ("cpu_percent", "memory_used_mib", "memory_total_mib")
VM_FIELDS = ("cpu_percent", "memory_mib", "disk_read_bps", "disk_write_bps", "net_rx_bps",
             "net_tx_bps")
MAX_VMS = 1000  # VMs with a history on one host; beyond, the newest are not charted


class Ring:
    """Fixed-size rows of (time, fields...) in one float array; oldest overwritten."""

    def __init__(self, fields: int, size: int) -> None:
        self.data = np.full((size, fields + 1), np.nan)
        self.next = 0
        self.count = 0

    def push(self, t: float, values: tuple[float, ...]) -> None:
        self.data[self.next] = (t, *values)
        self.next = (self.next + 1) % len(self.data)
        self.count = min(self.count + 1, len(self.data))

    def rows(self, since: float) -> np.ndarray:
        """Rows newer than `since`, oldest first."""
        order = np.roll(self.data, -self.next, axis=0)[len(self.data) - self.count:]
        return order[order[:, 0] > since]


class Series:
    """One subject's history: full resolution for an hour, minute averages for a day."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self.fine = Ring(len(fields), RANGES["1h"][1])
        self.coarse = Ring(len(fields), RANGES["1d"][1])
        self._minute = -1
        self._sum = np.zeros(len(fields))
        self._n = np.zeros(len(fields))
        self.last_seen = 0.0

    def add(self, t: float, values: tuple[float, ...]) -> None:
        self.last_seen = t
        self.fine.push(t, values)
        minute = int(t // 60)
        if minute != self._minute and self._minute >= 0 and self._n.any():
            with np.errstate(invalid="ignore"):
                mean = np.where(self._n > 0, self._sum / np.maximum(self._n, 1), np.nan)
            self.coarse.push(self._minute * 60.0 + 30.0, tuple(mean))
            self._sum[:], self._n[:] = 0.0, 0.0
        self._minute = minute
        row = np.array(values, dtype=float)
        known = ~np.isnan(row)
        self._sum[known] += row[known]
        self._n[known] += 1

    def window(self, range_: str, now: float) -> Window:
        step, points = RANGES[range_]
        rows = (self.fine if range_ == "1h" else self.coarse).rows(now - step * points)
        return Window(step, rows[:, 0], {name: rows[:, i + 1]
                                         for i, name in enumerate(self.fields)})


@dataclass(frozen=True)
class Window:
    """A stretch of one series: sample times and each field's values (NaN: no sample)."""

    step: float
    t: np.ndarray
    series: dict[str, np.ndarray]


@dataclass
class _Last:
    t: float
    stats: DomainStats


class History:
    """The host's series and each VM's, by VM name; thread-safe (sampler writes, servers
    read)."""

    def __init__(self) -> None:
        self.host = Series(HOST_FIELDS)
        self.vms: dict[str, Series] = {}
        self._last: dict[str, _Last] = {}
        self._lock = threading.Lock()

    def record(self, t: float, host: tuple[float, ...], domains: dict[str, DomainStats]
               ) -> None:
        with self._lock:
            self.host.add(t, host)
            for name, now in domains.items():
                before = self._last.get(name)
                self._last[name] = _Last(t, now)
                series = self.vms.get(name)
                if series is None:
                    if len(self.vms) >= MAX_VMS:
                        continue
                    series = self.vms[name] = Series(VM_FIELDS)
                series.add(t, _rates(before, t, now))
            for name in [n for n in self._last if n not in domains]:
                del self._last[name]  # stopped or gone: the next run starts afresh
            for name in [n for n, s in self.vms.items() if t - s.last_seen > 86400]:
                del self.vms[name]

    def window(self, vm: str, range_: str, now: float | None = None) -> Window | None:
        """The host's window (vm ""), or a VM's; None if this host has none for it."""
        with self._lock:
            series = self.host if not vm else self.vms.get(vm)
            return series.window(range_, now or time.time()) if series else None


def _rates(before: _Last | None, t: float, now: DomainStats) -> tuple[float, ...]:
    """CPU as percent of the domain's vCPUs, I/O in bytes per second; NaN until a second
    sample (or after a counter went back: the domain restarted)."""
    memory = now.memory_kib / 1024
    if before is None or t <= before.t:
        return (math.nan, memory, math.nan, math.nan, math.nan, math.nan)
    dt, b = t - before.t, before.stats

    def rate(a: int, c: int) -> float:
        return (c - a) / dt if c >= a else math.nan

    cpu = (now.cpu_ns - b.cpu_ns) / (dt * 1e9 * now.vcpus) * 100 if now.cpu_ns >= b.cpu_ns \
        else math.nan
    return (cpu, memory, rate(b.disk_read, now.disk_read), rate(b.disk_write, now.disk_write),
            rate(b.net_rx, now.net_rx), rate(b.net_tx, now.net_tx))


def busy_percent(before: Any, now: Any) -> float:
    """The share of CPU time not idle between two psutil.cpu_times() readings."""
    idle = (now.idle + getattr(now, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    total = sum(now) - sum(before)
    return math.nan if total <= 0 else max(0.0, min(100.0, 100.0 * (1 - idle / total)))


class Sampler:
    """The thread that fills a History every STEP seconds until stop is set."""

    def __init__(self, history: History, hypervisor: Hypervisor,
                 host_memory: Callable[[dict[str, DomainStats]], tuple[float, float] | None]
                 ) -> None:
        self.history = history
        self.hypervisor = hypervisor
        self.host_memory = host_memory  # (used, total) MiB for a test-driver host, else None
        # its own CPU baseline: psutil.cpu_percent() shares one between callers (the agent's)
        self._cpu = psutil.cpu_times()
        self._failing = False

    def sample(self) -> None:
        now = time.time()
        try:
            domains = self.hypervisor.domain_stats()
            self._failing = False
        except HypervisorError as exc:
            if not self._failing:
                log.warning("monitoring: %s (the charts show a gap)", exc)
            self._failing = True
            domains = {}
        memory = self.host_memory(domains)
        if memory is None:
            vm = psutil.virtual_memory()
            memory = ((vm.total - vm.available) / 2**20, vm.total / 2**20)
        times = psutil.cpu_times()
        cpu, self._cpu = busy_percent(self._cpu, times), times
        self.history.record(now, (cpu, *memory), domains)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(STEP - time.time() % STEP):
            try:
                self.sample()
            except Exception:  # monitoring must never take the daemon down
                log.exception("monitoring sample failed")
