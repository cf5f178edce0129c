"""What the leader should commit next, given the state and what it has heard from the agents.

A pure function of its inputs: the leader loop gathers the soft state (heartbeat and lease
grant times on its monotonic clock, live metrics, observed VM states, fence agents' answers),
calls `plan`, and proposes the commands. Each command carries the version it expects, so a
plan made on stale state loses the race instead of acting on it.

Order of a pass: liveness (up/down), fencing of down hosts whose leases have surely run out
(lease.recovery_at) or that a fence agent switched off, observed VM states, failed VMs
(restart, relocate or give up), then placement, highest priority first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import commands as c
from . import vm_index
from .balance import plan_balance
from .lease import recovery_at
from .model import HostStatus, MemberRecord, Observed, Vm, VmState
from .placement import HostMetrics, HostTable, Placer
from .state import ClusterState
from .validate import address_error

BY_LEASE = "lease+watchdog"
BY_FENCE_AGENT = "fence agent"


@dataclass
class LeaderView:
    """The leader's soft state; every time is on its own monotonic clock except wall_now."""

    now: float
    leader_since: float  # hosts never heard from get a full grace period from here
    margin: float = 0.5
    host_down_after: float = 1.0
    grant_window: float = 0.5
    wall_now: float = 0.0  # for the incident timeline only
    last_heard: Mapping[str, float] = field(default_factory=dict)
    last_granted: Mapping[str, float] = field(default_factory=dict)
    fenced_off: Mapping[str, bool] = field(default_factory=dict)  # fence agent said: off
    metrics: Mapping[str, HostMetrics] = field(default_factory=dict)
    observed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host -> vm -> state
    # host -> vm -> the VM record version the agent's replica had when it looked: a report
    # made before the leader's latest decision about the VM (a restart, say) is stale.
    reported_versions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    errors: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host -> vm -> why
    balance_due: bool = False  # automatic balancing: a pass is due (the leader's interval)
    # the state's room_epoch when every pending VM was last judged: until something may
    # have made room, they need no new placement pass (thousands cost the leader seconds)
    pending_judged_at: int = -1
    # a round of judging pending VMs goes at most placement_budget VMs a pass (the leader's
    # cycle stays short whatever waits), resuming after the VM named pending_from
    placement_budget: int = 500
    pending_from: str = ""
    bootstrap_token_sha256: str = ""  # the bootstrap admin token from the config, if any
    code_versions: Mapping[str, int] = field(default_factory=dict)  # host -> code it runs
    code_version: int = c.CODE_VERSION  # the leader's own (lower only in upgrade tests)
    configured_members: tuple[MemberRecord, ...] = ()  # the leader's configuration's list

    def report(self, host: str, vm: Vm) -> Observed | None:
        seen = self.observed.get(host, {}).get(vm.name)
        version = self.reported_versions.get(host, {}).get(vm.name, -1)
        return Observed(seen) if seen is not None and version >= vm.version else None

    def recovery_at(self, name: str, lease: float, watchdog: float) -> float:
        return recovery_at(self.last_granted.get(name), self.leader_since,
                           self.grant_window, lease, watchdog, self.margin)


@dataclass
class Plan:
    commands: list[c.Command]
    verdict: str
    due_in: float | None = None  # seconds until a fencing falls due: plan again then
    balanced: bool = False  # an automatic balancing pass ran
    pending_next: str | None = None  # the round of pending VMs goes on after this VM


Out = list[tuple[c.Command, str]]
"""Commands a phase wants committed, each with a note for the leader's verdict ("": none)."""


@dataclass
class Stamp:
    """What every command of one pass carries: a fresh id, the pass's time and the term."""

    term: int
    ids: Iterator[str]
    ts: float

    def __call__(self) -> dict[str, Any]:
        return {"id": next(self.ids), "ts": self.ts, "term": self.term}


