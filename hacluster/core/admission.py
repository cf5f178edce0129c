"""Admission control, like vSphere HA's "host failures cluster tolerates": refuse an HA VM
that would leave the cluster unable to restart every HA VM after N hosts fail.

For N = 1 every host's failure is tried. For N > 1 the N hosts carrying the most HA memory
fail together (a heuristic: trying every combination grows too fast), which is the failure
that needs the most room in all but contrived clusters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .model import Host, HostStatus, Policy, Pool, Vm
from .placement import HostTable, Placer


def refusal(hosts: Iterable[Host], vms: Iterable[Vm], candidate: Vm, policy: Policy,
            failures: int, pools: Mapping[str, Pool] | None = None) -> str | None:
    """Why admitting candidate would break the guarantee, or None if it keeps it."""
    hosts = [h for h in hosts if h.status is HostStatus.UP]
    vms = [v for v in vms if v.name != candidate.name]
    placer = Placer(policy)
    table = HostTable.build(hosts, vms, pools=pools)
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
        stranded = _stranded(hosts, [*vms, placed], protected, lost, placer, pools)
        if stranded:
            return (f"if {', '.join(lost)} failed, {', '.join(sorted(stranded))} could not "
                    f"restart (admission control: {failures} host failure(s) tolerated)")
    return None


def _stranded(hosts: list[Host], vms: list[Vm], protected: list[Vm], lost: list[str],
              placer: Placer, pools: Mapping[str, Pool] | None) -> list[str]:
    """The protected VMs on the lost hosts that the survivors could not restart."""
    survivors = HostTable.build(hosts, [v for v in vms if v.host not in lost], pools=pools)
    survivors.up &= ~np.isin(np.array(survivors.names), lost)
    moving = [Vm(**{**v.to_dict(), "host": None}) for v in protected if v.host in lost]
    return [d.vm for d in placer.place_all(moving, survivors) if d.host is None]


def failures_tolerated(hosts: Iterable[Host], vms: Iterable[Vm], policy: Policy,
                       pools: Mapping[str, Pool] | None = None) -> int:
    """How many host failures the cluster can absorb now with every running HA VM restarted
    (the dashboard's figure, vSphere's "current failover capacity"): 1 if any single host can
    fail, then 2, 3... the same scenarios as admission control."""
    up = [h for h in hosts if h.status is HostStatus.UP]
    everything = list(vms)
    protected = [v for v in everything if v.recoverable and v.wants_to_run and v.host]
    ha_memory = {h.name: sum(v.memory_mib for v in protected if v.host == h.name) for h in up}
    placer = Placer(policy)
    tolerated = 0
    for failures in range(1, len(up)):
        if failures == 1:
            scenarios = [[h.name] for h in up]
        else:
            scenarios = [sorted(ha_memory, key=lambda n: (-ha_memory[n], n))[:failures]]
        if any(_stranded(up, everything, protected, lost, placer, pools)
               for lost in scenarios):
            break
        tolerated = failures
    return tolerated
