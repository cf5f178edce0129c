"""Load balancing, like DRS: move VMs from busy hosts to idle ones when it pays.

A host's load is the share of its memory given out (weight_memory) plus its measured CPU
load (weight_cpu); the cluster's imbalance is the standard deviation of the loads of the hosts
that can take VMs. Hysteresis: a pass starts only when the imbalance exceeds
`balance_threshold` and stops once it is below half of it. It picks, one at a time, the move
that lowers the imbalance the most, computed on the state *after* the moves already chosen,
between hosts whose loads differ by more than `balance_threshold` (a move between nearly
equal hosts buys nothing worth a migration), within the migration caps. A VM is moved at most
once per `migration_cooldown`, and never back to a host it left within that time. Every
target must pass the placement filters (capacity, maintenance, must rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .model import HostStatus, Vm
from .placement import HostMetrics, HostTable, Placer
from .state import ClusterState

CANDIDATE_HOSTS = 3  # sources among the busiest, targets among the idlest


@dataclass(frozen=True)
class Move:
    vm: str
    source: str
    target: str
    gain: float  # how much the imbalance drops
    imbalance_after: float


@dataclass(frozen=True)
class BalancePlan:
    imbalance: float  # before
    moves: list[Move]

    @property
    def imbalance_after(self) -> float:
        return self.moves[-1].imbalance_after if self.moves else self.imbalance


def plan_balance(state: ClusterState, metrics: Mapping[str, HostMetrics], now: float,
                 max_moves: int = 8) -> BalancePlan:
    p = state.policy
    table = HostTable.of(state, metrics=metrics)
    usable = table.up & ~table.maintenance
    rows = np.flatnonzero(usable)
    if rows.size < 2:
        return BalancePlan(0.0, [])
    cap = np.maximum(table.memory_mib * p.memory_ratio, 1.0)
    cpu = table.cpu_load.copy()  # predicted as moves are chosen

    def loads() -> np.ndarray:
        result: np.ndarray = p.weight_memory * table.used_memory_mib / cap + p.weight_cpu * cpu
        return result

    def cpu_part(vm: Vm, s: int) -> float:
        """The VM's part of its host's CPU load, by its share of the host's vCPUs."""
        return float(cpu[s] * vm.vcpus / max(table.used_vcpus[s], 1.0))

    before = float(np.std(loads()[rows]))
    if before <= p.balance_threshold:
        return BalancePlan(before, [])
    placer = Placer(p, list(state.rules.values()))
    busy: dict[str, int] = {}
    for vm in state.vms.values():
        for h in (vm.host, vm.migrating_to) if vm.migrating_to else ():
            busy[h or ""] = busy.get(h or "", 0) + 1
    movable = [vm for vm in state.vms.values() if _movable(vm, state, now)]
    moves: list[Move] = []
    current = before
    gave: set[int] = set()  # within a pass a host only gives or only takes: no swaps
    took: set[int] = set()
    while len(moves) < max_moves:
        load = loads()
        order = rows[np.argsort(load[rows])]
        sources = [r for r in order[::-1] if r not in took][:CANDIDATE_HOSTS]
        targets = [r for r in order if r not in gave][:CANDIDATE_HOSTS]
        best: tuple[float, Vm, int, int] | None = None
        for vm in movable:
            s = table.index.get(vm.host or "")
            if s is None or s not in sources or busy.get(vm.host or "", 0) >= \
                    p.max_migrations_per_host:
                continue
            for t in targets:
                target = table.names[t]
                if t == s or load[s] - load[t] <= p.balance_threshold or \
                        busy.get(target, 0) >= p.max_migrations_per_host or \
                        now - vm.left.get(target, -np.inf) < p.migration_cooldown:
                    continue
                trial = load.copy()
                dm = p.weight_memory * vm.memory_mib
                dc = p.weight_cpu * cpu_part(vm, s)
                trial[s] -= dm / cap[s] + dc
                trial[t] += dm / cap[t] + dc * table.cpus[s] / max(table.cpus[t], 1.0)
                after = float(np.std(trial[rows]))
                if best is None or after < best[0]:
                    best = (after, vm, s, t)
        if best is None or best[0] >= current or current < p.balance_threshold / 2:
            break
        after, vm, s, t = best
        if not _fits(placer, vm, table, s, t):
            movable.remove(vm)
            continue
        part = cpu_part(vm, s)
        cpu[s] -= part
        cpu[t] += part * table.cpus[s] / max(table.cpus[t], 1.0)
        table.add(vm, s, -1)
        table.add(vm, t)
        gave.add(s)
        took.add(t)
        moves.append(Move(vm.name, table.names[s], table.names[t], current - after, after))
        busy[table.names[s]] = busy.get(table.names[s], 0) + 1
        busy[table.names[t]] = busy.get(table.names[t], 0) + 1
        movable.remove(vm)
        current = after
    return BalancePlan(before, moves)


def _movable(vm: Vm, state: ClusterState, now: float) -> bool:
    host = state.hosts.get(vm.host) if vm.host else None
    recent = any(now - t < state.policy.migration_cooldown for t in vm.left.values())
    return (vm.wants_to_run and host is not None and host.status is HostStatus.UP
            and vm.migrating_to is None and vm.migration_requested is None and not recent)


def _fits(placer: Placer, vm: Vm, table: HostTable, source: int, target: int) -> bool:
    """The target passes every placement filter for this VM (judged off its source)."""
    table.add(vm, source, -1)
    moving = Vm(**{**vm.to_dict(), "host": None})
    ok = np.ones(len(table.names), dtype=bool)
    for f in placer.filters:
        ok &= f.mask(moving, table, placer.policy)
    table.add(vm, source)
    return bool(ok[target])