def plan(state: ClusterState, view: LeaderView, term: int, ids: Iterator[str],
         ts: float) -> Plan:
    """One pass of the leader, phase by phase (each a function below, tested alone)."""
    stamp = Stamp(term, ids, ts)
    out, notes, due_in = liveness(state, view, stamp)
    if out:
        # Host transitions first, on their own: the rest of the plan must see their effect.
        return Plan([cmd for cmd, _ in out], "; ".join(notes), due_in)
    # (notes keeps liveness' waits: "host2 down, fencing in 1.2s")

    def take(phase: Out, note: str = "") -> None:
        out.extend(phase)
        notes.extend(n for _, n in phase if n)
        if note:
            notes.append(note)

    take(observations(state, view, stamp))
    take(failures(state, view, stamp))
    placer = Placer(state.policy, list(state.rules.values()))
    placed, placed_note, pending_next = placement(state, view, placer, stamp)
    take(placed, placed_note)
    take(credentials(state, view, stamp))
    take(versions(state, view, stamp))
    take(membership(state, view, stamp))
    take(voters(state, view, stamp))
    take(migrations(state, view, placer, stamp))
    # automatic balancing, when a pass is due and nothing else is moving
    balanced = view.balance_due and state.policy.balance_mode == 2 and not out
    if balanced:
        take(balancing(state, view, stamp))
    return Plan([cmd for cmd, _ in out], "; ".join(notes) if notes else "steady", due_in,
                balanced, pending_next)


def liveness(state: ClusterState, view: LeaderView, stamp: Stamp
             ) -> tuple[Out, list[str], float | None]:
    """Hosts declared down when silent, up when heard again; a down host fenced once its
    lease has surely run out (lease.recovery_at) or a fence agent switched it off. Returns
    the commands, the notes in host order (waits included) and when a fencing falls due."""
    out: Out = []
    notes: list[str] = []
    due: list[float] = []

    def add(cmd: c.Command, note: str) -> None:
        out.append((cmd, note))
        notes.append(note)

    for host in sorted(state.hosts.values(), key=lambda h: h.name):
        heard = view.last_heard.get(host.name)
        silent_for = view.now - (heard if heard is not None else view.leader_since)
        alive = heard is not None and silent_for <= view.host_down_after
        if host.status is HostStatus.UP and not alive and silent_for > view.host_down_after:
            add(c.SetHostStatus(**stamp(), name=host.name, status=HostStatus.DOWN.value,
                                last_heard=view.wall_now - silent_for,
                                expect_version=host.version),
                f"{host.name} down (silent {silent_for:.1f}s)")
        elif host.status is not HostStatus.UP and alive:
            add(c.SetHostStatus(**stamp(), name=host.name, status=HostStatus.UP.value,
                                expect_version=host.version),
                f"{host.name} up")
        elif host.status is HostStatus.DOWN:
            by = None
            if view.fenced_off.get(host.name):
                by = BY_FENCE_AGENT
            elif (host.watchdog > 0 and not unreported(state, host.name)
                  and view.now >= view.recovery_at(host.name, host.lease, host.watchdog)):
                by = BY_LEASE
            if by is not None:
                add(c.FenceHost(**stamp(), name=host.name, by=by,
                                expect_version=host.version), f"{host.name} fenced ({by})")
            else:
                if host.watchdog <= 0:
                    wait = "no watchdog: needs a fence agent or an operator's confirm-fenced"
                elif unreported(state, host.name):
                    wait = (f"{', '.join(unreported(state, host.name))} may have arrived by "
                            "live migration unreported, so its watchdog may not cover them: "
                            "needs a fence agent or an operator's confirm-fenced")
                else:
                    due.append(view.recovery_at(host.name, host.lease, host.watchdog) - view.now)
                    wait = f"fencing in {due[-1]:.1f}s"
                notes.append(f"{host.name} down, {wait}")
    return out, notes, min(due) if due else None


