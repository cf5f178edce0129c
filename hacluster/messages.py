"""Cluster state as API messages: one place that turns records into protobuf, for every front
end (gRPC now, the web console's JSON through the client's dicts). No decisions here."""

from __future__ import annotations

import time

from .core import cpus, networks, storage
from .core.model import (
    POLICY_LIMITS,
    Alarm,
    Host,
    Incident,
    Network,
    Policy,
    Pool,
    Rule,
    Vm,
    vm_status,
)
from .core.placement import HostTable
from .core.state import ClusterState
from .history import Window
from .live import LiveState
from .v1 import cluster_pb2 as pb


def vm_message(vm: Vm, state: ClusterState) -> pb.Vm:
    host = state.hosts.get(vm.host) if vm.host else None
    msg = pb.Vm(name=vm.name, uuid=vm.uuid, state=vm.state.value, status=vm_status(vm, host),
                vcpus=vm.vcpus, memory_mib=vm.memory_mib, disk_gib=vm.disk_gib, ha=vm.ha,
                priority=vm.priority, pending_reasons=vm.pending_reasons, version=vm.version,
                observed=vm.observed.value, restarts=vm.restarts,
                relocations=vm.relocations, error=vm.error,
                migration_error=vm.migration_error, failures=vm.failures,
                disks=[pb.Disk(pool=d["pool"], volume=d["volume"], size_gib=d["size_gib"],
                               image=d["image"]) for d in vm.disks],
                nics=[pb.Nic(network=n["network"], mac=n["mac"]) for n in vm.nics],
                imported=bool(vm.xml), pinned=vm.pinned, restart_needed=vm.restart_needed,
                cpu=vm.cpu)
    if vm.migrating_to is not None:
        msg.migrating_to = vm.migrating_to
    if vm.host is not None:
        msg.host = vm.host
    if vm.last_host is not None:
        msg.last_host = vm.last_host
    return msg


class VmMessages:
    """Each VM's message, made again only when its record or its host's has changed. A
    `vm list` of 10,000 VMs made all of them on every call: 158 ms of the member's CPU, the
    GIL held against its Raft thread and the heartbeats it answers, for each operator who
    keeps the list on screen. Records are copy-on-write (model.Record.clone): a changed VM or
    host is a new object, so `is` tells what has not changed. Callers only read the
    messages (a response takes copies)."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[Vm, Host | None, pb.Vm]] = {}

    def one(self, vm: Vm, state: ClusterState) -> pb.Vm:
        host = state.hosts.get(vm.host) if vm.host else None
        made = self._made.get(vm.name)
        if made is not None and made[0] is vm and made[1] is host:
            return made[2]
        msg = vm_message(vm, state)
        self._made[vm.name] = (vm, host, msg)
        return msg

    def all(self, state: ClusterState) -> list[pb.Vm]:
        """Every VM's, by name; those of deleted VMs are forgotten."""
        out = [self.one(vm, state) for vm in sorted(state.vms.values(), key=lambda v: v.name)]
        if len(self._made) > len(out):
            self._made = {name: made for name, made in self._made.items() if name in state.vms}
        return out


def vms_by_host(state: ClusterState) -> dict[str, list[str]]:
    """Each host's VMs, sorted, in one pass over the VMs (not one per host)."""
    out: dict[str, list[str]] = {}
    for vm in state.vms.values():
        if vm.host is not None:
            out.setdefault(vm.host, []).append(vm.name)
    for names in out.values():
        names.sort()
    return out


