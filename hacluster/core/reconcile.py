"""What the leader should commit next, given the state and what it has heard from the agents.

A pure function of its inputs: the leader loop gathers the soft state (heartbeat times on its
monotonic clock, live metrics, observed VM states), calls `plan`, and proposes the commands.
Each command carries the version it expects, so a plan made on stale state loses the race.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from . import commands as c
from .model import HostStatus, Observed
from .placement import HostMetrics, HostTable, Placer
from .state import ClusterState


@dataclass
class LeaderView:
    """The leader's soft state, all times on its own monotonic clock."""

    now: float
    leader_since: float  # hosts never heard from get a full grace period from here
    last_heard: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, HostMetrics] = field(default_factory=dict)
    observed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host -> vm -> state


@dataclass
class Plan:
    commands: list[c.Command]
    verdict: str


def plan(state: ClusterState, view: LeaderView, term: int, ids: Iterator[str],
         ts: float) -> Plan:
    cmds: list[c.Command] = []
    notes: list[str] = []
    policy = state.policy

    # 1. Host liveness transitions.
    for host in sorted(state.hosts.values(), key=lambda h: h.name):
        heard = view.last_heard.get(host.name)
        silent_for = view.now - (heard if heard is not None else view.leader_since)
        if host.status is HostStatus.UP and silent_for > policy.host_down_after:
            cmds.append(c.SetHostStatus(id=next(ids), ts=ts, term=term, name=host.name,
                                        status=HostStatus.DOWN.value,
                                        expect_version=host.version))
            notes.append(f"{host.name} down (silent {silent_for:.1f}s)")
        elif (host.status is HostStatus.DOWN and heard is not None
              and silent_for <= policy.host_down_after):
            cmds.append(c.SetHostStatus(id=next(ids), ts=ts, term=term, name=host.name,
                                        status=HostStatus.UP.value, expect_version=host.version))
            notes.append(f"{host.name} up")

    # 2. Observed VM states, one batch per host, only what changed.
    for host_name, reported in sorted(view.observed.items()):
        changes = {}
        for vm_name, seen in reported.items():
            vm = state.vms.get(vm_name)
            if vm is not None and vm.host == host_name and vm.observed is not Observed(seen):
                changes[vm_name] = seen
        if changes:
            cmds.append(c.ObserveVms(id=next(ids), ts=ts, term=term, host=host_name,
                                     observed=changes))
            notes.append(f"{len(changes)} observed on {host_name}")

    # 3. Placement of VMs that want to run and have no host.
    waiting = [vm for vm in state.vms.values() if vm.wants_to_run and vm.host is None]
    if waiting:
        table = HostTable.build(state.hosts.values(), state.vms.values(), view.metrics)
        placed = pending = 0
        for d in Placer(policy).place_all(waiting, table):
            vm = state.vms[d.vm]
            if d.host is not None:
                cmds.append(c.AssignVm(id=next(ids), ts=ts, term=term, name=vm.name,
                                       host=d.host, expect_version=vm.version))
                placed += 1
            elif d.reasons != vm.pending_reasons:
                cmds.append(c.MarkPending(id=next(ids), ts=ts, term=term, name=vm.name,
                                          reasons=d.reasons, expect_version=vm.version))
                pending += 1
            else:
                pending += 1
        notes.append(f"placed {placed}" + (f", {pending} pending" if pending else ""))

    return Plan(cmds, "; ".join(notes) if notes else "steady")


def concerns_leader(cmd: c.Command) -> bool:
    """Whether an applied command may give the leader work now (something to place)."""
    return isinstance(cmd, c.CreateVm | c.SetVmState | c.DeleteVm | c.RegisterHost)
