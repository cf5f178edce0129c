"""What-if: "if host X failed now" or "if host X entered maintenance now", where would each of
its VMs go, or why would it be stranded?

Answered by the leader's own code, not a second model of it: the host's failure (down, then
fenced) or its maintenance is applied to a copy of the state, then `reconcile.plan` runs
round after round on that copy, each round's commands applied, moves finished at once, until
the plan has nothing left to do. Placement order, priorities, rules, capacity and the
migration limits are therefore exactly the leader's. Pure: the live figures and the clock
are inputs; the real state is never touched (copy-on-write fork).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from . import commands as c
from .model import HostStatus, Vm, VmState
from .placement import HostMetrics
from .reconcile import LeaderView, plan
from .state import ClusterState

MAX_ROUNDS = 10_000  # every round moves or places at least one VM; a bound all the same


@dataclass(frozen=True)
class Outcome:
    name: str
    target: str | None  # where it would run; None: it would not run anywhere
    reason: str

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "target": self.target, "reason": self.reason}


@dataclass(frozen=True)
class WhatIf:
    host: str
    maintenance: bool
    vms: tuple[Outcome, ...]

    @property
    def stranded(self) -> list[str]:
        return [o.name for o in self.vms if o.target is None and _wanted(o.reason)]


def _wanted(reason: str) -> bool:
    return not reason.startswith(("stopped", "not HA", "ignored", "in error"))


def what_if(state: ClusterState, host: str, maintenance: bool,
            metrics: Mapping[str, HostMetrics], ts: float) -> WhatIf:
    """The outcome for every VM on `host` (KeyError if there is no such host)."""
    subject = state.hosts[host]
    sim = state.fork()
    ids = (f"what-if-{n}" for n in itertools.count())
    term = sim.leader_term
    if maintenance:
        sim.apply(c.SetMaintenance(id=next(ids), ts=ts, name=host, on=True))
    else:
        if subject.status is HostStatus.UP:
            sim.apply(c.SetHostStatus(id=next(ids), ts=ts, term=term, name=host,
                                      status=HostStatus.DOWN.value, last_heard=ts))
        if sim.hosts[host].status is HostStatus.DOWN:
            sim.apply(c.FenceHost(id=next(ids), ts=ts, term=term, name=host, by="what-if"))
    before = {v.name: v for v in state.vms.values() if v.host == host}
    _settle(sim, host, maintenance, metrics, term, ids, ts)
    return WhatIf(host, maintenance, tuple(_outcome(vm, sim.vms[vm.name], host, maintenance)
                                           for _, vm in sorted(before.items())))


def _settle(sim: ClusterState, host: str, maintenance: bool,
            metrics: Mapping[str, HostMetrics], term: int, ids: Iterator[str], ts: float) -> None:
    """Run the leader's plan on the copy until it stops placing or moving VMs. Every up
    host counts as just heard from (only `host` fails), and no other fencing falls due."""
    heard = {h.name: 0.0 for h in sim.hosts.values()
             if h.status is HostStatus.UP and (maintenance or h.name != host)}
    for _ in range(MAX_ROUNDS):
        # moves in flight finish first: their hosts' migration slots free up, as they would
        for vm in sorted(sim.vms.values(), key=lambda v: v.name):
            if vm.migrating_to is not None and vm.host is not None:
                sim.apply(c.FinishMigration(id=next(ids), ts=ts, name=vm.name, source=vm.host,
                                            to=vm.migrating_to, ok=True))
        view = LeaderView(now=0.0, leader_since=0.0, last_heard=heard, metrics=metrics,
                          wall_now=ts, placement_budget=len(sim.vms) + 1)
        progress = False
        for cmd in plan(sim, view, term, ids, ts).commands:
            result = sim.apply(cmd)
            moved = isinstance(cmd, c.SetMigration) and bool(cmd.to)
            progress |= result.ok and (moved or isinstance(cmd, c.AssignVm))
        if not progress:
            return


def _outcome(was: Vm, now: Vm, host: str, maintenance: bool) -> Outcome:
    if was.error:
        return Outcome(was.name, None, f"in error ({was.error}): the cluster leaves it be")
    if was.state is VmState.IGNORED:
        return Outcome(was.name, None, "ignored: not managed by the cluster")
    if maintenance:
        if not was.wants_to_run:
            return Outcome(was.name, None, f"stopped: stays defined on {host}")
        if now.host != host:
            return Outcome(was.name, now.host, f"live-migrated to {now.host}")
        why = now.migration_error or "no host can take it"
        return Outcome(was.name, None, f"stranded on {host}: {why}")
    if not was.recoverable:
        return Outcome(was.name, None, "not HA: stays down with its host")
    if not was.wants_to_run:
        return Outcome(was.name, None, "stopped: moves to whichever host starts it next")
    if now.host is not None:
        return Outcome(was.name, now.host, f"restarted on {now.host}")
    reasons = "; ".join(now.pending_reasons) or "no host can take it"
    return Outcome(was.name, None, f"stranded: {reasons}")
