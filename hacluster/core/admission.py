"""Admission control, like vSphere HA's "host failures cluster tolerates": refuse an HA VM
that would leave the cluster unable to restart every HA VM after N hosts fail.

For N = 1 every host's failure is tried. For N > 1 the N hosts carrying the most HA memory
fail together (a heuristic: trying every combination grows too fast), which is the failure
that needs the most room in all but contrived clusters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .model import Host, HostStatus, Policy, Vm
from .placement import HasPlacement, HostTable, Placer


def _table(hosts: Iterable[Host], vms: Iterable[Vm], cluster: HasPlacement | None
           ) -> HostTable:
    """A table of these hosts and VMs, with the cluster's pools and networks (what VMs'
    disks and NICs need)."""
    if cluster is None:
        return HostTable.build(hosts, vms)
    return HostTable.build(hosts, vms, pools=cluster.pools, networks=cluster.networks)


def refusal(hosts: Iterable[Host], vms: Iterable[Vm], candidate: Vm, policy: Policy,
            failures: int, cluster: HasPlacement | None = None) -> str | None:
    """Why admitting candidate would break the guarantee, or None if it keeps it."""
    hosts = [h for h in hosts if h.status is HostStatus.UP]
    vms = [v for v in HostTable.occupying(vms) if v.name != candidate.name]
    placer = Placer(policy)
    table = _table(hosts, vms, cluster)
    decision = placer.decide(candidate, table)
    if decision.host is None:
        return None  # it will wait pending like any VM that fits nowhere
    placed = Vm(**{**candidate.to_dict(), "host": decision.host})
    protected = [v for v in vms if v.recoverable and v.wants_to_run and v.host] + [placed]
    ha_memory = {h.name: sum(v.memory_mib for v in protected if v.host == h.name)
                 for h in hosts}
    if failures == 1:
        scenarios = [[h.name] for h in hosts]
    else:
        scenarios = [sorted(ha_memory, key=lambda n: (-ha_memory[n], n))[:failures]]
    for lost in scenarios:
        if len(lost) >= len(hosts):
            return f"the cluster has {len(hosts)} hosts up; it cannot survive {failures} failures"
        stranded = _stranded(hosts, [*vms, placed], protected, lost, placer, cluster)
        if stranded:
            return (f"if {', '.join(lost)} failed, {', '.join(sorted(stranded))} could not "
                    f"restart (admission control: {failures} host failure(s) tolerated)")
    return None


def _stranded(hosts: list[Host], vms: list[Vm], protected: list[Vm], lost: list[str],
              placer: Placer, cluster: HasPlacement | None) -> list[str]:
    """The protected VMs on the lost hosts that the survivors could not restart."""
    survivors = _table(hosts, [v for v in vms if v.host not in lost], cluster)
    survivors.up &= ~np.isin(np.array(survivors.names), lost)
    moving = [Vm(**{**v.to_dict(), "host": None}) for v in protected if v.host in lost]
    return [d.vm for d in placer.place_all(moving, survivors) if d.host is None]


def failures_tolerated(hosts: Iterable[Host], vms: Iterable[Vm], policy: Policy,
                       cluster: HasPlacement | None = None,
                       between: Callable[[], None] = lambda: None) -> int:
    """How many host failures the cluster can absorb now with every running HA VM restarted
    (the dashboard's figure, vSphere's "current failover capacity"): 1 if any single host can
    fail, then 2, 3... the same scenarios as admission control. `between` runs after each
    scenario: the daemon pauses there, so that this CPU work (0.6 s at 48 hosts and 10,000
    VMs) does not hold the GIL against the Raft thread the whole time."""
    up = [h for h in hosts if h.status is HostStatus.UP]
    everything = HostTable.occupying(vms)  # one table per scenario tried: only what counts
    protected = [v for v in everything if v.recoverable and v.wants_to_run and v.host]
    ha_memory = {h.name: sum(v.memory_mib for v in protected if v.host == h.name) for h in up}
    placer = Placer(policy)
    tolerated = 0
    for failures in range(1, len(up)):
        if failures == 1:
            scenarios = [[h.name] for h in up]
        else:
            scenarios = [sorted(ha_memory, key=lambda n: (-ha_memory[n], n))[:failures]]
        for lost in scenarios:
            stranded = _stranded(up, everything, protected, lost, placer, cluster)
            between()
            if stranded:
                return tolerated
        tolerated = failures
    return tolerated