def unreported(state: ClusterState, host: str) -> list[str]:
    """HA VMs that live-migrated (or may be migrating) to this host before it ever reported
    them: a lease that ran out proves nothing about them (its agent may have hung before it
    armed the watchdog for them). From the index of VMs on or moving to the host: a leader
    that took over with many hosts down scanned all 10,000 VMs twice per down host and
    pass, long enough for its followers to depose it in turn."""
    vms = [state.vms[n] for n in state.placed_on(host)]
    return sorted(vm.name for vm in vms if vm.ha and (
        (vm.host == host and vm.unreported) or vm.migrating_to == host))


def observations(state: ClusterState, view: LeaderView, stamp: Stamp) -> Out:
    """What the agents saw of their VMs, one batch per host, only what changed."""
    out: Out = []
    for host_name, reported in sorted(view.observed.items()):
        changes = {}
        for vm_name in reported:
            vm = state.vms.get(vm_name)
            seen = view.report(host_name, vm) if vm is not None and vm.host == host_name else None
            if vm is not None and seen is not None and (vm.observed is not seen
                                                          or vm.unreported):
                changes[vm_name] = seen.value
        if changes:
            out.append((c.ObserveVms(**stamp(), host=host_name, observed=changes),
                        f"{len(changes)} observed on {host_name}"))
    return out


def failures(state: ClusterState, view: LeaderView, stamp: Stamp) -> Out:
    """VMs that stopped or crashed on a healthy host (the committed observation and the
    host's latest report agree): the restart policy decides in apply."""
    out: Out = []
    failed = (Observed.STOPPED, Observed.CRASHED)
    for vm in sorted((state.vms[n] for n in state.listed(vm_index.FAILED)),
                     key=lambda v: v.name):
        on = state.hosts.get(vm.host) if vm.host else None
        if (vm.wants_to_run and on is not None and on.status is HostStatus.UP
                and view.report(on.name, vm) in failed):
            out.append((c.VmFailed(**stamp(), name=vm.name, host=on.name,
                                   expect_version=vm.version,
                                   reason=view.errors.get(on.name, {}).get(vm.name, "")),
                        f"{vm.name} failed on {on.name}"))
    return out


def placement(state: ClusterState, view: LeaderView, placer: Placer, stamp: Stamp
              ) -> tuple[Out, str, str | None]:
    """VMs that want to run and have no host, highest priority first: never judged ones
    (new) first, then those already pending, in rounds of view.placement_budget, and only
    when something may have made room since they were last judged. Returns the commands,
    the pass's note and the VM the round goes on after (None: the round is complete)."""
    out: Out = []
    unchanged = view.pending_judged_at == state.room_epoch
    unplaced = [state.vms[n] for n in state.listed(vm_index.UNPLACED)]
    # first come, first served: in the order they last changed (created, or started)
    fresh = sorted((vm for vm in unplaced if not vm.pending_reasons),
                   key=lambda v: (v.version, v.name))
    old = [] if unchanged else sorted(
        (vm for vm in unplaced if vm.pending_reasons and vm.name > view.pending_from),
        key=lambda v: v.name)
    waiting = (fresh + old)[:view.placement_budget]
    pending_next = None
    if len(fresh) + len(old) > view.placement_budget:
        pending_next = waiting[-1].name if len(fresh) < len(waiting) else view.pending_from
    if not waiting:
        return out, "", pending_next
    table = HostTable.of(state, metrics=view.metrics)
    placed = pending = 0
    for d in placer.place_all(waiting, table):
        vm = state.vms[d.vm]
        if d.host is not None:
            out.append((c.AssignVm(**stamp(), name=vm.name, host=d.host,
                                   expect_version=vm.version), ""))
            placed += 1
        else:
            pending += 1
            if reason_kinds(d.reasons) != reason_kinds(vm.pending_reasons):
                out.append((c.MarkPending(**stamp(), name=vm.name, reasons=d.reasons,
                                          expect_version=vm.version), ""))
    return out, f"placed {placed}" + (f", {pending} pending" if pending else ""), pending_next


