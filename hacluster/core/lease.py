"""The lease protocol, whole: who may grant a lease, how long it lasts, what the host holds,
when its watchdog fires, and when the leader may restart its VMs elsewhere. Pure arithmetic on
seconds; both sides (the leader answering a heartbeat, the agent reading the answer) call it.

The rule (Proxmox's, Pacemaker's, with Raft leases): a host may run its HA VMs only while it
holds a lease. A lease granted at time g (leader's clock; the host counts from before it asked,
so its copy ends first) lasts `lease`; when it runs out the agent hard-stops its HA VMs, and if
the agent is hung the watchdog, fed only while the lease is valid, powers the host off at most
`watchdog` later. So the leader may restart them elsewhere at g + lease + watchdog + margin.

A leader grants leases only within `grant_window` of its last proof of a majority (a commit it
started then). A successor is elected only after that majority moved on, so its predecessor's
last grant is at most grant_window after the successor's start: a new leader counts from its
own start plus grant_window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .model import HostStatus, Observed, Vm, VmState
from .state import ClusterState

# ---- the leader's side -----------------------------------------------------------------------


def leader_fresh(active: bool, my_term: int, raft_term: int, confirmed_at: float | None,
                 now: float, grant_window: float) -> bool:
    """May this leader grant leases now? Only while it acts as leader of the current term and
    within grant_window of its last proof of a majority: a deposed (cut off, or paused and
    resumed) leader stops granting within the bound a successor's grace period assumes."""
    return (active and confirmed_at is not None and raft_term == my_term
            and now - confirmed_at < grant_window)


def grant(state: ClusterState, host: str, fresh: bool) -> tuple[float, str]:
    """The lease the leader gives a heartbeating host, and why none if none: its configured
    length if the committed state says it is up, else none (once a host is down, the fencing
    arithmetic counts on no further grant reaching it)."""
    record = state.hosts.get(host)
    if record is None or record.status is not HostStatus.UP:
        return 0.0, f"no lease: host is {record.status.value if record else 'unregistered'}"
    if not fresh:
        return 0.0, "no lease: this leader has not proven its majority recently"
    return record.lease, ""


def recovery_at(last_granted: float | None, leader_since: float, grant_window: float,
                lease: float, watchdog: float, margin: float) -> float:
    """Leader-monotonic time from which a silent host's HA VMs may run elsewhere."""
    newest_possible_grant = leader_since + grant_window
    if last_granted is not None:
        newest_possible_grant = max(newest_possible_grant, last_granted)
    return newest_possible_grant + lease + watchdog + margin


# ---- the host's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """A host's lease as its agent sees it, on the host's monotonic clock."""

    until: float | None  # None: no lease granted since this agent started
    started: float  # when this agent started
    length: float  # the configured lease

    def valid(self, now: float) -> bool:
        return self.until is not None and now < self.until

    def expired(self, now: float) -> bool:
        """No valid lease, and not merely because the agent just started: a restarted agent
        gets one lease length to reach a leader (its watchdog still runs meanwhile)."""
        if self.valid(now):
            return False
        return self.until is not None or now >= self.started + self.length


def renewed_until(current: float | None, asked: float, seconds: float, answer_term: int,
                  known_term: int) -> float | None:
    """The host's lease after a leader's answer: counted from before it asked (so the host's
    copy ends before the leader's), and only from a leader at least as new as the newest
    leadership claim its replica has seen (a deposed leader's word renews nothing)."""
    if seconds > 0 and answer_term >= known_term:
        return asked + seconds
    return current


class Guarded(Protocol):
    """What watchdog_guard reads of a libvirt domain (host_plan.Domain has these)."""

    @property
    def uuid(self) -> str: ...
    @property
    def managed(self) -> bool: ...
    @property
    def state(self) -> Observed: ...


@dataclass(frozen=True)
class Guard:
    """What to do with the watchdog: arm it to `until`, stand it down, or leave it be."""

    until: float | None = None
    disarm: bool = False


def watchdog_guard(vms: Mapping[str, Vm], domains: Iterable[Guarded], lease: Lease,
                   watchdog: float, now: float) -> Guard:
    """Armed to the lease's end plus the watchdog time while a VM the cluster could restart
    elsewhere runs here; stood down once none does. Without a valid lease it is left as it
    is: the agent self-fences, and if it cannot, the watchdog must fire."""
    by_uuid = {vm.uuid: vm for vm in vms.values()}
    guarding = False
    for d in domains:
        vm = by_uuid.get(d.uuid)
        if d.managed and d.state is not Observed.STOPPED and (
                vm is None or (vm.ha and vm.state is not VmState.IGNORED)):
            guarding = True
    if not guarding:
        return Guard(disarm=True)
    if lease.valid(now):
        assert lease.until is not None
        return Guard(until=lease.until + watchdog)
    return Guard()
