"""Host metrics through psutil: the live figures an agent sends with every heartbeat."""

from __future__ import annotations

import psutil

from .core.placement import HostMetrics


def host_metrics(storage_dir: str, memory_available_mib: float | None = None) -> HostMetrics:
    """CPU load (0..1 over all CPUs since the previous call), available memory and free disk.

    memory_available_mib overrides psutil's figure: a test-driver host is not this machine,
    so its agent derives free memory from libvirt instead.
    """
    if memory_available_mib is None:
        memory_available_mib = psutil.virtual_memory().available / 2**20
    try:
        disk_free_gib = psutil.disk_usage(storage_dir).free / 2**30
    except OSError:
        disk_free_gib = -1.0
    return HostMetrics(cpu_load=psutil.cpu_percent(interval=None) / 100.0,
                       memory_available_mib=memory_available_mib, disk_free_gib=disk_free_gib)


def disk_total_gib(storage_dir: str) -> int:
    try:
        return int(psutil.disk_usage(storage_dir).total // 2**30)
    except OSError:
        return 0
