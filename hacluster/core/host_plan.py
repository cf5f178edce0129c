"""What a host's agent must do to its own hypervisor to match the replicated state.

A pure function from (this host's name, cluster VMs, domains libvirt reports) to actions.
Only domains that carry hacluster's metadata are ever touched: anything else on the host is
the operator's. A running VM that the cluster assigns to this host is adopted as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from enum import StrEnum

from .commands import (
    AssignVm,
    ClaimLeadership,
    Command,
    DeleteVm,
    FinishMigration,
    SetMigration,
    SetVmState,
    VmFailed,
)
from .lease import Lease
from .model import Observed, Vm, VmState
from .state import ClusterState, Result


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
    MIGRATE = "migrate"  # move the running VM to its target (live, or cold on the test driver)
    HANDOVER = "handover"  # nothing runs here: just drop the definition and report it moved
    ADOPT = "adopt"  # an imported domain: mark it as the cluster's (metadata), as it runs


@dataclass(frozen=True)
class Action:
    act: Act
    vm: str  # VM (domain) name
    uuid: str
    reason: str


def plan_host(host: str, vms: Mapping[str, Vm], domains: Iterable[Domain],
              lease_valid: bool = True, failed: Set[tuple[str, int]] = frozenset()
              ) -> list[Action]:
    """Cleanup first (a returning host never runs a copy the cluster placed elsewhere), then
    this host's own VMs. Without a valid lease no HA VM is started here. A start libvirt
    refused at a record version is not tried again at that version: it was reported, and
    the leader's policy decides (a restart bumps the version)."""
    actions: list[Action] = []
    by_uuid = {d.uuid: d for d in domains}
    mine = {vm.uuid: vm for vm in vms.values() if vm.host == host}
    # ignored VMs, and copies arriving here by live migration (the source still owns them)
    hands_off = {vm.uuid for vm in vms.values()
                 if vm.state is VmState.IGNORED or vm.migrating_to == host}

    for orphan in sorted(by_uuid.values(), key=lambda d: d.name):
        if not orphan.managed or orphan.uuid in mine or orphan.uuid in hands_off:
            continue
        # A cluster VM that is not (or no longer) this host's: deleted, or placed elsewhere.
        why = "not assigned to this host"
        if orphan.state in (Observed.RUNNING, Observed.PAUSED):
            actions.append(Action(Act.DESTROY, orphan.name, orphan.uuid, why))
        actions.append(Action(Act.UNDEFINE, orphan.name, orphan.uuid, why))

    for uuid, vm in sorted(mine.items(), key=lambda kv: kv[1].name):
        dom = by_uuid.get(uuid)
        if vm.state is VmState.IGNORED:
            continue
        if dom is not None and not dom.managed:
            actions.append(Action(Act.ADOPT, vm.name, uuid, "imported"))
        if vm.migrating_to is not None:
            running = dom is not None and dom.state in (Observed.RUNNING, Observed.PAUSED)
            actions.append(Action(Act.MIGRATE if running else Act.HANDOVER, vm.name, uuid,
                                  f"to {vm.migrating_to}"))
            continue
        if vm.wants_to_run:
            if (vm.ha and not lease_valid) or (uuid, vm.version) in failed:
                continue
            if dom is None:
                actions.append(Action(Act.DEFINE_START, vm.name, uuid, "assigned here"))
            elif dom.state in (Observed.STOPPED, Observed.CRASHED) and \
                    vm.observed is Observed.NONE:
                # Only a fresh assignment or the leader's restart decision (which resets
                # `observed`) starts it; a crash is reported first and judged by policy.
                actions.append(Action(Act.START, vm.name, uuid, f"start, it is {dom.state}"))
        elif dom is not None and dom.state in (Observed.RUNNING, Observed.PAUSED):
            actions.append(Action(Act.STOP, vm.name, uuid, f"desired {vm.state.value}"))
    return actions


def self_fence_plan(vms: Mapping[str, Vm], domains: Iterable[Domain]) -> list[Action]:
    """The lease ran out: hard-stop every running VM the cluster may restart elsewhere (HA
    VMs, and any of ours the replica no longer knows). Non-HA VMs never move: they stay."""
    by_uuid = {vm.uuid: vm for vm in vms.values()}
    actions = []
    for dom in sorted(domains, key=lambda d: d.name):
        vm = by_uuid.get(dom.uuid)
        keep = vm is not None and (not vm.ha or vm.state is VmState.IGNORED)
        if dom.managed and dom.state in (Observed.RUNNING, Observed.PAUSED) and not keep:
            actions.append(Action(Act.DESTROY, dom.name, dom.uuid, "lease expired: self-fence"))
    return actions


def concerns_host(cmd: Command, result: Result, state: ClusterState, host: str) -> bool:
    """Whether an applied command may give this host's agent work (so it wakes at once
    rather than at its next heartbeat)."""
    if not result.ok or result.message == "renewed":
        return False
    if isinstance(cmd, AssignVm | VmFailed):
        return cmd.host == host
    if isinstance(cmd, SetMigration | FinishMigration):
        vm = state.vms.get(cmd.name)
        return vm is not None and host in (vm.host, vm.last_host)
    if isinstance(cmd, SetVmState):
        vm = state.vms.get(cmd.name)
        return vm is not None and host in (vm.host, vm.last_host)
    return isinstance(cmd, DeleteVm | ClaimLeadership)


def decide_host(host: str, vms: Mapping[str, Vm], domains: Iterable[Domain], lease: Lease,
                now: float, replica_ready: bool,
                failed: Set[tuple[str, int]] = frozenset()) -> list[Action]:
    """One agent cycle's actions: self-fence once the lease is gone, else converge."""
    if lease.expired(now):
        return self_fence_plan(vms, domains)
    if not replica_ready:
        return []
    return plan_host(host, vms, domains, lease.valid(now), failed)


def report(host: str, vms: Mapping[str, Vm], domains: Iterable[Domain],
           failed_starts: Set[tuple[str, int]] = frozenset()
           ) -> tuple[dict[str, str], dict[str, int]]:
    """What the agent tells the leader: the observed state of every VM assigned here ('none'
    = not defined) and the record version it looked at. A VM the cluster just asked to be
    (re)started and that is still down is reported 'none' (a start is due, not a new
    failure), unless starting it was tried at this version and failed: that is reported
    'stopped', a failure like a crash, even if libvirt could not even define it."""
    by_uuid = {d.uuid: d for d in domains}
    observed, versions = {}, {}
    for vm in vms.values():
        if vm.host != host:
            continue
        dom = by_uuid.get(vm.uuid)
        seen = dom.state if dom else Observed.NONE
        if (vm.uuid, vm.version) in failed_starts and seen is not Observed.RUNNING:
            seen = Observed.STOPPED
        elif vm.observed is Observed.NONE and seen in (Observed.STOPPED, Observed.CRASHED):
            seen = Observed.NONE
        observed[vm.name] = seen.value
        versions[vm.name] = vm.version
    return observed, versions