def credentials(state: ClusterState, view: LeaderView, stamp: Stamp) -> Out:
    """The bootstrap admin token, once; expired tokens dropped (an hour late, so a clock a
    little ahead elsewhere changes nothing: expiry is checked on every call)."""
    out: Out = []
    if not state.bootstrapped and view.bootstrap_token_sha256 and "admin" not in state.tokens:
        out.append((c.CreateToken(**stamp(), name="admin", role="admin",
                                  sha256=view.bootstrap_token_sha256, owner="bootstrap"),
                    "bootstrap admin token added"))
    for token in sorted(state.tokens.values(), key=lambda t: t.name):
        if token.expires_at and token.expires_at < view.wall_now - 3600:
            out.append((c.RevokeToken(**stamp(), name=token.name), ""))
    return out


def versions(state: ClusterState, view: LeaderView, stamp: Stamp) -> Out:
    """Raise the cluster's version to the lowest code version its hosts run, once every
    registered host has said which it runs in this leadership (etcd's rule: a member not heard
    from may run older code and holds the version back)."""
    running = [view.code_versions.get(name, 0) for name in state.hosts]
    target = min([*running, view.code_version]) if running else 0
    if target <= state.cluster_version:
        return []
    return [(c.SetClusterVersion(**stamp(), version=target),
             f"cluster version {state.cluster_version} -> {target}")]


def membership(state: ClusterState, view: LeaderView, stamp: Stamp) -> Out:
    """Record the configured members once the cluster can (version 2): from then on the
    replicated list is the one every member follows, and hactl host add/remove change it."""
    if state.members or not c.allowed("member.add", state.cluster_version) or any(
            address_error("member", a) for m in view.configured_members
            for a in (m.raft, m.api, m.peer, m.web)):  # (config.parse checks them: never)
        return []
    return [(c.AddMember(**stamp(), name=m.name, raft=m.raft, api=m.api, peer=m.peer,
                         web=m.web, voter=True), f"member {m.name} recorded")
            for m in view.configured_members]


def voters(state: ClusterState, view: LeaderView, stamp: Stamp) -> Out:
    """Keep policy.voters voters that work: a voter down longer than voter_replace_after is
    replaced by a learner that is up, one change per pass; the learner is promoted first and
    the lost voter demoted after, so the voters able to form a majority never shrink."""
    if not state.members or not c.allowed("member.voter", state.cluster_version):
        return []
    policy = state.policy

    def up(name: str) -> bool:
        host = state.hosts.get(name)
        return host is not None and host.status is HostStatus.UP and \
            view.now - view.last_heard.get(name, float("-inf")) <= view.host_down_after

    def lost(name: str) -> bool:
        return not up(name) and view.now - view.last_heard.get(
            name, view.leader_since) > policy.voter_replace_after

    members = sorted(state.members.values(), key=lambda m: m.name)
    voting = [m for m in members if m.voter]
    gone = [m for m in voting if lost(m.name)]
    ready = [m for m in members if not m.voter and up(m.name)]
    if ready and len(voting) - len(gone) < policy.voters and len(voting) <= policy.voters:
        return [(c.SetVoter(**stamp(), name=ready[0].name, voter=True),
                 f"{ready[0].name} promoted to voter" + (f" (replacing {gone[0].name})"
                                                          if gone else ""))]
    if gone and len(voting) > policy.voters:
        return [(c.SetVoter(**stamp(), name=gone[0].name, voter=False),
                 f"{gone[0].name} demoted to learner (lost)")]
    return []


def balancing(state: ClusterState, view: LeaderView, stamp: Stamp) -> Out:
    """An automatic balancing pass (the caller decides it is due and nothing else moves)."""
    balance = plan_balance(state, view.metrics, stamp.ts)
    checked = c.allowed("vm.migration.check_target", state.cluster_version)
    return [(c.SetMigration(**stamp(), name=m.vm, to=m.target, check_target=checked,
                            expect_version=state.vms[m.vm].version),
             f"balance: {m.vm} {m.source}->{m.target} (gain {m.gain:.3f})")
            for m in balance.moves]


