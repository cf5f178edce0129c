"""Deterministic simulation of a whole cluster under a seeded random fault schedule.

The real core runs here: ClusterState.apply (every member's replica), reconcile.plan (the
leader), decide_host and watchdog_guard (each agent), lease_grant, and the fencing arithmetic
of core.timing. Around it: a fake clock, a fake network (hosts cut off, paused, powered off),
in-memory hypervisors and watchdogs, and a Raft model (a majority elects a leader after an
election timeout; a cut-off or paused leader believes in itself until it notices, and may
still grant leases while its last proof of a majority is fresh, as the real one may).

After every step the invariants are checked against the hypervisors themselves:
  I1  no VM runs on two hosts at once;
  I2  the committed state never puts a VM on an unknown host nor overcommits a host;
and once every fault has healed, liveness: every started HA VM runs on exactly its host.

    python -m tests.sim.simulator --seed 1234 --verbose     # replay one schedule
    python -m tests.sim.simulator --schedules 1000          # a batch
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from dataclasses import dataclass, field

from hacluster.core import commands as c
from hacluster.core.host_plan import Act, Domain, Lease, decide_host, report, watchdog_guard
from hacluster.core.model import Observed, VmState
from hacluster.core.reconcile import LeaderView, lease_grant, plan
from hacluster.core.state import ClusterState
from hacluster.core.timing import PROFILES, RAFT_FOR_PROFILE

HA = PROFILES["fast"]
RAFT = RAFT_FOR_PROFILE["fast"]
DT = 0.05
SETTLE = 5.0  # after the last fault heals, every started HA VM must run again within this
LEADER_INTERVAL = 0.1
FAULT_KINDS = ["power_off", "power_on", "pause", "resume", "isolate", "heal", "daemon_crash",
               "daemon_start", "vm_crash", "leader_off", "leader_isolate"]


class InvariantBroken(AssertionError):
    pass


@dataclass
class Leader:
    host: str
    term: int
    since: float
    confirmed_at: float = float("-inf")
    last_heard: dict[str, float] = field(default_factory=dict)
    last_granted: dict[str, float] = field(default_factory=dict)
    observed: dict[str, dict[str, str]] = field(default_factory=dict)
    versions: dict[str, dict[str, int]] = field(default_factory=dict)
    next_cycle: float = 0.0

    def fresh(self, now: float) -> bool:
        return now - self.confirmed_at < HA.grant_window


@dataclass
class Host:
    name: str
    powered: bool = True
    paused: bool = False
    daemon_up: bool = True
    isolated: bool = False
    domains: dict[str, Domain] = field(default_factory=dict)  # the hypervisor: uuid -> domain
    replica: ClusterState = field(default_factory=ClusterState)
    applied: int = 0  # log entries applied to the replica
    lease_until: float | None = None
    agent_started: float = 0.0
    watchdog_at: float | None = None
    phase: float = 0.0  # heartbeat offset

    @property
    def running(self) -> bool:  # the daemon executes
        return self.powered and self.daemon_up and not self.paused


class Sim:
    def __init__(self, seed: int, verbose: bool = False) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.verbose = verbose
        self.trace: list[str] = []
        self.now = 0.0
        self.log: list[c.Command] = []
        self.state = ClusterState()  # the committed state (what a majority holds)
        n = self.rng.choice([3, 3, 5])
        self.hosts = {f"h{i}": Host(f"h{i}", phase=self.rng.random() * HA.heartbeat)
                      for i in range(1, n + 1)}
        self.ids = (f"c{i}" for i in itertools.count())
        self.leader: Leader | None = None
        self.stale: list[Leader] = []  # deposed leaders that have not noticed yet
        self.term = 0
        self.election_at = self.rng.uniform(RAFT["election_min"], RAFT["election_max"])
        for h in self.hosts.values():
            self.commit(c.RegisterHost(id=next(self.ids), name=h.name, raft_addr="x:1",
                                       api_addr="x:2", cpus=8, memory_mib=4096, disk_gib=100,
                                       lease=HA.lease, watchdog=HA.watchdog))
        for i in range(self.rng.randint(3, 8)):
            self.commit(c.CreateVm(id=next(self.ids), name=f"vm{i}", uuid=f"u{i}", vcpus=1,
                                   memory_mib=self.rng.choice([256, 512, 768]),
                                   ha=self.rng.random() < 0.85, priority=self.rng.randint(0, 3)))

    # ---- plumbing -----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        line = f"{self.now:6.2f} {text}"
        self.trace.append(line)
        if self.verbose:
            print(line)

    def commit(self, cmd: c.Command) -> None:
        self.log.append(cmd)
        result = self.state.apply(cmd)
        if self.verbose and result.ok and not isinstance(cmd, c.ObserveVms | c.ClaimLeadership):
            self.say(f"commit {cmd.TYPE} {getattr(cmd, 'name', '')} {result.message}".rstrip())

    def main_group(self) -> set[str]:
        return {h.name for h in self.hosts.values() if h.running and not h.isolated}

    def quorum(self) -> bool:
        return len(self.main_group()) > len(self.hosts) // 2

    def catch_up(self, h: Host) -> None:
        for cmd in self.log[h.applied:]:
            h.replica.apply(cmd)
        h.applied = len(self.log)

    # ---- Raft model ---------------------------------------------------------------------------

    def raft_step(self) -> None:
        group = self.main_group()
        if self.leader is not None and (self.leader.host not in group or not self.quorum()):
            self.say(f"leader {self.leader.host} lost its majority")
            self.stale.append(self.leader)
            self.leader = None
            self.election_at = self.now + self.rng.uniform(RAFT["election_min"],
                                                           RAFT["election_max"])
        if self.leader is None and self.now >= self.election_at and self.quorum():
            self.term += 1
            winner = self.rng.choice(sorted(group))
            self.leader = Leader(winner, self.term, since=self.now, next_cycle=self.now)
            self.say(f"{winner} elected (term {self.term})")
            self.commit(c.ClaimLeadership(id=next(self.ids), term=self.term, leader=winner))
            self.leader.confirmed_at = self.now
        # A deposed leader steps down when it hears the newer term or its fallback runs out.
        self.stale = [s for s in self.stale if self.hosts[s.host].powered and not (
            s.host in group and self.leader is not None)
            and self.now - s.confirmed_at < RAFT["leader_fallback"] + 1.0]
        for h in self.hosts.values():
            if h.name in group:
                self.catch_up(h)

    def leader_step(self) -> None:
        ld = self.leader
        if ld is None or self.now < ld.next_cycle or not self.hosts[ld.host].running:
            return
        ld.next_cycle = self.now + LEADER_INTERVAL
        if self.now - ld.confirmed_at >= HA.confirm_every:
            self.commit(c.ClaimLeadership(id=next(self.ids), term=ld.term, leader=ld.host))
            ld.confirmed_at = self.now
        view = LeaderView(now=self.now, leader_since=ld.since, margin=HA.margin,
                          host_down_after=HA.host_down_after,
                          grant_window=HA.grant_window, last_heard=ld.last_heard,
                          last_granted=ld.last_granted, observed=ld.observed,
                          reported_versions=ld.versions)
        for cmd in plan(self.state, view, ld.term, self.ids, ts=self.now).commands:
            self.commit(cmd)

    # ---- hosts --------------------------------------------------------------------------------

    def leader_for(self, h: Host) -> tuple[Leader, ClusterState] | None:
        """Whom h's heartbeat reaches, and that leader's view of the state."""
        if self.leader is not None and h.name in self.main_group():
            return self.leader, self.state
        for s in self.stale:  # a cut-off or resumed old leader reachable from h
            reachable = s.host == h.name or (not h.isolated and not self.hosts[s.host].isolated)
            if reachable and self.hosts[s.host].running:
                return s, self.hosts[s.host].replica
        return None

    def agent_step(self, h: Host) -> None:
        if not h.running or int((self.now - h.phase) / HA.heartbeat) == int(
                (self.now - DT - h.phase) / HA.heartbeat):
            return
        target = self.leader_for(h)
        if target is not None:
            ld, view = target
            ld.last_heard[h.name] = self.now
            ld.observed[h.name], ld.versions[h.name] = report(
                h.name, h.replica.vms, list(h.domains.values()))
            lease, _ = lease_grant(view, h.name)
            if lease > 0 and ld.fresh(self.now) and ld.term >= h.replica.leader_term:
                ld.last_granted[h.name] = self.now
                h.lease_until = self.now + lease
        lease_now = Lease(h.lease_until, h.agent_started, HA.lease)
        for a in decide_host(h.name, h.replica.vms, list(h.domains.values()), lease_now,
                             self.now, replica_ready=h.applied > 0):
            self.act(h, a.act, a.uuid, a.vm)
        guard = watchdog_guard(h.replica.vms, list(h.domains.values()), lease_now,
                               HA.watchdog, self.now)
        if guard.until is not None:
            h.watchdog_at = guard.until
        elif guard.disarm:
            h.watchdog_at = None

    def act(self, h: Host, act: Act, uuid: str, name: str) -> None:
        if act in (Act.DEFINE_START, Act.START):
            h.domains[uuid] = Domain(uuid, name, Observed.RUNNING, managed=True)
        elif act in (Act.STOP, Act.DESTROY) and uuid in h.domains:
            h.domains[uuid] = Domain(uuid, name, Observed.STOPPED, managed=True)
        elif act is Act.UNDEFINE:
            h.domains.pop(uuid, None)
        self.say(f"{h.name}: {act} {name}")

    def watchdogs(self) -> None:
        for h in self.hosts.values():
            if h.powered and h.watchdog_at is not None and self.now > h.watchdog_at:
                self.say(f"{h.name}: WATCHDOG fired, power off")
                self.power(h, on=False)

    def power(self, h: Host, on: bool) -> None:
        if on:
            h.powered, h.daemon_up, h.paused = True, True, False
            h.lease_until, h.agent_started, h.watchdog_at = None, self.now, None
        else:
            h.powered, h.domains, h.watchdog_at = False, {}, None

    # ---- faults -------------------------------------------------------------------------------

    def fault(self) -> None:
        hosts = sorted(self.hosts.values(), key=lambda x: x.name)
        h = self.rng.choice(hosts)
        kind = self.rng.choice(FAULT_KINDS)
        if kind.startswith("leader_") and self.leader is not None:
            h, kind = self.hosts[self.leader.host], kind.split("_")[1]
            kind = "power_off" if kind == "off" else kind
        if kind == "power_off" and h.powered:
            self.power(h, on=False)
        elif kind == "power_on" and not h.powered:
            self.power(h, on=True)
        elif kind == "pause" and h.powered:
            h.paused = True
        elif kind == "resume":
            h.paused = False
        elif kind == "isolate":
            h.isolated = True
        elif kind == "heal":
            h.isolated = False
        elif kind == "daemon_crash" and h.powered:
            h.daemon_up = False
        elif kind == "daemon_start" and h.powered and not h.daemon_up:
            h.daemon_up, h.lease_until, h.agent_started = True, None, self.now
        elif kind == "vm_crash" and h.powered:
            running = sorted(u for u, d in h.domains.items() if d.state is Observed.RUNNING)
            if running:
                u = self.rng.choice(running)
                h.domains[u] = Domain(u, h.domains[u].name, Observed.CRASHED, managed=True)
        else:
            return
        self.say(f"FAULT {kind} {h.name}")

    def heal_all(self) -> None:
        self.say("HEAL everything")
        for h in self.hosts.values():
            if not h.powered:
                self.power(h, on=True)
            elif not h.daemon_up:
                h.daemon_up, h.lease_until, h.agent_started = True, None, self.now
            h.paused = h.isolated = False

    # ---- invariants ---------------------------------------------------------------------------

    def check(self) -> None:
        where: dict[str, list[str]] = {}
        for h in self.hosts.values():
            if h.powered:
                for d in h.domains.values():
                    if d.state is Observed.RUNNING:
                        where.setdefault(d.name, []).append(h.name)
        for vm, hosts in where.items():
            if len(hosts) > 1:
                raise InvariantBroken(f"I1: {vm} runs on {hosts} at once")
        used: dict[str, int] = {}
        for record in self.state.vms.values():
            if record.host is not None:
                if record.host not in self.state.hosts:
                    raise InvariantBroken(f"I2: {record.name} on unknown host {record.host}")
                if record.wants_to_run:
                    used[record.host] = used.get(record.host, 0) + record.memory_mib
        for host, mib in used.items():
            if mib > self.state.hosts[host].memory_mib:
                raise InvariantBroken(f"I2: {host} overcommitted ({mib} MiB)")

    def check_live(self) -> None:
        for vm in self.state.vms.values():
            if not (vm.ha and vm.state is VmState.STARTED and not vm.error):
                continue
            running = [h.name for h in self.hosts.values() if h.powered and vm.uuid in
                       h.domains and h.domains[vm.uuid].state is Observed.RUNNING]
            if running != [vm.host]:
                raise InvariantBroken(f"liveness: {vm.name} assigned to {vm.host}, "
                                      f"running on {running}")

    # ---- run ----------------------------------------------------------------------------------

    def run(self) -> None:
        healed = False
        faults_until = self.rng.uniform(1.0, 6.0)  # short blips and long outages
        rate = self.rng.uniform(0.03, 0.15)  # faults per step while they happen
        steps = int((faults_until + SETTLE) / DT)
        for _ in range(steps):
            self.now = round(self.now + DT, 6)
            if self.now < faults_until and self.rng.random() < rate:
                self.fault()
            elif self.now >= faults_until and not healed:
                self.heal_all()
                healed = True
            self.raft_step()
            self.leader_step()
            for h in sorted(self.hosts.values(), key=lambda x: x.name):
                self.agent_step(h)
            self.watchdogs()
            self.check()
        self.check_live()


def run_seed(seed: int, verbose: bool = False) -> None:
    sim = Sim(seed, verbose)
    try:
        sim.run()
    except InvariantBroken as exc:
        tail = "\n".join(sim.trace[-40:])
        raise InvariantBroken(f"seed {seed}: {exc}\nreplay: python -m tests.sim.simulator "
                              f"--seed {seed} --verbose\nlast events:\n{tail}") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--schedules", type=int, default=100)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    seeds = [args.seed] if args.seed is not None else range(args.first,
                                                             args.first + args.schedules)
    for seed in seeds:
        try:
            run_seed(seed, args.verbose)
        except InvariantBroken as exc:
            print(exc)
            return 1
    print(f"{len(seeds)} schedules: every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
