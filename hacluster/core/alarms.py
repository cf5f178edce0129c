"""Built-in alarms: which conditions hold now, and the commands that bring the replicated
alarm list in line with them. Pure: the leader's evaluator (alarming.py) gathers the facts
(live figures, members' replication, how many failures the cluster tolerates) and commits
what `reconcile` returns.

The alarms (kind: severity, when):
- host-down: critical, a host is down or fenced;
- vm-error: warning, a VM gave up after its restarts and relocations;
- host-cpu, host-memory: warning, a host's CPU load or memory in use above the policy's
  alarm_cpu / alarm_memory for alarm_for seconds;
- host-disk: warning, a host's VM storage has less than alarm_disk_free_gib free;
- member-behind: warning, the leader cannot replicate to a member (disconnected, or far
  behind: its journal or disk in trouble) for alarm_for seconds;
- failures-tolerated: warning, the cluster could not restart every HA VM after
  admission_failures host failures (the admission target);
- pool-unseen: warning, an up host does not see a shared storage pool that holds VMs' disks
  (those VMs cannot fail over or move there);
- pool-full: warning, a storage pool has less than alarm_disk_free_gib free on a host.
Quorum lost cannot be committed (no quorum): each member shows that one itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from . import commands as c
from .model import HostStatus, Severity
from .placement import HostMetrics
from .state import ClusterState

SUSTAINED = ("host-cpu", "host-memory", "member-behind")  # must hold alarm_for seconds
BEHIND_ENTRIES = 1000  # a member this many entries behind the leader's commit is behind


@dataclass(frozen=True)
class Condition:
    kind: str
    severity: Severity
    subject: str
    message: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


@dataclass
class Facts:
    """What the leader knows beyond the state: live figures, replication, tolerance."""

    metrics: Mapping[str, HostMetrics] = field(default_factory=dict)
    members_behind: Mapping[str, str] = field(default_factory=dict)  # member -> why
    failures_tolerated: int | None = None  # None: not computed yet


def conditions(state: ClusterState, facts: Facts) -> list[Condition]:
    """Every alarm condition that holds now (sustained ones not yet judged for duration)."""
    p = state.policy
    out: list[Condition] = []
    for host in sorted(state.hosts.values(), key=lambda h: h.name):
        if host.status is not HostStatus.UP:
            how = f" (fenced by {host.fenced_by})" if host.fenced_by else ""
            out.append(Condition("host-down", Severity.CRITICAL, host.name,
                                 f"host {host.name} is {host.status.value}{how}"))
            continue
        m = facts.metrics.get(host.name)
        if m is None:
            continue
        if m.cpu_load > p.alarm_cpu:
            out.append(Condition("host-cpu", Severity.WARNING, host.name,
                                 f"host {host.name} CPU load {m.cpu_load:.0%} above "
                                 f"{p.alarm_cpu:.0%}"))
        if m.memory_available_mib >= 0 and host.memory_mib > 0:
            used = 1 - m.memory_available_mib / host.memory_mib
            if used > p.alarm_memory:
                out.append(Condition("host-memory", Severity.WARNING, host.name,
                                     f"host {host.name} memory {used:.0%} in use, above "
                                     f"{p.alarm_memory:.0%}"))
        if 0 <= m.disk_free_gib < p.alarm_disk_free_gib:
            out.append(Condition("host-disk", Severity.WARNING, host.name,
                                 f"host {host.name} has {m.disk_free_gib:.1f} GiB free for VM "
                                 f"storage, below {p.alarm_disk_free_gib:g} GiB"))
    for vm in sorted((v for v in state.vms.values() if v.error), key=lambda v: v.name):
        if vm.error:  # (sorting only those: every 2 s on the leader, among 10,000 VMs)
            out.append(Condition("vm-error", Severity.WARNING, vm.name,
                                 f"VM {vm.name} in error: {vm.error}"))
    out += _pool_conditions(state)
    for member, why in sorted(facts.members_behind.items()):
        record = state.hosts.get(member)
        if record is not None and record.status is not HostStatus.UP:
            continue  # host-down says it already
        out.append(Condition("member-behind", Severity.WARNING, member,
                             f"member {member} is not keeping up: {why}"))
    target = p.admission_failures
    up = sum(1 for h in state.hosts.values() if h.status is HostStatus.UP)
    if facts.failures_tolerated is not None and up > 1 and facts.failures_tolerated < target:
        out.append(Condition("failures-tolerated", Severity.WARNING, "cluster",
                             f"the cluster tolerates {facts.failures_tolerated} host "
                             f"failure(s) now, below the target of {target} "
                             "(policy admission_failures)"))
    return out


def _pool_conditions(state: ClusterState) -> list[Condition]:
    p = state.policy
    if not state.pools:
        return []
    used = {d["pool"] for vm in state.vms.values() for d in vm.disks}
    up = sorted(h.name for h in state.hosts.values() if h.status is HostStatus.UP)
    out = []
    for pool in sorted(state.pools.values(), key=lambda x: x.name):
        missing = [h for h in up if h not in pool.seen]
        if pool.shared and pool.name in used and missing:
            why = "; ".join(f"{h}: {pool.errors[h]}" for h in missing if h in pool.errors)
            out.append(Condition("pool-unseen", Severity.WARNING, pool.name,
                                 f"storage pool {pool.name} is not seen by "
                                 f"{', '.join(missing)}{f' ({why})' if why else ''}"))
        low = sorted(h for h, (_cap, free) in pool.seen.items() if free < p.alarm_disk_free_gib)
        if low:
            out.append(Condition("pool-full", Severity.WARNING, pool.name,
                                 f"storage pool {pool.name} has less than "
                                 f"{p.alarm_disk_free_gib:g} GiB free on {', '.join(low)}"))
    return out


class Sustained:
    """When each sustained condition was first seen holding (the evaluator's soft state)."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}

    def filter(self, found: list[Condition], now: float, hold: float) -> list[Condition]:
        keys = {x.key for x in found if x.kind in SUSTAINED}
        self.since = {k: t for k, t in self.since.items() if k in keys}
        out = []
        for x in found:
            if x.kind in SUSTAINED:
                first = self.since.setdefault(x.key, now)
                if now - first < hold:
                    continue
            out.append(x)
        return out


def reconcile(state: ClusterState, holding: list[Condition], term: int, ids: Iterator[str],
              ts: float) -> list[c.Command]:
    """Raise what holds and is not raised (or says something new); clear what no longer
    holds. A condition the leader cannot judge now (no live figures for a host yet, the
    tolerance not computed) is not cleared on that account: see `judged`."""
    cmds: list[c.Command] = []
    wanted = {x.key: x for x in holding}
    for key, x in sorted(wanted.items()):
        old = state.alarms.get(key)
        if old is None or not old.active or old.message != x.message \
                or old.severity is not x.severity:
            cmds.append(c.RaiseAlarm(id=next(ids), ts=ts, term=term, key=key, kind=x.kind,
                                     severity=x.severity.value, subject=x.subject,
                                     message=x.message))
    for key, alarm in sorted(state.alarms.items()):
        if alarm.active and key not in wanted:
            cmds.append(c.ClearAlarm(id=next(ids), ts=ts, term=term, key=key))
    return cmds


def judged(state: ClusterState, facts: Facts, holding: list[Condition],
           sustained: Sustained) -> list[Condition]:
    """`holding`, plus the active alarms that cannot be judged now and must stay: live
    conditions of a host with no figures yet, sustained ones still being timed, the
    tolerance before it was computed."""
    keep = {x.key for x in holding}
    out = list(holding)
    for key, alarm in state.alarms.items():
        if not alarm.active or key in keep:
            continue
        unknown = (alarm.kind in ("host-cpu", "host-memory", "host-disk")
                   and alarm.subject not in facts.metrics) \
            or (alarm.kind == "failures-tolerated" and facts.failures_tolerated is None) \
            or key in sustained.since
        if unknown:
            out.append(Condition(alarm.kind, alarm.severity, alarm.subject, alarm.message))
    return out
