"""Which VMs are where: the few a host's agent or a leader phase looks at, without a scan.

Each agent asks for its host's VMs at every cycle and heartbeat, and the leader for the VMs
waiting for a host, failed or moving at every pass: at 10,000 VMs those scans were most of an
idle member's CPU. The index is built once, by the first reader of a published state, and
from then on carried from each state to the next (ClusterState.apply updates it for the VMs
the command touched), so a create costs a few small sets, not a scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .model import Observed, Vm

Index = dict[str, frozenset[str]]  # key -> names of the VMs it lists

UNPLACED = "unplaced"  # wants to run, has no host
FAILED = "failed"  # last seen stopped or crashed
MOVING = "moving"  # a live migration is under way
ASKED = "asked"  # a move was asked for and has not started


def on(host: str) -> str:
    """The key of the VMs placed on or migrating to `host`."""
    return f"on:{host}"


def keys_of(vm: Vm | None) -> frozenset[str]:
    """Every list `vm` belongs in (none for a VM that does not exist)."""
    if vm is None:
        return frozenset()
    keys = {on(h) for h in (vm.host, vm.migrating_to) if h is not None}
    if vm.host is None and vm.wants_to_run:
        keys.add(UNPLACED)
    if vm.observed in (Observed.STOPPED, Observed.CRASHED):
        keys.add(FAILED)
    if vm.migrating_to is not None:
        keys.add(MOVING)
    elif vm.migration_requested is not None:
        keys.add(ASKED)
    return frozenset(keys)


def build(vms: Iterable[Vm]) -> Index:
    lists: dict[str, set[str]] = {}
    for vm in vms:
        for key in keys_of(vm):
            lists.setdefault(key, set()).add(vm.name)
    return {key: frozenset(names) for key, names in lists.items()}


def updated(index: Index, before: Mapping[str, frozenset[str]], vms: Mapping[str, Vm]
            ) -> Index:
    """A new index (the old one may be shared with published states): `before` holds each
    changed VM's keys before the change, `vms` the VMs after it."""
    new = dict(index)
    for name, was in before.items():
        now = keys_of(vms.get(name))
        for key in was - now:
            left = new[key] - {name}
            if left:
                new[key] = left
            else:
                del new[key]
        for key in now - was:
            new[key] = new.get(key, frozenset()) | {name}
    return new
