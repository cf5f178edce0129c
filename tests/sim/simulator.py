"""Deterministic simulation of a whole cluster, running production's loops under a seeded
random fault schedule.

What runs is what runs in haclusterd: each host's `Agent` (its cycle, its heartbeat, its
watchdog guard), each member's `LeaderLoop` (the claim barrier, the cycle, the heartbeat answer
with its lease grant), `LiveState`, `FenceRunner`, `ClusterState.apply` on every replica and
core.lease's arithmetic. Around them, through the ports (tests/sim/fakes.py): a virtual clock,
a network (hosts cut off, paused, powered off), in-memory hypervisors and watchdogs, fence
agents that really power a host off, and a Raft model (a majority elects a leader after an
election timeout; a cut-off or paused leader believes in itself until it notices, and may
still grant leases while its last proof of a majority is fresh, as the real one may).

Both timing profiles run (even seeds: fast, odd seeds: safe). Checked after every step, against
the hypervisors and the network rather than any daemon's word:
  I1  no VM runs on two hosts at once;
  I2  the committed state never puts a VM on an unknown host nor overcommits a host;
  I3  a lease is granted only by a leader that held a majority within grant_window;
  I4  an HA VM starts only on a host holding a lease so granted (no start outside the
      quorate partition, none after its lease ran out);
  I5  no loop raises (an error logged by an agent or leader cycle is a failure);
  I6  no host is fenced by lease before the last lease delivered to it ran out;
and once every fault has healed: every started HA VM runs on exactly its host, and every
member's replica equals the committed state.

    python -m tests.sim.simulator --seed 1234 --verbose     # replay one schedule
    python -m tests.sim.simulator --schedules 1000 --workers 2   # a batch, on 2 cores
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import heapq
import itertools
import logging
import multiprocessing
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hacluster.agent import Agent
from hacluster.config import CapacityOverride, Config, Member
from hacluster.core import commands as c
from hacluster.core.host_plan import Domain
from hacluster.core.model import HostStatus, Observed, Vm, VmState
from hacluster.core.state import ClusterState, Result
from hacluster.core.timing import PROFILES, RAFT_FOR_PROFILE, HaTimings
from hacluster.fencing import FenceRunner
from hacluster.heartbeat import Answer, Beat
from hacluster.leader import LeaderLoop
from hacluster.raft import Unavailable
from hacluster.watchdog import NoWatchdog

from .fakes import FixedProbe, SimClock, SimHypervisor, SimLink, SimRaft, SimWatchdog

DT = 0.05  # the simulator's step; loops run when their own schedule says they are due
LEADER_INTERVAL = 0.1
REPLICA_LAG = 0.3  # seconds: the most a follower's or learner's replica applies late
FENCE_DELAY = (0.2, 1.5)  # how long a fence agent takes; how long a fenced host is off
FAULT_KINDS = ["power_off", "power_on", "pause", "resume", "isolate", "heal", "daemon_crash",
               "daemon_start", "vm_crash", "leader_off", "leader_isolate", "maintenance",
               "confirm_fenced"]


class InvariantBroken(AssertionError):
    pass


def profile_of(seed: int) -> str:
    return "fast" if seed % 2 == 0 else "safe"


@dataclass
class Claim:
    """A member that believes it leads: elected in `term`, last sure of a majority then."""

    host: str
    term: int
    confirmed_at: float


@dataclass
class Host:
    name: str
    watchdog: SimWatchdog = field(default_factory=SimWatchdog)
    powered: bool = True
    paused: bool = False
    daemon_up: bool = True
    isolated: bool = False
    domains: dict[str, Domain] = field(default_factory=dict)  # the hypervisor: uuid -> domain
    replica: ClusterState = field(default_factory=ClusterState)  # on disk: outlives crashes
    applied: int = 0  # log entries applied to the replica
    lag: float = 0.0  # its replica applies an entry this long after it commits (starved)
    ready: bool = False  # caught up since the daemon started
    known_term: int = 0
    agent: Agent | None = None
    leader: LeaderLoop | None = None
    leading: bool = False  # its leader loop took over (claim committed)
    next_cycle: float = 0.0
    next_beat: float = 0.0
    next_leader: float = 0.0
    verdicts: tuple[str, str] = ("", "")  # the agent's and the leader's last (--verbose)

    @property
    def running(self) -> bool:  # the daemon executes
        return self.powered and self.daemon_up and not self.paused


class LoopErrors(logging.Handler):
    """I5: the loops log an exception they survived; the simulator counts it a failure."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


