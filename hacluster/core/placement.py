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

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from . import cpus, storage
from .model import Host, HostStatus, Network, Policy, Pool, Rule, RuleKind, Strength, Vm

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class HostMetrics:
    """Live, soft-state figures a host's agent reports with its heartbeat."""

    cpu_load: float = 0.0  # 0..1 of the host's CPUs busy
    memory_available_mib: float = 0.0
    disk_free_gib: float = 0.0
    heartbeat_rtt_ms: float = -1.0  # the host's previous heartbeat round trip (-1: unknown)


class HasPlacement(Protocol):
    """What a table is built from (a ClusterState), without importing the state machine."""

    @property
    def hosts(self) -> Mapping[str, Host]: ...

    @property
    def vms(self) -> Mapping[str, Vm]: ...

    @property
    def pools(self) -> Mapping[str, Pool]: ...

    @property
    def networks(self) -> Mapping[str, Network]: ...

    def placed(self) -> set[str]: ...


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
    maintenance: Bools
    index: dict[str, int] = field(default_factory=dict)
    where: dict[str, set[int]] = field(default_factory=dict)  # VM -> rows it occupies
    pools: Mapping[str, Pool] = field(default_factory=dict)
    pool_used: dict[str, Floats] = field(default_factory=dict)  # local pool -> GiB per row
    networks: Mapping[str, Network] = field(default_factory=dict)
    cpu_ids: list[str] = field(default_factory=list)  # each row's CPU fingerprint
    _masks: dict[tuple[str, str], Bools] = field(default_factory=dict)  # cached per table
    _capacities: dict[str, Floats] = field(default_factory=dict)

    def has(self, kind: str, name: str) -> Bools:
        """Rows that see pool `name` (kind "pool") or have network `name`'s bridge
        ("network"), computed once per table."""
        mask = self._masks.get((kind, name))
        if mask is None:
            record = (self.pools if kind == "pool" else self.networks).get(name)
            holders: Container[str] = (record.seen if isinstance(record, Pool)
                                       else record.hosts if record else ())
            mask = np.array([h in holders for h in self.names], dtype=bool)
            self._masks[(kind, name)] = mask
        return mask

    def pool_capacity(self, name: str) -> Floats:
        """GiB of pool `name` each row reports (0 where it does not see it), once."""
        capacity = self._capacities.get(name)
        if capacity is None:
            pool = self.pools.get(name)
            seen = pool.seen if pool else {}
            capacity = np.array([seen[h][0] if h in seen else 0.0 for h in self.names])
            self._capacities[name] = capacity
        return capacity

    @classmethod
    def of(cls, state: HasPlacement, vms: Iterable[Vm] | None = None,
           metrics: Mapping[str, HostMetrics] | None = None) -> HostTable:
        """The table of a cluster state (its hosts, VMs, pools and networks); `vms`
        replaces its VMs. Without local pools only VMs placed on (or moving to) a host
        count: those of the state's index (a leader's placement pass among 10,000 mostly
        stopped VMs: 20 -> 1 ms; the sums are of whole numbers, exact in any order)."""
        if vms is None:
            vms = state.vms.values()
            if all(p.shared for p in state.pools.values()):
                vms = [state.vms[n] for n in sorted(state.placed())]
        return cls.build(state.hosts.values(), vms, metrics, state.pools, state.networks)

    @staticmethod
    def occupying(vms: Iterable[Vm]) -> list[Vm]:
        """The VMs that count in a table (build): on or moving to a host and meant to run,
        or with disks (a local pool's volumes occupy their host). Tables built again and
        again over a cluster's 10,000 mostly stopped VMs need only these."""
        return [vm for vm in vms if vm.disks or (
            vm.wants_to_run and (vm.host is not None or vm.migrating_to is not None))]

    @classmethod
    def build(cls, hosts: Iterable[Host], vms: Iterable[Vm],
              metrics: Mapping[str, HostMetrics] | None = None,
              pools: Mapping[str, Pool] | None = None,
              networks: Mapping[str, Network] | None = None) -> HostTable:
        """A migrating VM occupies its source and its target until the move completes.
        A VM's volumes on a local pool occupy its host's pool whether it runs or not."""
        pools = pools or {}
        ordered = sorted(hosts, key=lambda h: h.name)
        names = [h.name for h in ordered]
        index = {n: i for i, n in enumerate(names)}
        n = len(names)
        used = np.zeros((3, n))
        where: dict[str, set[int]] = {}
        local = {name: np.zeros(n) for name, p in pools.items() if not p.shared}
        for vm in vms:
            if vm.disks and local:
                home = index.get(vm.host or vm.last_host or "")
                for pool, gib in storage.needs(vm).items():
                    if pool in local and home is not None:
                        local[pool][home] += gib
            if not vm.wants_to_run:
                continue
            for h in (vm.host, vm.migrating_to):
                i = index.get(h) if h is not None else None
                if i is not None:
                    used[0, i] += vm.vcpus
                    used[1, i] += vm.memory_mib
                    used[2, i] += vm.disk_gib
                    where.setdefault(vm.name, set()).add(i)
        live = metrics or {}
        return cls(
            names=names,
            maintenance=np.array([h.maintenance for h in ordered], dtype=bool),
            where=where,
            up=np.array([h.status is HostStatus.UP for h in ordered], dtype=bool),
            cpus=np.array([h.cpus for h in ordered], dtype=float),
            memory_mib=np.array([h.memory_mib for h in ordered], dtype=float),
            disk_gib=np.array([h.disk_gib for h in ordered], dtype=float),
            used_vcpus=used[0], used_memory_mib=used[1], used_disk_gib=used[2],
            cpu_load=np.array([live[h].cpu_load if h in live else 0.0 for h in names]),
            index=index, pools=pools, pool_used=local, networks=networks or {},
            cpu_ids=[h.cpu_id for h in ordered],
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
        if vm.disks and vm.host is None and vm.last_host is None:
            # a first placement: its new volumes take room on that host's local pools
            for pool, gib in storage.needs(vm).items():
                if pool in self.pool_used:
                    self.pool_used[pool][i] += sign * gib
        rows = self.where.setdefault(vm.name, set())
        if sign > 0:
            rows.add(i)
        else:
            rows.discard(i)

    def rows_of(self, vms: Iterable[str], but: str) -> set[int]:
        """Rows where the given VMs (other than `but`) run or are going."""
        out: set[int] = set()
        for name in vms:
            if name != but:
                out |= self.where.get(name, set())
        return out


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


class StorageFilter(Filter):
    """A host must see every pool the VM has disks in; a VM with disks on a local pool
    stays on its home host (where its volumes are), and a first placement needs room on
    the host's local pool (core/storage.py)."""

    name = "storage"

    def _verdicts(self, vm: Vm, t: HostTable, policy: Policy) -> list[tuple[Bools, str]]:
        out = []
        n = len(t.names)
        home = t.index.get(vm.host or vm.last_host or "")
        for name, need in sorted(storage.needs(vm).items()):
            pool = t.pools.get(name)
            out.append((t.has("pool", name), f"does not see storage pool {name}"))
            if pool is None or pool.shared:
                continue
            if home is not None:
                at_home = np.zeros(n, dtype=bool)
                at_home[home] = True
                out.append((at_home, f"the VM's volumes are on local pool {name} of "
                                     f"{t.names[home]}"))
                continue
            room = t.pool_capacity(name) * policy.disk_ratio - t.pool_used.get(name,
                                                                          np.zeros(n))
            out.append((room >= need, f"local pool {name} has too little room for "
                                      f"{need} GiB"))
        return out

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        ok = np.ones(len(t.names), dtype=bool)
        if vm.disks:
            for passed, _why in self._verdicts(vm, t, policy):
                ok &= passed
        return ok

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        return "; ".join(why for passed, why in self._verdicts(vm, t, policy) if not passed[i])


class PinnedFilter(Filter):
    """An imported VM whose disks or NICs only its host has stays there."""

    name = "pinned"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        ok = np.ones(len(t.names), dtype=bool)
        if vm.pinned:
            ok[:] = False
            if vm.pinned in t.index:
                ok[t.index[vm.pinned]] = True
        return ok

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        return f"imported with disks or NICs only {vm.pinned} has"


class CpuFilter(Filter):
    """A host-passthrough VM only moves between hosts with identical CPUs."""

    name = "cpu"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        if not vm.cpu_pin:
            return np.ones(len(t.names), dtype=bool)
        return np.array([c == vm.cpu_pin for c in t.cpu_ids], dtype=bool)

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        return cpus.pin_error(vm.cpu_pin, t.cpu_ids[i])


class NetworkFilter(Filter):
    """A host must have the bridge of every network the VM has a NIC on."""

    name = "network"

    def _missing(self, vm: Vm, t: HostTable) -> list[tuple[Bools, str]]:
        out = []
        for name in sorted({nic["network"] for nic in vm.nics}):
            net = t.networks.get(name)
            bridge = f" (bridge {net.bridge})" if net else ""
            out.append((t.has("network", name), f"lacks network {name}{bridge}"))
        return out

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        ok = np.ones(len(t.names), dtype=bool)
        if vm.nics:
            for passed, _why in self._missing(vm, t):
                ok &= passed
        return ok

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        return "; ".join(why for passed, why in self._missing(vm, t) if not passed[i])


class MaintenanceFilter(Filter):
    name = "maintenance"

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        return ~t.maintenance

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        return "host is in maintenance"


class RuleFilter(Filter):
    """The "must" rules: VM-host, affinity (with the group's hosts) and anti-affinity."""

    name = "rule"

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = [r for r in rules if r.strength is Strength.MUST]

    def _verdicts(self, vm: Vm, t: HostTable) -> list[tuple[Rule, Bools]]:
        out = []
        n = len(t.names)
        for r in self.rules:
            if vm.name not in r.vms:
                continue
            ok = np.zeros(n, dtype=bool)
            if r.kind is RuleKind.HOST:
                for h in r.hosts:
                    if h in t.index:
                        ok[t.index[h]] = True
            else:
                rows = list(t.rows_of(r.vms, but=vm.name))
                if r.kind is RuleKind.AFFINITY:
                    ok[:] = not rows  # nobody placed yet: anywhere
                    ok[rows] = True
                else:
                    ok[:] = True
                    ok[rows] = False
            out.append((r, ok))
        return out

    def mask(self, vm: Vm, t: HostTable, policy: Policy) -> Bools:
        ok = np.ones(len(t.names), dtype=bool)
        for _rule, passed in self._verdicts(vm, t):
            ok &= passed
        return ok

    def reason(self, vm: Vm, t: HostTable, i: int, policy: Policy) -> str:
        broken = [r.name for r, passed in self._verdicts(vm, t) if not passed[i]]
        return f"would break must rule {', '.join(broken)}"


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
    """Values on an absolute 0..1 scale, higher is better; the policy field named by
    `weight` is the multiplier."""

    name = "weigher"
    weight = ""

    def multiplier(self, policy: Policy) -> float:
        return float(getattr(policy, self.weight))

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        raise NotImplementedError


def _share(part: Floats, whole: Floats) -> Floats:
    result: Floats = np.clip(part / np.maximum(whole, 1.0), 0.0, 1.0)
    return result


class FreeMemoryWeigher(Weigher):
    """Spread: prefer the host left with the largest share of its memory free (pack: the
    smallest, to empty other hosts)."""

    name = "free_memory"
    weight = "weight_memory"

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        free = _share(t.free_memory(policy) - vm.memory_mib, t.memory_mib)
        if policy.pack:
            packed: Floats = 1.0 - free
            return packed
        return free


class CpuLoadWeigher(Weigher):
    """Prefer hosts whose CPUs are less busy (live and smoothed, from heartbeats)."""

    name = "cpu_load"
    weight = "weight_cpu"

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        result: Floats = 1.0 - np.clip(t.cpu_load, 0.0, 1.0)
        return result


class FreeDiskWeigher(Weigher):
    name = "free_disk"
    weight = "weight_disk"

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        return _share(t.free_disk(policy) - vm.disk_gib, t.disk_gib)


class StickyWeigher(Weigher):
    """Prefer the host the VM last ran on (its definition and caches are there)."""

    name = "last_host"
    weight = "weight_last_host"

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        values = np.zeros(len(t.names))
        i = t.index.get(vm.last_host) if vm.last_host else None
        if i is not None:
            values[i] = 1.0
        return values


class ShouldRulesWeigher(Weigher):
    """The share of this VM's "should" rules a host would keep."""

    name = "should_rules"
    weight = "weight_rules"

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = [r for r in rules if r.strength is Strength.SHOULD]

    def values(self, vm: Vm, t: HostTable, policy: Policy) -> Floats:
        mine = [r for r in self.rules if vm.name in r.vms]
        kept = np.zeros(len(t.names))
        for r in mine:
            ok = np.zeros(len(t.names), dtype=bool)
            if r.kind is RuleKind.HOST:
                ok[[t.index[h] for h in r.hosts if h in t.index]] = True
            else:
                rows = list(t.rows_of(r.vms, but=vm.name))
                ok[:] = r.kind is RuleKind.ANTI_AFFINITY or not rows
                ok[rows] = r.kind is RuleKind.AFFINITY
            kept += ok
        result: Floats = kept / len(mine) if mine else kept
        return result


def filters(rules: Sequence[Rule] = ()) -> tuple[Filter, ...]:
    return (HostUpFilter(), MaintenanceFilter(), RuleFilter(rules), AvoidHostsFilter(),
            MemoryFilter(), VcpuFilter(), DiskFilter(), StorageFilter(), NetworkFilter(),
            PinnedFilter(), CpuFilter())


def weighers(rules: Sequence[Rule] = ()) -> tuple[Weigher, ...]:
    return (FreeMemoryWeigher(), CpuLoadWeigher(), FreeDiskWeigher(), StickyWeigher(),
            ShouldRulesWeigher(rules))


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
    rules: Sequence[Rule] = ()
    filters: Sequence[Filter] = ()
    weighers: Sequence[Weigher] = ()

    def __post_init__(self) -> None:
        self.filters = self.filters or filters(self.rules)
        self.weighers = self.weighers or weighers(self.rules)

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
            score += w.multiplier(self.policy) * w.values(vm, t, self.policy)[candidates]
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
