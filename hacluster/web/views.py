"""What the console's pages ask of the replica beyond hactl's calls: a VM list searched,
filtered, sorted and paged on the server (a page of 10,000 VMs is never sent whole), the
dashboard's summary, and the operations in progress. Plain functions of one state snapshot."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..core.model import HostStatus, Vm, vm_status
from ..core.placement import HostTable
from ..core.state import ClusterState
from ..errors import fail

VM_SORTS = ("name", "status", "host", "vcpus", "memory_mib", "disk_gib", "priority")
MAX_PAGE = 500


@dataclass(frozen=True)
class VmQuery:
    q: str = ""  # part of the name or uuid
    status: str = ""
    host: str = ""
    sort: str = "name"
    desc: bool = False
    offset: int = 0
    limit: int = 50

    @classmethod
    def parse(cls, args: dict[str, str]) -> VmQuery:
        """From query-string arguments; invalid (400) for anything it does not know."""
        unknown = set(args) - {"q", "status", "host", "sort", "order", "offset", "limit"}
        if unknown:
            fail("invalid", f"unknown parameters: {', '.join(sorted(unknown))}")
        sort = args.get("sort", "name")
        if sort not in VM_SORTS:
            fail("invalid", f"sort must be one of {', '.join(VM_SORTS)}")
        order = args.get("order", "asc")
        if order not in ("asc", "desc"):
            fail("invalid", "order must be asc or desc")
        offset = int_arg(args, "offset", 0, 0, 10**7)
        limit = int_arg(args, "limit", 50, 1, MAX_PAGE)
        q = args.get("q", "")
        if len(q) > 200:
            fail("invalid", "q is at most 200 characters")
        return cls(q=q.lower(), status=args.get("status", ""), host=args.get("host", ""),
                   sort=sort, desc=order == "desc", offset=offset, limit=limit)


def int_arg(args: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = args.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        fail("invalid", f"{key} must be an integer, got {raw[:20]!r}")
    if not low <= value <= high:
        fail("invalid", f"{key} must be between {low} and {high}")
    return value


def query_vms(state: ClusterState, query: VmQuery) -> tuple[int, list[Vm], dict[str, int]]:
    """(how many match, the page asked for, how many match per status before the status
    filter: the list's filter buttons show these)."""
    statuses = {v.name: vm_status(v, state.hosts.get(v.host or "")) for v in state.vms.values()}
    found = [v for v in state.vms.values()
             if (not query.q or query.q in v.name.lower() or query.q in v.uuid)
             and (not query.host or (v.host or "") == query.host)]
    counts = Counter(statuses[v.name] for v in found)
    if query.status:
        found = [v for v in found if statuses[v.name] == query.status]

    def key(v: Vm) -> tuple[Any, str]:
        value = statuses[v.name] if query.sort == "status" else getattr(v, query.sort)
        return (value if value is not None else "", v.name)

    found.sort(key=key, reverse=query.desc)
    return len(found), found[query.offset:query.offset + query.limit], dict(counts)


def summary(state: ClusterState, table: HostTable | None = None) -> dict[str, Any]:
    """The dashboard's figures: hosts and VMs by status, what is allocated against what the
    up hosts offer (after the policy's ratios and reserve), open incidents."""
    if table is None:
        table = HostTable.of(state)
    p = state.policy
    up = table.up
    hosts = Counter("maintenance" if h.maintenance and h.status is HostStatus.UP
                    else h.status.value for h in state.hosts.values())
    vms = Counter(vm_status(v, state.hosts.get(v.host or "")) for v in state.vms.values())
    return {
        "hosts": len(state.hosts), "hosts_by_status": dict(sorted(hosts.items())),
        "vms": len(state.vms), "vms_by_status": dict(sorted(vms.items())),
        "memory_mib": {"allocated": int(table.used_memory_mib.sum()),
                       "capacity": int(max(0.0, (table.memory_mib[up] * p.memory_ratio
                                                 - p.memory_reserve_mib).sum()))},
        "vcpus": {"allocated": int(table.used_vcpus.sum()),
                  "capacity": int((table.cpus[up] * p.cpu_ratio).sum())},
        "disk_gib": {"allocated": int(table.used_disk_gib.sum()),
                     "capacity": int((table.disk_gib[up] * p.disk_ratio).sum())},
        "incidents_open": sum(1 for i in state.incidents if i.open),
        "revision": state.revision,
    }


def operations(state: ClusterState) -> list[dict[str, Any]]:
    """What is under way: moves (asked for, running, refused), evacuations of hosts in
    maintenance, recoveries of lost hosts' VMs, with how far each has got."""
    ops: list[dict[str, Any]] = []
    for vm in sorted(state.vms.values(), key=lambda v: v.name):
        if vm.migrating_to:
            ops.append({"kind": "migration", "vm": vm.name, "source": vm.host,
                        "target": vm.migrating_to, "state": "running", "error": None})
        elif vm.migration_requested is not None:
            ops.append({"kind": "migration", "vm": vm.name, "source": vm.host,
                        "target": vm.migration_requested or None, "state": "queued",
                        "error": None})
        elif vm.migration_error and vm.host and vm.wants_to_run:
            ops.append({"kind": "migration", "vm": vm.name, "source": vm.host, "target": None,
                        "state": "failed", "error": vm.migration_error})
    for host in sorted(state.hosts.values(), key=lambda h: h.name):
        if host.maintenance:
            left = sorted(v.name for v in state.vms.values()
                          if v.host == host.name and v.wants_to_run)
            ops.append({"kind": "evacuation", "host": host.name, "remaining": len(left),
                        "vms": left[:50], "state": "running" if left else "done"})
    for incident in state.incidents:
        if incident.open:
            done = sum(1 for v in incident.vms.values() if v.get("running_at"))
            ops.append({"kind": "recovery", "host": incident.host, "incident": incident.id,
                        "vms_total": len(incident.vms), "vms_running": done,
                        "state": "fencing" if not incident.fenced_at else "restarting"})
    return ops
