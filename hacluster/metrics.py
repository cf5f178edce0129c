"""Host metrics through psutil (the live figures an agent sends with every heartbeat), and
the host facts the kernel tells: its disk, its bridges."""

from __future__ import annotations

import os
from collections.abc import Iterable

import psutil

from .core.placement import HostMetrics

SMOOTHING = 0.2  # weight of the newest CPU sample (at 2 heartbeats/s: a few seconds' memory)


class MetricsProbe:
    """CPU load is smoothed (an exponential moving average): one busy half-second must not
    steer placement; a host that stays busy will."""

    def __init__(self, storage_dir: str) -> None:
        self.storage_dir = storage_dir
        self._cpu: float | None = None
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement

    def sample(self, memory_available_mib: float | None = None) -> HostMetrics:
        """memory_available_mib overrides psutil's figure: a test-driver host is not this
        machine, so its agent derives free memory from libvirt instead."""
        load = psutil.cpu_percent(interval=None) / 100.0
        self._cpu = load if self._cpu is None else SMOOTHING * load + (1 - SMOOTHING) * self._cpu
        if memory_available_mib is None:
            memory_available_mib = psutil.virtual_memory().available / 2**20
        try:
            disk_free_gib = psutil.disk_usage(self.storage_dir).free / 2**30
        except OSError:
            disk_free_gib = -1.0
        return HostMetrics(cpu_load=self._cpu, memory_available_mib=memory_available_mib,
                           disk_free_gib=disk_free_gib)


def disk_total_gib(storage_dir: str) -> int:
    try:
        return int(psutil.disk_usage(storage_dir).total // 2**30)
    except OSError:
        return 0


def bridges_present(names: Iterable[str], sys_net: str = "/sys/class/net") -> set[str]:
    """Which of these Linux bridges exist in this host's (network namespace's) kernel."""
    return {n for n in names if os.path.isdir(os.path.join(sys_net, n, "bridge"))}
