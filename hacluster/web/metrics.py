"""Prometheus metrics (`GET /metrics` on every member's web port, with a viewer token).

Named after etcd's and pve-exporter's conventions: one `hacluster_` prefix, base units,
`_total` counters, `_info` metadata, state sets as one-hot gauges. Built at scrape time from
the member's replica (the cluster's view, the same from any member: counters come from the
replicated state, so they survive restarts and agree between members), its Raft status and
the leader's live figures. Member-local series carry no host label and say so in their help.

A VM's state is one series per VM for its current status only (value 1), not one per possible
state: 10,000 VMs x 11 states would be 110,000 series; `count by (state)` still works, and
`hacluster_vms{status}` has the totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..core.model import HostStatus, vm_status
from ..core.placement import HostTable
from ..core.state import FAILOVER_BUCKETS, ClusterState
from ..raftproc import RaftMember
from ..v1 import cluster_pb2 as pb

MIB = 1024 * 1024
GIB = 1024 * MIB


class ClusterCollector(Collector):
    def __init__(self, raft: RaftMember, live: Callable[[], dict[str, pb.HostLive]],
                 local: Callable[[], dict[str, float]]) -> None:
        self.raft = raft
        self.live = live
        self.local = local  # this member's own counts: leader changes seen, streams...

    def collect(self) -> Iterator[Metric]:
        yield from self._raft()
        state = self.raft.state
        yield from self._hosts(state)
        yield from self._vms(state)
        yield from self._history(state)

    def _raft(self) -> Iterator[Metric]:
        status = self.raft.status()
        leader = self.raft.leader_addr()

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"hacluster_{name}", doc, value=value)

        yield gauge("raft_has_leader", "This member knows a leader (1) or not (0).",
                    1 if leader else 0)
        yield gauge("raft_is_leader", "This member is the Raft leader.",
                    1 if self.raft.is_leader() else 0)
        yield gauge("raft_quorum", "This member is in touch with a majority.",
                    1 if self.raft.has_quorum() else 0)
        yield gauge("raft_term", "This member's current Raft term.", self.raft.term())
        yield gauge("raft_commit_index", "This member's commit index.",
                    int(status.get("commit_idx", 0)))
        yield gauge("raft_applied_index", "The last entry this member applied.",
                    int(status.get("last_applied", 0)))
        yield gauge("raft_snapshot_index", "The entry this member's last snapshot covers.",
                    int(status.get("snapshot_index", 0)))
        yield gauge("raft_log_entries", "Entries in this member's journal since its snapshot.",
                    int(status.get("log_len", 0)))
        yield gauge("raft_journal_bytes", "Size of this member's journal.",
                    int(status.get("journal_bytes", 0)))
        yield gauge("member_disk_full", "This member could not store an entry for want of "
                    "space in the last 10 s.", 1 if self.raft.disk_full() else 0)
        yield gauge("member_halted", "This member stopped applying (see its log).",
                    1 if self.raft.halted else 0)
        local = self.local()
        yield CounterMetricFamily("hacluster_raft_leader_changes_seen",
                                  "Leader changes this member saw since it started.",
                                  value=local.get("leader_changes", 0))
        yield gauge("web_streams", "Live streams (console tabs) open on this member.",
                    local.get("web_streams", 0))
        yield gauge("event_streams", "Event streams (hactl events --follow) on this member.",
                    local.get("event_streams", 0))

    def _hosts(self, state: ClusterState) -> Iterator[Metric]:
        live = self.live()
        table = HostTable.of(state)
        p = state.policy
        free_memory = table.free_memory(p)
        families = {
            "state": GaugeMetricFamily("hacluster_host_state", "Host status (state set).",
                                       labels=["host", "state"]),
            "maintenance": GaugeMetricFamily("hacluster_host_maintenance",
                                             "The host is in maintenance.", labels=["host"]),
            "age": GaugeMetricFamily("hacluster_host_heartbeat_age_seconds",
                                     "Seconds since the leader last heard the host.",
                                     labels=["host"]),
            "rtt": GaugeMetricFamily("hacluster_host_heartbeat_rtt_seconds",
                                     "The host's last heartbeat round trip.", labels=["host"]),
            "cpus": GaugeMetricFamily("hacluster_host_cpus", "The host's CPUs.",
                                      labels=["host"]),
            "vcpus": GaugeMetricFamily("hacluster_host_vcpus_allocated",
                                       "vCPUs of the VMs placed on the host.", labels=["host"]),
            "memory": GaugeMetricFamily("hacluster_host_memory_bytes", "The host's memory.",
                                        labels=["host"]),
            "allocated": GaugeMetricFamily("hacluster_host_memory_allocated_bytes",
                                           "Memory of the VMs placed on the host.",
                                           labels=["host"]),
            "free": GaugeMetricFamily("hacluster_host_memory_free_bytes",
                                      "Memory placement may still give (after ratio and "
                                      "reserve).", labels=["host"]),
            "load": GaugeMetricFamily("hacluster_host_cpu_load_ratio",
                                      "The host's CPU load (0..1, smoothed).", labels=["host"]),
        }
        for host in sorted(state.hosts.values(), key=lambda h: h.name):
            name, i = host.name, table.index[host.name]
            for s in HostStatus:
                families["state"].add_metric([name, s.value], 1 if host.status is s else 0)
            families["maintenance"].add_metric([name], 1 if host.maintenance else 0)
            families["cpus"].add_metric([name], host.cpus)
            families["vcpus"].add_metric([name], float(table.used_vcpus[i]))
            families["memory"].add_metric([name], host.memory_mib * MIB)
            families["allocated"].add_metric([name], float(table.used_memory_mib[i]) * MIB)
            families["free"].add_metric([name], max(float(free_memory[i]), 0.0) * MIB)
            beat = live.get(name)
            if beat is not None and beat.last_heard_ago >= 0:
                families["age"].add_metric([name], beat.last_heard_ago)
                families["load"].add_metric([name], beat.cpu_load)
            if beat is not None and beat.heartbeat_rtt_ms >= 0:
                families["rtt"].add_metric([name], beat.heartbeat_rtt_ms / 1000)
        yield from families.values()

    def _vms(self, state: ClusterState) -> Iterator[Metric]:
        info = GaugeMetricFamily("hacluster_vm_info", "A VM (value 1) and what it is.",
                                 labels=["vm", "uuid", "ha", "priority"])
        current = GaugeMetricFamily("hacluster_vm_state", "A VM's current status (value 1; "
                                    "one series per VM).", labels=["vm", "state", "host"])
        totals = GaugeMetricFamily("hacluster_vms", "VMs by status.", labels=["status"])
        counts: dict[str, int] = {}
        for vm in sorted(state.vms.values(), key=lambda v: v.name):
            status = vm_status(vm, state.hosts.get(vm.host or ""))
            counts[status] = counts.get(status, 0) + 1
            info.add_metric([vm.name, vm.uuid, str(vm.ha).lower(), str(vm.priority)], 1)
            current.add_metric([vm.name, status, vm.host or ""], 1)
        for status, n in sorted(counts.items()):
            totals.add_metric([status], n)
        yield from (info, current, totals)
        unplaceable = sum(1 for v in state.vms.values()
                          if v.wants_to_run and v.host is None and v.pending_reasons)
        yield GaugeMetricFamily("hacluster_vms_unplaceable",
                                "VMs that want to run and fit on no host now.",
                                value=unplaceable)

    def _history(self, state: ClusterState) -> Iterator[Metric]:
        totals = state.counters
        fencing = CounterMetricFamily("hacluster_fencing_operations",
                                      "Hosts fenced, by method.", labels=["method"])
        migrations = CounterMetricFamily("hacluster_migrations", "Migrations finished, by "
                                         "result (live, cold, failed).", labels=["result"])
        failures = CounterMetricFamily("hacluster_vm_failures", "VMs that failed on a healthy "
                                       "host, by what followed (restart, relocate, error).",
                                       labels=["outcome"])
        for key, value in sorted(totals.items()):
            kind, _, label = key.partition(":")
            family = {"fencing": fencing, "migrations": migrations,
                      "vm_failures": failures}.get(kind)
            if family is not None:
                family.add_metric([label], value)
        yield from (fencing, migrations, failures)
        buckets = [(f"{le:g}", totals.get(f"failover_seconds_le:{le:g}", 0))
                   for le in FAILOVER_BUCKETS]
        buckets.append(("+Inf", totals.get("failovers", 0)))
        yield HistogramMetricFamily(
            "hacluster_failover_duration_seconds", "From a lost host's last heartbeat to all "
            "its HA VMs running elsewhere.", buckets=buckets,
            sum_value=totals.get("failover_seconds_sum", 0))
        alarms = GaugeMetricFamily("hacluster_alarms_active", "Active alarms, by kind and "
                                   "severity (replicated ones).", labels=["kind", "severity"])
        active: dict[tuple[str, str], int] = {}
        for a in state.alarms.values():
            if a.active:
                pair = (a.kind, a.severity.value)
                active[pair] = active.get(pair, 0) + 1
        for pair, n in sorted(active.items()):
            alarms.add_metric(list(pair), n)
        yield alarms
        yield GaugeMetricFamily("hacluster_incidents_open", "Lost hosts whose VMs are not all "
                                "running again yet.",
                                value=sum(1 for i in state.incidents if i.open))


def registry(collector: ClusterCollector) -> CollectorRegistry:
    """Our metrics and the process' own (CPU, memory, file descriptors), no global state."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    return reg
