"""Placement: filters remove hosts (each with a reason), weighers rank the rest, best wins.

Shaped like Nova's scheduler: small filter and weigher classes, each weight multiplied by a
factor. Unlike Nova, weights are not min-max normalised over the candidates: each weigher
gives a value on an absolute 0..1 scale (a share of the host), so that noise (CPU loads of
0.02 and 0.03) stays noise instead of being stretched to the full range.

They work on whole columns of a HostTable (numpy arrays, one row per host), so one decision
over 1,000 hosts costs tens of microseconds; the planner updates the table after each choice
so a batch of placements never overcommits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .model import Host, HostStatus, Policy, Vm

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class HostMetrics:
    """Live, soft-state figures a host's agent reports with its heartbeat."""

    cpu_load: float = 0.0  # 0..1 of the host's CPUs busy
    memory_available_mib: float = 0.0
    disk_free_gib: float = 0.0


@dataclass
class HostTable:
    """Columns of per-host figures; row i is host names[i] (sorted, so ties break by name)."""

    names: list[str]
    up: Bools
    cpus: Floats
    memory_mib: Floats
    disk_gib: Floats
    used_vcpus: Floats
    used_memory_mib: Floats
    used_disk_gib: Floats
    cpu_load: Floats
    index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, hosts: Iterable[Host], vms: Iterable[Vm],
              metrics: Mapping[str, HostMetrics] | None = None) -> HostTable:
        ordered = sorted(hosts, key=lambda h: h.name)
        names = [h.name for h in ordered]
        index = {n: i for i, n in enumerate(names)}
        n = len(names)
        used = np.zeros((3, n))
        for vm in vms:
            i = index.get(vm.host) if vm.host is not None and vm.wants_to_run else None
            if i is not None:
                used[0, i] += vm.vcpus
                used[1, i] += vm.memory_mib
                used[2, i] += vm.disk_gib
        live = metrics or {}
        return cls(
            names=names,
            up=np.array([h.status is HostStatus.UP for h in ordered], dtype=bool),
            cpus=np.array([h.cpus for h in ordered], dtype=float),
            memory_mib=np.array([h.memory_mib for h in ordered], dtype=float),
            disk_gib=np.array([h.disk_gib for h in ordered], dtype=float),
            used_vcpus=used[0], used_memory_mib=used[1], used_disk_gib=used[2],
            cpu_load=np.array([live[h].cpu_load if h in live else 0.0 for h in names]),
            index=index,
        )

    def free_memory(self, policy: Policy) -> Floats:
        result: Floats = (self.memory_mib * policy.memory_ratio - policy.memory_reserve_mib
                          - self.used_memory_mib)
        return result

    def free_vcpus(self, policy: Policy) -> Floats:
        result: Floats = self.cpus * policy.cpu_ratio - self.used_vcpus
        return result

    def free_disk(self, policy: Policy) -> Floats:
        result: Floats = self.disk_gib * policy.disk_ratio - self.used_disk_gib
        return result

    def add(self, vm: Vm, i: int, sign: int = 1) -> None:
        self.used_vcpus[i] += sign * vm.vcpus
        self.used_memory_mib[i] += sign * vm.memory_mib
        self.used_disk_gib[i] += sign * vm.disk_gib


# ---- filters -------------------------------------------------------------------------------


class Filter:
    name = "filter"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        raise NotImplementedError

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        raise NotImplementedError


class HostUpFilter(Filter):
    name = "status"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        return t.up

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        return "host is down"


class MemoryFilter(Filter):
    name = "memory"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        return t.free_memory(policy) >= vm.memory_mib

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        free = t.free_memory(policy)[i]
        return f"needs {vm.memory_mib} MiB memory, {max(free, 0):.0f} MiB free"


class VcpuFilter(Filter):
    name = "vcpus"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        return t.free_vcpus(policy) >= vm.vcpus

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        free = t.free_vcpus(policy)[i]
        return (f"needs {vm.vcpus} vCPUs, {max(free, 0):.0f} free "
                f"(ratio {policy.cpu_ratio:g} per CPU)")


class DiskFilter(Filter):
    name = "disk"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        return t.free_disk(policy) >= vm.disk_gib

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        free = t.free_disk(policy)[i]
        return f"needs {vm.disk_gib} GiB disk, {max(free, 0):.0f} GiB free"