def migrations(state: ClusterState, view: LeaderView, placer: Placer, stamp: Stamp) -> Out:
    """Start the moves that are due, within each host's concurrent-migration limit; cancel
    those whose target is gone; say why a move cannot happen (once, not every pass)."""
    out: list[tuple[c.Command, str]] = []
    busy: dict[str, int] = {}
    for name in state.listed(vm_index.MOVING):
        # In flight, even if its target went down: only the source's agent knows whether
        # libvirt moved it (a target whose daemon hung still takes it) and says so
        # (FinishMigration). Cancelling here could leave it running where the record says
        # it is not. Never moved again meanwhile.
        vm = state.vms[name]
        for h in (vm.host, vm.migrating_to):
            busy[h or ""] = busy.get(h or "", 0) + 1
    asked = set(state.listed(vm_index.ASKED))  # and everything on a host being drained
    for host in state.hosts.values():
        if host.maintenance:
            asked.update(n for n in state.placed_on(host.name)
                         if state.vms[n].migrating_to is None and state.vms[n].host == host.name)
    limit = state.policy.max_migrations_per_host
    table: HostTable | None = None
    for vm in sorted((state.vms[n] for n in asked), key=lambda v: (-v.priority, v.name)):
        source = state.hosts.get(vm.host) if vm.host else None
        if not vm.wants_to_run or source is None or source.status is not HostStatus.UP:
            continue
        if busy.get(source.name, 0) >= limit:
            continue
        if table is None:
            table = HostTable.of(state, metrics=view.metrics)
        # Judge the VM as if it were not on its host yet (it leaves it), and never back there.
        table.add(vm, table.index[source.name], -1)
        moving = Vm(**{**vm.to_dict(), "host": None,
                       "avoid_hosts": sorted({*vm.avoid_hosts, source.name})})
        d = placer.decide(moving, table, explain=bool(vm.migration_requested))
        table.add(vm, table.index[source.name])
        wanted = vm.migration_requested or ""
        to = d.host if not wanted else (wanted if wanted not in d.rejected and wanted in
                                        table.index else None)
        if to is not None and busy.get(to, 0) >= limit:
            continue
        if to is None:
            why = d.rejected.get(wanted, "not a candidate") if wanted else "; ".join(d.reasons)
            error = f"cannot move to {wanted or 'any host'}: {why}"
            if error != vm.migration_error or vm.migration_requested is not None:
                out.append((c.SetMigration(**stamp(), name=vm.name,
                                           error=error, expect_version=vm.version),
                            f"{vm.name}: {error}"))
            continue
        busy[source.name] = busy.get(source.name, 0) + 1
        busy[to] = busy.get(to, 0) + 1
        table.add(vm, table.index[to])
        out.append((c.SetMigration(**stamp(), name=vm.name, to=to, check_target=c.allowed(
            "vm.migration.check_target", state.cluster_version),
                                   expect_version=vm.version),
                    f"move {vm.name} {source.name}->{to}"))
    return out


def reason_kinds(reasons: list[str]) -> list[str]:
    """What a pending VM's reasons say without their figures ("h1: memory: needs 512 MiB
    memory, 300 MiB free" -> "h1: memory"): recorded again only when these change, not
    each time a number moves (every pending VM would be rewritten on each capacity change)."""
    return [":".join(r.split(":", 2)[:2]) for r in reasons]


def concerns_leader(cmd: c.Command) -> bool:
    """Whether an applied command may give the leader work now (something to place). A VM
    created stopped gives it none: thousands created in a row would each cost a pass."""
    if isinstance(cmd, c.CreateVm):
        return cmd.state == VmState.STARTED.value
    return isinstance(cmd, c.SetVmState | c.DeleteVm | c.RegisterHost
                      | c.ConfirmFenced | c.FenceHost | c.VmFailed | c.SetMaintenance
                      | c.RequestMigration | c.FinishMigration | c.CreateRule)
