"""What a host's agent must do to its own hypervisor to match the replicated state.

A pure function from (this host's name, cluster VMs, domains libvirt reports) to actions.
Only domains that carry hacluster's metadata are ever touched: anything else on the host is
the operator's. A running VM that the cluster assigns to this host is adopted as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .commands import AssignVm, ClaimLeadership, Command, DeleteVm, SetVmState
from .model import Observed, Vm
from .state import ClusterState


@dataclass(frozen=True)
class Domain:
    """One libvirt domain as the agent sees it."""

    uuid: str
    name: str
    state: Observed
    managed: bool  # carries hacluster metadata
    memory_mib: int = 0


class Act(StrEnum):
    DEFINE_START = "define+start"  # not defined here yet
    START = "start"
    STOP = "stop"  # graceful; the agent escalates to destroy after a timeout
    DESTROY = "destroy"  # hard stop of a copy that must not run here
    UNDEFINE = "undefine"


@dataclass(frozen=True)
class Action:
    act: Act
    vm: str  # VM (domain) name
    uuid: str
    reason: str


def plan_host(host: str, vms: Mapping[str, Vm], domains: Iterable[Domain]) -> list[Action]:
    actions: list[Action] = []
    by_uuid = {d.uuid: d for d in domains}
    mine = {vm.uuid: vm for vm in vms.values() if vm.host == host}

    for uuid, vm in sorted(mine.items(), key=lambda kv: kv[1].name):
        dom = by_uuid.get(uuid)
        if vm.wants_to_run:
            if dom is None:
                actions.append(Action(Act.DEFINE_START, vm.name, uuid, "assigned here"))
            elif dom.state in (Observed.STOPPED, Observed.CRASHED):
                actions.append(Action(Act.START, vm.name, uuid, f"desired started, {dom.state}"))
        elif dom is not None and dom.state in (Observed.RUNNING, Observed.PAUSED):
            actions.append(Action(Act.STOP, vm.name, uuid, "desired stopped"))

    for dom in sorted(by_uuid.values(), key=lambda d: d.name):
        if not dom.managed or dom.uuid in mine:
            continue
        # A cluster VM that is not (or no longer) this host's: deleted, or placed elsewhere.
        why = "not assigned to this host"
        if dom.state in (Observed.RUNNING, Observed.PAUSED):
            actions.append(Action(Act.DESTROY, dom.name, dom.uuid, why))
        actions.append(Action(Act.UNDEFINE, dom.name, dom.uuid, why))
    return actions


def concerns_host(cmd: Command, state: ClusterState, host: str) -> bool:
    """Whether an applied command may give this host's agent work (so it wakes at once
    rather than at its next heartbeat)."""
    if isinstance(cmd, AssignVm):
        return cmd.host == host
    if isinstance(cmd, SetVmState):
        vm = state.vms.get(cmd.name)
        return vm is not None and host in (vm.host, vm.last_host)
    return isinstance(cmd, DeleteVm | ClaimLeadership)