class Sim:
    def __init__(self, seed: int, verbose: bool = False, setup: Setup | None = None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.verbose = verbose
        setup = setup or random_setup(self.rng, seed)
        self.setup = setup
        self.profile = setup.profile
        self.ha: HaTimings = PROFILES[self.profile]
        self.raft_timing = RAFT_FOR_PROFILE[self.profile]
        self.trace: list[str] = []
        self.clock = SimClock()
        self.log: list[c.Command] = []
        self.state = ClusterState()  # the committed state (what a majority holds)
        names = [f"h{i}" for i in range(1, setup.hosts + 1)]
        self.members = tuple(Member(name, raft=f"{name}:1", api=f"{name}:2", fence=(
            ("sim-fence", name) if name in setup.fence_agents else ()), peer=f"{name}:4",
            web=f"{name}:3") for name in names)
        # Replicas lag (a learner starved of CPU applies late), drawn apart from the schedule's
        # own randomness so that a seed's faults stay what they were: the leader's own never
        # (it applies at commit), every other's up to REPLICA_LAG.
        lags = random.Random(seed * 7919 + 1)
        self.hosts = {name: Host(name, lag=dict(setup.lags).get(name, 0.0) if setup.lags else
                                 lags.choice((0.0, lags.uniform(0, REPLICA_LAG))))
                      for name in names}
        self.log_at: list[float] = []  # when each entry committed
        self.ids = (f"c{i}" for i in itertools.count())
        self.current: Claim | None = None  # the leader a majority follows
        self.stale: list[Claim] = []  # deposed leaders that have not noticed yet
        self.term = 0
        self.election_at = self.rng.uniform(self.raft_timing["election_min"],
                                            self.raft_timing["election_max"])
        self.jobs: list[tuple[float, int, Callable[[], None]]] = []  # (due, seq, job)
        self.job_seq = itertools.count()
        self.grants: dict[str, float] = {}  # host -> last lease grant delivered to it (I3)
        self.errors = LoopErrors()
        self.checked = -1  # log length at the last check of I2
        self.broken: list[str] = []  # found inside a loop's call, raised at the next check
        self.struck: set[str] = set()  # hosts a fault was aimed at (scenarios judge by them)
        for h in self.hosts.values():
            self.start_daemon(h)
        if setup.policy:
            self.commit(c.SetPolicy(id=next(self.ids), changes=dict(setup.policy)))
        for vm in setup.vms:
            self.commit(c.CreateVm(id=next(self.ids), uuid=f"u-{vm['name']}", vcpus=1, **vm))

    @property
    def now(self) -> float:
        return self.clock.now

    # ---- plumbing -----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        line = f"{self.now:6.2f} {text}"
        self.trace.append(line)
        if self.verbose:
            print(line)

    def config(self, name: str) -> Config:
        return Config(name=name, members=self.members, secret="sim", data_dir="/nonexistent",
                      libvirt_uri=f"sim://{name}", storage_dir="/nonexistent",
                      capacity=CapacityOverride(cpus=8, memory_mib=4096, disk_gib=100),
                      ha=self.ha, profile=self.profile)

    def start_daemon(self, h: Host) -> None:
        """A fresh haclusterd: new loops, the replica from disk, not caught up yet."""
        config = self.config(h.name)
        raft = SimRaft(self, h)
        index = int(h.name[1:]) - 1
        load = self.setup.cpu_load[index] if self.setup.cpu_load else 0.1
        watchdog = NoWatchdog() if h.name in self.setup.no_watchdog else h.watchdog
        h.agent = Agent(config, raft, SimHypervisor(self, h), threading.Event(), watchdog,
                        clock=self.clock, probe=FixedProbe(load))
        h.agent.link = SimLink(self, h)
        fencer = FenceRunner(config, self.clock, spawn=self.spawn, call=self.fence)
        h.leader = LeaderLoop(config, raft, threading.Event(), interval=LEADER_INTERVAL,
                              clock=self.clock, fencer=fencer)
        h.daemon_up, h.ready, h.leading = True, False, False
        self.stale = [s for s in self.stale if s.host != h.name]  # it restarts a follower
        phase = self.rng.random() * self.ha.heartbeat
        h.next_cycle = h.next_beat = h.next_leader = self.now + phase

    def commit(self, cmd: c.Command) -> Result:
        self.log.append(cmd)
        self.log_at.append(self.now)
        result = self.state.apply(cmd)
        for sub, res in zip(getattr(cmd, "commands", None) or (cmd,), result.parts or (result,),
                            strict=False):
            if isinstance(sub, c.FenceHost) and res.ok and sub.by == "lease+watchdog":
                # I6: judged by the grants the network delivered, not the leader's records
                granted = self.grants.get(sub.name)
                if granted is not None and self.now < granted + self.ha.lease:
                    self.broken.append(f"I6: {sub.name} fenced by lease at {self.now:.2f}, "
                                       f"its lease granted at {granted:.2f} still ran")
        if self.verbose and result.ok and not isinstance(cmd, c.ObserveVms | c.ClaimLeadership):
            name = getattr(cmd, "name", "") or ",".join(
                f"{s.TYPE} {getattr(s, 'name', '')}" for s in getattr(cmd, "commands", ()))
            self.say(f"commit {cmd.TYPE} {name} {result.message}".rstrip())
        return result

    def group(self) -> set[str]:
        """The hosts that can talk to one another and execute: the would-be majority."""
        return {h.name for h in self.hosts.values() if h.running and not h.isolated}

    def quorum(self) -> bool:
        return len(self.group()) > len(self.hosts) // 2

    def reachable(self, a: str, b: str) -> bool:
        return a == b or not (self.hosts[a].isolated or self.hosts[b].isolated)

    def catch_up(self, h: Host, lagging: bool = False) -> None:
        """Apply what it lacks to a fork and publish that, as raft.RaftNode does: a state a
        loop holds never changes under it (DESIGN rule 8). Lagging: only what committed at
        least its lag ago."""
        upto = bisect.bisect_right(self.log_at, self.now - h.lag) if lagging else len(self.log)
        if h.applied >= upto:
            return
        replica = h.replica.fork()
        for cmd in self.log[h.applied:upto]:
            replica.apply(cmd)
        h.replica, h.applied = replica, upto

    def spawn(self, name: str, job: Callable[[], None]) -> None:
        heapq.heappush(self.jobs, (self.now + self.rng.uniform(*FENCE_DELAY),
                                   next(self.job_seq), job))

    def fence(self, host: str, argv: Sequence[str]) -> bool:
        """A fence agent (out of band, like IPMI's `reboot`): the host is off at once and boots
        again a while later; the agent fails now and then."""
        if self.rng.random() < 0.2:
            self.say(f"fence agent for {host} failed")
            return False
        h = self.hosts[host]
        if h.powered:
            self.say(f"FENCE {host}: reset by its fence agent")
            self.reset(h)
        return True

    # ---- the Raft model (what SimRaft reads) --------------------------------------------------

    def leadership_of(self, host: str) -> Claim | None:
        h = self.hosts[host]
        if not h.running:
            return None
        if self.current is not None and self.current.host == host:
            return self.current
        return next((s for s in self.stale if s.host == host), None)

    def leader_seen_by(self, host: str) -> str | None:
        """Whom this member's Raft names as leader."""
        if self.current is not None and host in self.group():
            return self.current.host
        for s in self.stale:  # a cut-off or resumed old leader that this host still hears
            if self.reachable(host, s.host) and self.hosts[s.host].running:
                return s.host
        return None

    def propose(self, host: str, cmd: c.Command) -> Result:
        if self.current is None or host not in self.group():
            raise Unavailable(f"{host}: no leader with a majority reachable")
        result = self.commit(cmd)
        self.catch_up(self.hosts[host])  # the proposer's answer comes from its own apply
        return result

    def raft_step(self) -> None:
        group = self.group()
        if self.current is not None and (self.current.host not in group or not self.quorum()):
            self.say(f"leader {self.current.host} lost its majority")
            self.stale.append(self.current)
            self.current = None
            self.election_at = self.now + self.rng.uniform(self.raft_timing["election_min"],
                                                           self.raft_timing["election_max"])
        if self.current is None and self.now >= self.election_at and self.quorum():
            self.term += 1
            winner = self.rng.choice(sorted(group))
            self.current = Claim(winner, self.term, confirmed_at=self.now)
            self.say(f"{winner} elected (term {self.term})")
        if self.current is not None:
            self.current.confirmed_at = self.now  # the append-entries round trips
        # A deposed leader steps down when it hears the newer term or its fallback runs out.
        fallback = self.raft_timing["leader_fallback"]
        self.stale = [s for s in self.stale if self.hosts[s.host].powered and not (
            s.host in group and self.current is not None)
            and self.now - s.confirmed_at < fallback + 1.0]
        if self.current is not None:
            for name in group:
                h = self.hosts[name]
                self.catch_up(h, lagging=name != self.current.host)
                h.ready, h.known_term = True, self.term

    # ---- the heartbeat network (what SimLink reads) -------------------------------------------

    def deliver(self, host: str, beat: Beat) -> Answer | None:
        target = self.leader_seen_by(host)
        if target is None or not self.reachable(host, target):
            return None
        t = self.hosts[target]
        if not (t.running and t.leading and t.leader is not None and t.leader.active):
            if t.running and t.leader is not None and self.leadership_of(target) is not None:
                t.leader.heard(beat, self.now, granted=False)  # claim pending: refused, heard
            return None
        answer = t.leader.answer(beat)
        if answer.lease_seconds > 0:
            # I3: judged by what the network knows, not by what the leader believes
            claim = self.leadership_of(target)
            majority_at = float("-inf") if claim is None else (
                self.now if claim is self.current else claim.confirmed_at)
            if self.now - majority_at >= self.ha.grant_window:
                self.broken.append(f"I3: {target} granted {host} a lease "
                                   f"{self.now - majority_at:.2f}s after its last majority")
            self.grants[host] = self.now
        return answer

    # ---- hosts --------------------------------------------------------------------------------

    def host_step(self, h: Host) -> None:
        if not h.running:
            return
        assert h.agent is not None and h.leader is not None
        self.supervise_leader(h)
        if self.now >= h.next_cycle:
            verdict = h.agent.step()
            h.next_cycle = self.now + h.agent.next_cycle_in()
            # its report goes out on the heartbeat thread a moment later (a pause may fall
            # in between: what runs here must be guarded without waiting for that beat)
            h.next_beat = min(h.next_beat, self.now + DT)
            if self.verbose and verdict != h.verdicts[0]:
                self.say(f"{h.name} agent: {verdict}")
                h.verdicts = (verdict, h.verdicts[1])
        if self.now >= h.next_beat:
            h.agent.beat()
            h.next_beat = self.now + self.ha.heartbeat
        if h.leading and self.now >= h.next_leader:
            verdict = h.leader.step()
            h.next_leader = self.now + h.leader.next_cycle_in()
            if self.verbose and verdict != h.verdicts[1]:
                self.say(f"{h.name} leader: {verdict}")
                h.verdicts = (h.verdicts[0], verdict)

    def supervise_leader(self, h: Host) -> None:
        """daemon._supervise_leader: start the leader loop on winning, stop it on losing."""
        assert h.leader is not None
        leading = self.leadership_of(h.name) is not None
        h.leading = h.leading and h.leader.active  # its thread ends once it saw it lost
        if leading and not h.leading:
            h.leading = h.leader.begin()
            h.next_leader = self.now
        elif not leading and h.leading:
            h.leader.stop()
            h.leading = False

    def started(self, h: Host, vm: Vm) -> None:
        """I4: an HA VM starts only under a lease from a leader that held a majority."""
        self.say(f"{h.name}: start {vm.name}")
        if not vm.ha or vm.state is VmState.IGNORED:
            return
        granted = self.grants.get(h.name)
        if granted is None or self.now >= granted + self.ha.lease:
            # said at the step's check: raised here, the agent's cycle would swallow it
            self.broken.append(f"I4: {h.name} started {vm.name} with no lease "
                               f"(last grant {granted})")

    def run_jobs(self) -> None:
        while self.jobs and self.jobs[0][0] <= self.now:
            heapq.heappop(self.jobs)[2]()

    def watchdogs(self) -> None:
        for h in self.hosts.values():
            deadline = h.watchdog.deadline
            if h.powered and deadline is not None and self.now > deadline:
                self.say(f"{h.name}: WATCHDOG fired, reset")
                self.reset(h)

    def reset(self, h: Host) -> None:
        """What a watchdog or a fence agent does: off at once, booting again a while later."""
        self.power(h, on=False)
        self.spawn(f"boot-{h.name}", lambda: self.power(h, on=True) if not h.powered else None)

    def power(self, h: Host, on: bool) -> None:
        if on:
            h.powered, h.paused = True, False
            h.watchdog.deadline = None
            self.start_daemon(h)
        else:
            h.powered, h.domains, h.watchdog.deadline = False, {}, None
            h.daemon_up, h.leading = False, False

    # ---- faults -------------------------------------------------------------------------------

    def fault(self) -> None:
        hosts = sorted(self.hosts.values(), key=lambda x: x.name)
        h = self.rng.choice(hosts)
        kind = self.rng.choice(FAULT_KINDS)
        if kind.startswith("leader_") and self.current is not None:
            h, kind = self.hosts[self.current.host], kind.split("_")[1]
            kind = "power_off" if kind == "off" else kind
        self.inflict(kind, h)

    def inflict(self, kind: str, h: Host) -> None:
        """One fault (or an operator's act: maintenance) on one host, if it applies now."""
        if kind not in ("resume", "heal", "power_on", "daemon_start", "heal_all"):
            self.struck.add(h.name)
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
            h.daemon_up, h.leading = False, False
        elif kind == "daemon_start" and h.powered and not h.daemon_up:
            self.start_daemon(h)
        elif kind == "vm_crash" and h.powered:
            running = sorted(u for u, d in h.domains.items() if d.state is Observed.RUNNING)
            if running:
                u = self.rng.choice(running)
                d = h.domains[u]
                h.domains[u] = Domain(u, d.name, Observed.CRASHED, True, d.memory_mib)
        elif kind == "maintenance" and self.quorum() and h.name in self.state.hosts:
            # an operator, through any member of the majority
            on = not self.state.hosts[h.name].maintenance
            self.commit(c.SetMaintenance(id=next(self.ids), ts=self.clock.time(), name=h.name,
                                         on=on))
        elif kind == "confirm_fenced" and self.quorum() and not h.powered and (
                record := self.state.hosts.get(h.name)) is not None \
                and record.status is HostStatus.DOWN:
            # an operator who checked that the host is off vouches for it (only truthfully)
            self.commit(c.ConfirmFenced(id=next(self.ids), ts=self.clock.time(), name=h.name))
        elif kind == "heal_all":
            self.heal_all()
        else:
            return
        self.say(f"FAULT {kind} {h.name}")

    def heal_all(self) -> None:
        self.say("HEAL everything")
        for h in self.hosts.values():
            if not h.powered:
                self.power(h, on=True)
            elif not h.daemon_up:
                self.start_daemon(h)
            h.paused = h.isolated = False
            record = self.state.hosts.get(h.name)
            if record is not None and record.maintenance:  # the operator ends it
                self.commit(c.SetMaintenance(id=next(self.ids), ts=self.clock.time(),
                                             name=h.name, on=False))

    # ---- invariants ---------------------------------------------------------------------------

    def check(self) -> None:
        if self.broken:
            raise InvariantBroken(self.broken[0])
        if self.errors.records:
            raise InvariantBroken(f"I5: a loop failed: {self.errors.records[0]}")
        where: dict[str, list[str]] = {}
        for h in self.hosts.values():
            if h.powered:
                for d in h.domains.values():
                    if d.state is Observed.RUNNING:
                        where.setdefault(d.name, []).append(h.name)
        for vm, hosts in where.items():
            if len(hosts) > 1:
                raise InvariantBroken(f"I1: {vm} runs on {hosts} at once")
        if self.checked == len(self.log):
            return  # I2 is about the committed state: unchanged since the last check
        self.checked = len(self.log)
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
        for h in self.hosts.values():
            if h.applied != len(self.log):
                raise InvariantBroken(f"convergence: {h.name} applied {h.applied} of "
                                      f"{len(self.log)} entries")
        # apply is deterministic (tests/core/test_replay.py); one member's whole state is
        # compared per schedule, a different one each seed, to keep schedules cheap
        h = self.hosts[sorted(self.hosts)[self.seed % len(self.hosts)]]
        if h.replica.to_dict() != self.state.to_dict():
            raise InvariantBroken(f"convergence: {h.name}'s replica differs from the "
                                  "committed state")

    # ---- run ----------------------------------------------------------------------------------

    def run(self) -> None:
        scale = self.ha.lease / PROFILES["fast"].lease  # the safe profile's times are longer
        settle = 5.0 * scale  # after the last fault heals, every HA VM must run again by then
        healed = False
        faults_until = self.rng.uniform(1.0, 6.0) * scale  # short blips and long outages
        rate = self.rng.uniform(0.03, 0.15) / scale  # faults per step while they happen
        steps = int((faults_until + settle) / DT)
        with self.loops_watched():
            for _ in range(steps):
                self.clock.now = round(self.now + DT, 6)
                if self.now < faults_until and self.rng.random() < rate:
                    self.fault()
                elif self.now >= faults_until and not healed:
                    self.heal_all()
                    healed = True
                if self.now >= faults_until + settle - scale:  # the last second: no more
                    for h in self.hosts.values():  # lag, so that what is judged has arrived
                        h.lag = 0.0
                self.step()
            self.raft_step()  # what the last step committed reaches every member
            self.check_live()

    def step(self) -> None:
        """Everything that happens in one DT, in a fixed order; then the invariants."""
        self.raft_step()
        self.run_jobs()
        for name in sorted(self.hosts):
            self.host_step(self.hosts[name])
        self.watchdogs()
        self.check()

    @contextlib.contextmanager
    def loops_watched(self) -> Iterator[None]:
        """The loops' errors counted (I5), their chatter (which costs time) silenced."""
        logger = logging.getLogger("hacluster")
        level = logger.level
        logger.setLevel(logging.ERROR)
        logger.addHandler(self.errors)
        try:
            yield
        finally:
            logger.removeHandler(self.errors)
            logger.setLevel(level)

    def play(self, events: Sequence[tuple[float, str, str]], until: float) -> None:
        """A scenario's timed events: (time, fault kind, host name | "leader" | "host of
        VM"); the invariants hold after every step, as in the random schedules."""
        pending = sorted(events)
        with self.loops_watched():
            while self.now < until:
                self.clock.now = round(self.now + DT, 6)
                while pending and pending[0][0] <= self.now:
                    _, kind, target = pending.pop(0)
                    self.inflict(kind, self.hosts[self.resolve(target)])
                self.step()

    def resolve(self, target: str) -> str:
        if target == "leader":
            assert self.current is not None, "no leader to aim at"
            return self.current.host
        if target.startswith("host of "):
            vm = self.state.vms[target.removeprefix("host of ")]
            assert vm.host is not None, f"{vm.name} has no host yet"
            return vm.host
        return target


@dataclass(frozen=True)
class Setup:
    """A cluster to simulate: its timing profile, hosts (h1..hN), which have fence agents,
    and the VMs created before anything starts (CreateVm fields)."""

    profile: str
    hosts: int
    fence_agents: frozenset[str]
    vms: tuple[dict[str, Any], ...]
    no_watchdog: frozenset[str] = frozenset()  # fenced only by a fence agent or an operator
    cpu_load: tuple[float, ...] = ()  # each host's, as its probe reports (default 0.1)
    policy: tuple[tuple[str, float], ...] = ()  # SetPolicy changes made before anything runs
    lags: tuple[tuple[str, float], ...] = ()  # replicas' lags (Host.lag); none given: drawn


def random_setup(rng: random.Random, seed: int) -> Setup:
    n = rng.choice([3, 3, 5])
    fenced = frozenset(f"h{i}" for i in range(1, n + 1) if rng.random() < 0.4)
    vms = tuple({"name": f"vm{i}", "memory_mib": rng.choice([256, 512, 768]),
                 "ha": rng.random() < 0.85, "priority": rng.randint(0, 3)}
                for i in range(rng.randint(3, 8)))
    no_watchdog = frozenset(f"h{i}" for i in range(1, n + 1) if rng.random() < 0.15)
    loads = tuple(rng.choice([0.05, 0.1, 0.9]) for _ in range(n))
    # half the schedules balance automatically (moves of their own, on uneven CPU loads)
    policy = (("balance_mode", 2), ("balance_interval", 5), ("migration_cooldown", 0)) \
        if rng.random() < 0.5 else ()
    return Setup(profile_of(seed), n, fenced, vms, no_watchdog, loads, policy)


def run_seed(seed: int, verbose: bool = False) -> None:
    sim = Sim(seed, verbose)
    try:
        sim.run()
    except InvariantBroken as exc:
        tail = "\n".join(sim.trace[-40:])
        raise InvariantBroken(f"seed {seed} ({sim.profile}): {exc}\nreplay: python -m "
                              f"tests.sim.simulator --seed {seed} --verbose\n"
                              f"last events:\n{tail}") from None


def run_batch(seeds: Sequence[int]) -> str | None:
    """The first failure among these seeds, or None (runs in a worker process)."""
    logging.getLogger("hacluster").propagate = False  # I5 reports what the loops log
    for seed in seeds:
        try:
            run_seed(seed)
        except InvariantBroken as exc:
            return str(exc)
    return None


def run_parallel(seeds: Sequence[int], workers: int, chunk: int = 50) -> str | None:
    """Seeds over `workers` processes (fresh interpreters: no state shared with the caller)."""
    return run_within(seeds, workers, float("inf"), len(seeds), chunk)[0]


def run_within(seeds: Sequence[int], workers: int, seconds: float, at_least: int,
               chunk: int = 50) -> tuple[str | None, int]:
    """The first failure and how many seeds ran: in order, over `workers` processes, no new
    chunk begun after `seconds` once `at_least` have run (a slow machine runs fewer)."""
    deadline = time.monotonic() + seconds
    chunks = [seeds[i:i + chunk] for i in range(0, len(seeds), chunk)]
    ran = 0
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        running: deque[tuple[Future[str | None], int]] = deque()
        while chunks or running:
            late = time.monotonic() > deadline and ran + sum(n for _, n in running) >= at_least
            while chunks and len(running) < 2 * workers and not late:
                part = chunks.pop(0)
                running.append((pool.submit(run_batch, part), len(part)))
            if not running:
                break
            future, n = running.popleft()
            if (failure := future.result()) is not None:
                return failure, ran + n
            ran += n
    return None, ran


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--schedules", type=int, default=100)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--workers", type=int, default=1, help="processes to spread seeds over")
    args = ap.parse_args()
    logging.getLogger("hacluster").propagate = False  # I5 reports what they log
    seeds = [args.seed] if args.seed is not None else range(args.first,
                                                             args.first + args.schedules)
    started = time.perf_counter()
    if args.workers > 1:
        failure = run_parallel(list(seeds), args.workers)
        if failure is not None:
            print(failure)
            return 1
    for seed in seeds if args.workers <= 1 else ():
        try:
            run_seed(seed, args.verbose)
        except InvariantBroken as exc:
            print(exc)
            return 1
    took = time.perf_counter() - started
    print(f"{len(seeds)} schedules: every invariant held ({len(seeds) / took:.0f} per second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
