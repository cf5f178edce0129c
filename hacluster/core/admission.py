"""Admission control, like vSphere HA's "host failures cluster tolerates": refuse an HA VM
that would leave the cluster unable to restart every HA VM after N hosts fail.

For N = 1 every host's failure is tried. For N > 1 the N hosts carrying the most HA memory
fail together (a heuristic: trying every combination grows too fast), which is the failure
that needs the most room in all but contrived clusters.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .model import Host, HostStatus, Policy, Vm
from .placement import HostTable, Placer


def refusal(hosts: Iterable[Host], vms: Iterable[Vm], candidate: Vm, policy: Policy,
            failures: int) -> str | None:
    """Why admitting candidate would break the guarantee, or None if it keeps it."""
    hosts = [h for h in hosts if h.status is HostStatus.UP]
    vms = [v for v in vms if v.name != candidate.name]
    placer = Placer(policy)
    table = HostTable.build(hosts, vms)
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
        survivors = HostTable.build(hosts, [v for v in [*vms, placed] if v.host not in lost])
        survivors.up &= ~np.isin(np.array(survivors.names), lost)
        moving = [Vm(**{**v.to_dict(), "host": None}) for v in protected if v.host in lost]
        stranded = [d.vm for d in placer.place_all(moving, survivors) if d.host is None]
        if stranded:
            return (f"if {', '.join(lost)} failed, {', '.join(sorted(stranded))} could not "
                    f"restart (admission control: {failures} host failure(s) tolerated)")
    return None