def host_message(host: Host, state: ClusterState, table: HostTable,
                 live: dict[str, pb.HostLive],
                 on_hosts: dict[str, list[str]] | None = None) -> pb.Host:
    i = table.index[host.name]
    p = state.policy
    beat = live.get(host.name)
    vms = (on_hosts.get(host.name, []) if on_hosts is not None
           else sorted(vm.name for vm in state.vms.values() if vm.host == host.name))
    return pb.Host(
        name=host.name, status=host.status.value, vms=vms,
        cpus=host.cpus, memory_mib=host.memory_mib,
        memory_free_mib=int(table.free_memory(p)[i]),
        cpu_load=beat.cpu_load if beat else -1.0,
        disk_gib=host.disk_gib, disk_free_gib=int(table.free_disk(p)[i]),
        memory_allocated_mib=int(table.used_memory_mib[i]),
        vcpus_allocated=int(table.used_vcpus[i]),
        api_addr=host.api_addr, raft_addr=host.raft_addr,
        last_heard_ago=beat.last_heard_ago if beat else -1.0,
        version=host.version,
        memory_available_mib=beat.memory_available_mib if beat else -1.0,
        lease=host.lease, watchdog=host.watchdog, maintenance=host.maintenance,
        fenced_by=host.fenced_by, watchdog_error=host.watchdog_error,
        heartbeat_rtt_ms=beat.heartbeat_rtt_ms if beat else -1.0,
        cpu_model=cpus.model_of(host.cpu),
    )


def pool_message(pool: Pool, state: ClusterState) -> pb.Pool:
    return pb.Pool(**storage.pool_dict(pool, state.vms.values()))


def network_message(net: Network, state: ClusterState) -> pb.Network:
    return pb.Network(**networks.network_dict(net, state.vms))


def rule_message(r: Rule) -> pb.Rule:
    return pb.Rule(name=r.name, kind=r.kind.value, strength=r.strength.value, vms=r.vms,
                   hosts=r.hosts)


def incident_message(i: Incident) -> pb.Incident:
    return pb.Incident(
        id=i.id, host=i.host, last_heard=i.last_heard, declared_at=i.declared_at,
        fenced_at=i.fenced_at, fenced_by=i.fenced_by, returned_at=i.returned_at, open=i.open,
        vms=[pb.IncidentVm(name=n, host=str(v.get("host") or ""),
                           placed_at=float(v.get("placed_at") or 0.0),  # type: ignore[arg-type]
                           running_at=float(v.get("running_at") or 0.0))  # type: ignore[arg-type]
             for n, v in sorted(i.vms.items())])


def policy_message(policy: Policy) -> pb.Policy:
    data = policy.to_dict()
    return pb.Policy(settings={k: float(data[k]) for k in POLICY_LIMITS},
                     version=policy.version)


def live_messages(live: LiveState, state: ClusterState, grant_window: float,
                  margin: float) -> dict[str, pb.HostLive]:
    """The leader's soft state per host: live figures, and how long the host's last lease
    (as far as this leader can know: a host it never granted one may still hold its
    predecessor's) may still run."""
    now = time.monotonic()
    beats, granted, _ = live.snapshot()
    out = {}
    for name, host in state.hosts.items():
        last = max(granted.get(name, float("-inf")), live.since + grant_window)
        lease_left = max(0.0, last + host.lease + margin - now)
        b = beats.get(name)
        out[name] = pb.HostLive(
            host=name, lease_left=lease_left,
            cpu_load=b.metrics.cpu_load if b else -1.0,
            memory_available_mib=b.metrics.memory_available_mib if b else -1.0,
            disk_free_gib=b.metrics.disk_free_gib if b else -1.0,
            heartbeat_rtt_ms=b.metrics.heartbeat_rtt_ms if b else -1.0,
            last_heard_ago=now - b.at if b else -1.0, code_version=b.code_version if b else 0)
    return out


def history_message(window: Window | None) -> pb.HistoryReply:
    if window is None:
        return pb.HistoryReply(found=False)
    return pb.HistoryReply(found=True, step=window.step, t=window.t.tolist(), series=[
        pb.HistorySeries(name=name, values=values.tolist())
        for name, values in window.series.items()])


def alarm_message(a: Alarm) -> pb.Alarm:
    return pb.Alarm(key=a.key, kind=a.kind, severity=a.severity.value, subject=a.subject,
                    message=a.message, raised_at=a.raised_at, cleared_at=a.cleared_at,
                    acked_by=a.acked_by, acked_at=a.acked_at)