class AvoidHostsFilter(Filter):
    """A VM relocated after failing on a host is not put back there."""

    name = "failed_here"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        ok = np.ones(len(t.names), dtype=bool)
        for h in vm.avoid_hosts:
            i = t.index.get(h)
            if i is not None:
                ok[i] = False
        return ok

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        return "the VM failed on this host"


# ---- weighers ------------------------------------------------------------------------------


class Weigher:
    """Values on an absolute 0..1 scale, higher is better."""

    name = "weigher"
    multiplier = 1.0

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        raise NotImplementedError


def _share(part: Floats, whole: Floats) -> Floats:
    result: Floats = np.clip(part / np.maximum(whole, 1.0), 0.0, 1.0)
    return result


class FreeMemoryWeigher(Weigher):
    """Spread: prefer the host left with the largest share of its memory free."""

    name = "free_memory"
    multiplier = 1.0

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        return _share(t.free_memory(policy) - vm.memory_mib, t.memory_mib)


class CpuLoadWeigher(Weigher):
    """Prefer hosts whose CPUs are less busy (live and smoothed, from heartbeats)."""

    name = "cpu_load"
    multiplier = 0.5

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        result: Floats = 1.0 - np.clip(t.cpu_load, 0.0, 1.0)
        return result


class FreeDiskWeigher(Weigher):
    name = "free_disk"
    multiplier = 0.5

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        return _share(t.free_disk(policy) - vm.disk_gib, t.disk_gib)


class StickyWeigher(Weigher):
    """Prefer the host the VM last ran on (its definition and caches are there)."""

    name = "last_host"
    multiplier = 0.2

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        values = np.zeros(len(t.names))
        i = t.index.get(vm.last_host) if vm.last_host else None
        if i is not None:
            values[i] = 1.0
        return values


DEFAULT_FILTERS: tuple[Filter, ...] = (HostUpFilter(), AvoidHostsFilter(), MemoryFilter(),
                                       VcpuFilter(), DiskFilter())
DEFAULT_WEIGHERS: tuple[Weigher, ...] = (FreeMemoryWeigher(), CpuLoadWeigher(), FreeDiskWeigher(),
                                         StickyWeigher())


@dataclass(frozen=True)
class Decision:
    vm: str
    host: str | None
    rejected: dict[str, str]  # host -> why it was filtered out
    scores: dict[str, float]  # candidate host -> weighed score

    @property
    def reasons(self) -> list[str]:
        """One line per rejected host, for a VM left pending."""
        if not self.rejected:
            return ["no hosts in the cluster"]
        return [f"{h}: {why}" for h, why in sorted(self.rejected.items())]


@dataclass
class Placer:
    policy: Policy
    filters: Sequence[Filter] = DEFAULT_FILTERS
    weighers: Sequence[Weigher] = DEFAULT_WEIGHERS

    def decide(self, vm: Vm, t: HostTable, explain: bool = False) -> Decision:
        """Choose a host for vm; with explain, also give every host's verdict and score."""
        ok = np.ones(len(t.names), dtype=bool)
        rejected: dict[str, str] = {}
        for f in self.filters:
            passed = f.mask(vm, t, self.policy)
            if explain:
                for i in np.flatnonzero(ok & ~passed):
                    rejected[t.names[i]] = f"{f.name}: {f.reason(vm, t, int(i), self.policy)}"
            ok &= passed
        candidates = np.flatnonzero(ok)
        if candidates.size == 0:
            # Nothing fits: the rare path, so only now pay for every host's reason.
            return self.decide(vm, t, explain=True) if not explain else Decision(
                vm.name, None, rejected, {})
        score = np.zeros(candidates.size)
        for w in self.weighers:
            score += w.multiplier * w.values(vm, t, self.policy)[candidates]
        best = int(candidates[int(np.argmax(score))])  # argmax: first max = lowest name
        scores = ({t.names[int(i)]: float(s) for i, s in zip(candidates, score, strict=True)}
                  if explain else {})
        return Decision(vm.name, t.names[best], rejected, scores)

    def place_all(self, vms: Iterable[Vm], t: HostTable) -> list[Decision]:
        """Place in priority order (highest first, then oldest), updating the table as we go."""
        decisions = []
        for vm in sorted(vms, key=lambda v: (-v.priority, v.created_at, v.name)):
            d = self.decide(vm, t)
            if d.host is not None:
                t.add(vm, t.index[d.host])
            decisions.append(d)
        return decisions
