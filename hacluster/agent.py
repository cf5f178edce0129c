"""The agent loop, on every host: make this host's hypervisor match the replicated state.

Each cycle lists libvirt's domains, carries out host_plan's actions on this host only, and
hands what it saw to the heartbeat thread, which reports it (with metrics) to the leader
every heartbeat; the leader's answer renews this host's lease. It acts only once the
replica has caught up, so a restarted member never mistakes an empty replica for "delete
everything"; it adopts running VMs the cluster assigns to it.
Without a valid lease it starts no HA VM, and once the lease has run out it hard-stops them
(self-fencing); the watchdog, armed to the lease's end, covers an agent too hung to do so.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from .config import Config
from .core import commands as c
from .core import storage
from .core.host_plan import Act, Action, Domain, decide_host, report, self_fence_plan
from .core.lease import Lease, renewed_until, watchdog_guard
from .core.model import Observed, Vm
from .core.placement import HostMetrics
from .core.state import ClusterState
from .core.validate import text
from .heartbeat import LEADER_WATCH, Beat, Link
from .hypervisor import DiskLocked, HypervisorError
from .metrics import MetricsProbe, disk_total_gib
from .ports import SYSTEM_CLOCK, Clock, Consensus, HypervisorPort, Probe
from .priority import critical
from .raft import Unavailable
from .verdict import run_cycle
from .watchdog import NoWatchdog, Watchdog, WatchdogError

log = logging.getLogger(__name__)
FACTS_REFRESH = 10.0  # seconds between checks of this host's pools (free space), bridges
CHORE_TIMEOUT = 1.0  # seconds a storage report may hold up a cycle
HEARTBEAT_RETRY = 0.1  # seconds before an unanswered heartbeat is first sent again
BEHIND_RETRY = 0.05  # seconds before a cycle whose replica lagged its lease runs again


def retry_in(failures: int, interval: float) -> float:
    """Seconds before the next try at the leader that left `failures` heartbeats in a row
    unanswered: doubling from HEARTBEAT_RETRY up to the heartbeat interval. At a flat 0.1 s,
    48 hosts of a lab whose leader was slow sent it ~480 heartbeats a second, each with its
    probe and watchdog messages, on the machine that leader needed to recover: the storm
    kept it down. A new leader is tried at once (heartbeat_loop), so a lease is renewed as
    soon as before."""
    return min(HEARTBEAT_RETRY * 2.0 ** max(failures - 1, 0), interval)


def _close(a: list[float] | None, b: list[float] | None) -> bool:
    """Whether two [capacity, free] GiB reports are the same for the cluster's purposes
    (free space moves all the time; half a GiB is not worth a log entry)."""
    if a is None or b is None:
        return a is b
    return abs(a[0] - b[0]) < 0.5 and abs(a[1] - b[1]) < 0.5


@dataclass(frozen=True)
class Report:
    """What the last cycle saw, for the heartbeat thread to send."""

    domains: list[Domain]
    observed: dict[str, str]
    versions: dict[str, int]
    errors: dict[str, str]  # VM -> why a start was refused


@dataclass(frozen=True)
class Capacity:
    cpus: int
    memory_mib: int
    disk_gib: int


class Agent:
    def __init__(self, config: Config, raft: Consensus, hypervisor: HypervisorPort,
                 wake: threading.Event, watchdog: Watchdog | None = None,
                 watchdog_error: str = "", clock: Clock = SYSTEM_CLOCK,
                 probe: Probe | None = None) -> None:
        self.config = config
        self.clock = clock
        self.watchdog = watchdog or NoWatchdog()
        self.watchdog_error = watchdog_error  # why the configured watchdog is not counted
        self.lease_until: float | None = None  # monotonic; None: no lease in this process yet
        # The leader's replica revision of the newest lease: no action on an older replica.
        # A lagging one (a learner starved of CPU) could still show a VM assigned here that
        # the cluster has since restarted elsewhere, while the fresh lease says act.
        self.granted_revision = 0
        self.behind = False  # the last cycle's replica was older than that
        self._started = clock.monotonic()
        self._armed = False
        self.stood_down = False  # set when the member halted: see stand_down
        # (uuid, version) that would not start, and libvirt's reason
        self._failed_starts: dict[tuple[str, int], str] = {}
        # (uuid, version) this agent started: found down again at the same version, that is
        # a failure too (a guest that dies at boot), not a start still due
        self._started_vms: set[tuple[str, int]] = set()
        self._report_lock = threading.Lock()
        self._report: Report | None = None
        self._beat_now = threading.Event()
        self.heartbeat_ok = False
        self.last_rtt_ms = -1.0  # the previous heartbeat's round trip, sent with the next
        self.raft = raft
        self.hv = hypervisor
        self.wake = wake
        self.registered = False
        self.last_verdict = ""
        self._stopping_since: dict[str, float] = {}  # uuid -> monotonic time of shutdown()
        self.link: Link | None = None  # to the leader (set by the daemon: heartbeat.GrpcLink)
        self._capacity: Capacity | None = None
        self.probe = probe or MetricsProbe(config.storage_dir)
        self._facts_synced: tuple[object, float] = (None, 0.0)  # (pools+networks, when)

    # ---- facts about this host ------------------------------------------------------------

    def capacity(self) -> Capacity:
        if self._capacity is None:
            cpus, memory_mib = self.hv.node_info()
            o = self.config.capacity
            self._capacity = Capacity(
                cpus=o.cpus or cpus,
                memory_mib=o.memory_mib or memory_mib,
                disk_gib=o.disk_gib if o.disk_gib is not None
                else disk_total_gib(self.config.storage_dir),
            )
        return self._capacity

    def _register(self) -> None:
        cap = self.capacity()
        me = self.config.me
        result = self.raft.propose(c.RegisterHost(
            id=uuid.uuid4().hex, ts=self.clock.time(), name=me.name, raft_addr=me.raft,
            api_addr=me.api, cpus=cap.cpus, memory_mib=cap.memory_mib, disk_gib=cap.disk_gib,
            lease=self.config.ha.lease, libvirt_uri=self.config.migration_uri,
            watchdog=self.config.ha.watchdog if self.watchdog.kind != "none" else 0.0,
            watchdog_error=self.watchdog_error))
        if not result.ok:
            raise Unavailable(f"registration refused: {result.message}")
        self.registered = True
        log.info("registered %s: %d CPUs, %d MiB, %d GiB", me.name, cap.cpus, cap.memory_mib,
                 cap.disk_gib)

    # ---- one cycle --------------------------------------------------------------------------

    def cycle(self) -> str:
        """Run one reconcile cycle and return its one-line verdict."""
        if self.raft.halted:
            return self.raft.halted
        try:
            if not self.registered and self.raft.is_ready():
                self._register()
        except Unavailable as exc:
            return f"not registered: {exc}"
        # A lease answer can overtake the commits it was granted on: until the replica has
        # them, nothing to do but look again soon (next_cycle_in), and cheaply: every host's
        # agent of a 48-host lab, asking libvirt 100 times a second while their replicas
        # caught up with a failover, took the two cores from the leader. A lease that ran
        # out is acted on all the same (self-fencing needs no replica).
        self.behind = self.raft.state.revision < self.granted_revision
        if self.behind and not self.lease_expired():
            return "replica not caught up with its lease: no actions"
        try:
            domains = self.hv.domains()
        except HypervisorError as exc:
            return f"hypervisor unreachable: {exc}"
        state = self.raft.state  # one immutable snapshot for the whole cycle
        self.behind = state.revision < self.granted_revision
        caught_up = self.raft.is_ready() and not self.behind
        vms = self._mine(state, domains)
        self._judge_starts(vms, domains)
        actions = decide_host(self.config.name, vms, domains, self.lease, self.clock.monotonic(),
                              caught_up, self._failed_starts.keys())
        done = [d for d in (self._execute(a, state) for a in actions) if d]
        if actions:
            try:
                domains = self.hv.domains()
            except HypervisorError as exc:
                return f"hypervisor unreachable: {exc}"
        self._publish(domains)
        # Storage chores last, and only while the leader answers (their reports are
        # proposals): the self-fencing and the heartbeat above never wait behind them.
        if self.registered and self.raft.is_ready() and self.heartbeat_ok:
            self._sync_host_facts(state)
            if state.doomed_volumes:
                done += self._delete_volumes(state.doomed_volumes, domains)
        running = sum(1 for d in domains if d.managed and d.state is Observed.RUNNING)
        parts = [f"{running} running", *done]
        if self.lease_expired():
            parts.append("no lease: HA VMs fenced" if not actions else "lease expired")
        if not caught_up:
            parts.append("replica not caught up: no actions")
        if not self.heartbeat_ok:
            parts.append("no leader to heartbeat")
        return "; ".join(parts)

    def _publish(self, domains: list[Domain]) -> None:
        """Hand the heartbeat thread what this cycle saw, and have it sent now."""
        stopped = {d.uuid for d in domains if d.state is not Observed.RUNNING}
        self._stopping_since = {u: t for u, t in self._stopping_since.items()
                                if u not in stopped}
        # Before the replica has caught up its word about VMs would be stale: heartbeats then
        # carry no observations, only renew the lease (a restarted daemon must reach the
        # leader within its lease, however long its journal takes to replay).
        observed, versions = self.observed(domains) if self.raft.is_ready() else ({}, {})
        with self._report_lock:
            self._report = Report(domains, observed, versions, self.start_errors(domains))
        self._beat_now.set()  # the heartbeat thread sends it, then tends the watchdog

    # ---- lease and watchdog ------------------------------------------------------------------

    @property
    def lease(self) -> Lease:
        return Lease(self.lease_until, self._started, self.config.ha.lease)

    def lease_valid(self) -> bool:
        return self.lease.valid(self.clock.monotonic())

    def lease_expired(self) -> bool:
        return self.lease.expired(self.clock.monotonic())

    def _guard(self, domains: list[Domain], starting: Vm | None = None) -> None:
        """Around each heartbeat: keep the watchdog armed to the lease's end while an HA VM
        runs here, stand it down when none does. It lives in the heartbeat thread so that a
        long libvirt call (a live migration) in the cycle does not starve it; the cycle
        calls it too, before it starts a VM (`starting`), so that no HA VM ever runs here
        unguarded, not even for the moment before the next heartbeat."""
        if self.stood_down:
            return  # the daemon is leaving in order: nothing to guard, nothing to re-arm
        if starting is not None:
            domains = [*domains, Domain(starting.uuid, starting.name, Observed.RUNNING, True)]
        guard = watchdog_guard(self._mine(self.raft.state, domains), domains, self.lease,
                               self.config.ha.watchdog, self.clock.monotonic())
        try:
            if guard.until is not None:
                self.watchdog.arm(guard.until)
                self._armed = True
            elif guard.disarm and self._armed:
                self.watchdog.disarm()
                self._armed = False
        except WatchdogError as exc:
            # It cannot fence this host any more: say so to the cluster (register again
            # without it), so the leader never counts on it.
            log.error("watchdog: %s; registering without it", exc)
            self.watchdog, self.watchdog_error = NoWatchdog(), f"arming failed: {exc}"
            self.registered = False
            self.wake.set()

    def _sync_host_facts(self, state: ClusterState) -> None:
        """Keep the cluster's pools defined and running in this host's libvirt and look for
        its networks' bridges, at once when the cluster's pools or networks change and every
        FACTS_REFRESH seconds otherwise; report what this host sees when that differs from
        the replica's record."""
        pools, nets = state.pools, state.networks
        key = (tuple(sorted((p.name, p.type.value, p.path) for p in pools.values())),
               tuple(sorted((n.name, n.bridge) for n in nets.values())))
        last_key, last_at = self._facts_synced
        now = self.clock.monotonic()
        if key == last_key and now - last_at < FACTS_REFRESH:
            return
        try:
            seen, errors = self.hv.sync_pools(pools)
        except HypervisorError as exc:
            log.warning("storage pools: %s", exc)
            return
        try:
            bridges = self.hv.bridges(n.bridge for n in nets.values())
        except HypervisorError as exc:
            log.warning("bridges: %s", exc)
            return
        has = sorted(n.name for n in nets.values() if n.bridge in bridges)
        try:
            cpu: str | None = self.hv.host_cpu()
        except HypervisorError as exc:
            log.warning("host CPU: %s", exc)
            cpu = None  # not reported this time
        self._facts_synced = (key, now)
        me = self.config.name
        host = state.hosts.get(me)
        if all(_close(p.seen.get(me), seen.get(n)) and p.errors.get(me, "") == errors.get(n, "")
               for n, p in pools.items()) and has == sorted(
                   n.name for n in nets.values() if me in n.hosts) and (
                       cpu is None or host is None or host.cpu == cpu):
            return
        try:
            self.raft.propose(c.ObserveHostFacts(
                id=uuid.uuid4().hex, ts=self.clock.time(), host=me, pools=seen, pool_errors=errors,
                networks=has, cpu=cpu), timeout=CHORE_TIMEOUT)
        except Unavailable as exc:
            log.warning("could not report storage pools and networks: %s", exc)
            self._facts_synced = (None, 0.0)  # try again next cycle

    def _delete_volumes(self, doomed: Mapping[str, Mapping[str, str]],
                        domains: list[Domain]) -> list[str]:
        """Delete the volumes of VMs deleted with their disks that are this host's to
        delete, once their domain is gone from here, and tell the cluster."""
        present = {d.uuid for d in domains}
        deleted = []
        for key, volume in sorted(doomed.items()):
            if volume["host"] != self.config.name or volume["uuid"] in present:
                continue
            try:
                self.hv.delete_volume(volume["pool"], volume["volume"])
                deleted.append(key)
            except HypervisorError as exc:
                log.warning("%s", exc)
        if deleted:
            try:
                self.raft.propose(c.VolumesDeleted(id=uuid.uuid4().hex, ts=self.clock.time(),
                                                   host=self.config.name, volumes=deleted),
                                  timeout=CHORE_TIMEOUT)
            except Unavailable as exc:
                log.warning("could not record deleted volumes: %s (will retry)", exc)
        return [f"deleted volume {k}" for k in deleted]

    def _execute(self, action: Action, state: ClusterState) -> str:
        vms = state.vms
        try:
            if action.act in (Act.DEFINE_START, Act.START):
                self._guard([], starting=vms[action.vm])  # guarding: armed to the lease
                # a VM's CPU: the baseline of every host's, as they reported them (core/cpus.py)
                start = self.hv.define_start if action.act is Act.DEFINE_START else self.hv.start
                start(vms[action.vm], state.pools, state.networks,
                      [h.cpu for h in state.hosts.values() if h.cpu])
            elif action.act is Act.ADOPT:
                self.hv.adopt(action.uuid, action.vm)
            elif action.act is Act.STOP:
                return self._stop(action)
            elif action.act is Act.DESTROY:
                self.hv.destroy(action.uuid)
            elif action.act is Act.UNDEFINE:
                self.hv.undefine(action.uuid)
            elif action.act in (Act.MIGRATE, Act.HANDOVER):
                return self._migrate(action, vms[action.vm])
        except (HypervisorError, KeyError) as exc:
            log.warning("%s %s failed: %s", action.act, action.vm, exc)
            vm = vms.get(action.vm)
            if vm is not None and action.act in (Act.DEFINE_START, Act.START):
                # reported as a failure, like a crash: the restart policy decides, except
                # for a disk lock held elsewhere, which no retry can cure
                tag = storage.LOCK_CONFLICT if isinstance(exc, DiskLocked) else ""
                self._failed_starts[(vm.uuid, vm.version)] = text(f"{tag}{exc}", 300)
            return f"{action.act} {action.vm} failed"
        vm = vms.get(action.vm)
        if vm is not None and action.act in (Act.DEFINE_START, Act.START):
            self._started_vms.add((vm.uuid, vm.version))
        log.info("%s %s (%s)", action.act, action.vm, action.reason)
        return f"{action.act} {action.vm}"

    def _migrate(self, action: Action, vm: Vm) -> str:
        """Move the VM to its target, then tell the cluster how it went. A live migration
        that fails leaves it running here, and the error is recorded."""
        target = self.raft.state.hosts.get(vm.migrating_to or "")
        ok, mode, error = True, "cold", ""
        try:
            if action.act is Act.MIGRATE:
                if target is None or not target.libvirt_uri:
                    raise HypervisorError(f"host {vm.migrating_to} has no libvirt URI")
                mode = self.hv.migrate(vm.uuid, target.libvirt_uri)
            else:
                with contextlib.suppress(HypervisorError):
                    self.hv.undefine(vm.uuid)  # a stopped definition, if any
        except HypervisorError as exc:
            ok, error = False, str(exc)
        try:
            self.raft.propose(c.FinishMigration(
                id=uuid.uuid4().hex, ts=self.clock.time(), name=vm.name, source=self.config.name,
                to=vm.migrating_to or "", ok=ok, mode=mode, error=error))
        except Unavailable as exc:
            log.warning("could not record the move of %s: %s (will retry)", vm.name, exc)
        log.info("%s %s to %s: %s", action.act, vm.name, target.name if target else "?",
                 mode if ok else f"failed: {error}")
        return f"{action.act} {vm.name} {mode if ok else 'failed'}"

    def _stop(self, action: Action) -> str:
        """Graceful first; destroy once the guest has ignored it for stop_timeout."""
        since = self._stopping_since.get(action.uuid)
        now = self.clock.monotonic()
        if since is None:
            self._stopping_since[action.uuid] = now
            self.hv.shutdown(action.uuid)
            log.info("shutdown %s (%s)", action.vm, action.reason)
            return f"shutdown {action.vm}"
        if now - since >= self.config.stop_timeout:
            self.hv.destroy(action.uuid)
            del self._stopping_since[action.uuid]
            log.info("destroy %s: ignored shutdown for %.0fs", action.vm, now - since)
            return f"destroy {action.vm}"
        return ""

    # ---- heartbeat ---------------------------------------------------------------------------

    def _judge_starts(self, vms: Mapping[str, Vm], domains: list[Domain]) -> None:
        """Forget starts of versions gone by; a VM this agent started that is down again
        before the cluster ever saw it running has failed (a guest dying at boot), and is
        not started again at that version: the restart policy decides."""
        current = {(vm.uuid, vm.version) for vm in vms.values()}
        self._failed_starts = {k: v for k, v in self._failed_starts.items() if k in current}
        self._started_vms &= current
        down = {d.uuid: d.state for d in domains
                if d.state in (Observed.STOPPED, Observed.CRASHED)}
        for vm in vms.values():
            key = (vm.uuid, vm.version)
            if (key in self._started_vms and vm.observed is Observed.NONE and vm.uuid in down
                    and key not in self._failed_starts):
                self._failed_starts[key] = f"{down[vm.uuid]} right after it was started"

    def _mine(self, state: ClusterState, domains: list[Domain]) -> dict[str, Vm]:
        """The VMs this agent has to consider (every VM of the cluster would do, at the
        cost of a scan of them all per cycle and per heartbeat)."""
        return state.vms_for_host(self.config.name, (d.uuid for d in domains))

    def observed(self, domains: list[Domain]) -> tuple[dict[str, str], dict[str, int]]:
        vms = self._mine(self.raft.state, domains)
        self._judge_starts(vms, domains)
        return report(self.config.name, vms, domains, self._failed_starts.keys())

    def start_errors(self, domains: list[Domain]) -> dict[str, str]:
        """VM -> why libvirt refused to start it at its current version."""
        vms = self._mine(self.raft.state, domains)
        failed = self._failed_starts
        return {vm.name: failed[(vm.uuid, vm.version)] for vm in vms.values()
                if (vm.uuid, vm.version) in failed}

    def _memory_available(self, domains: list[Domain]) -> float | None:
        if self.hv.kind != "test":
            return None  # a real host: psutil knows
        used = sum(d.memory_mib for d in domains if d.state is not Observed.STOPPED)
        return float(max(self.capacity().memory_mib - used, 0))

    def _heartbeat(self) -> bool:
        """Send the last cycle's report; the answer renews the lease."""
        with self._report_lock:
            report = self._report
        if report is None or self.link is None:
            return False
        m = self.probe.sample(self._memory_available(report.domains))
        beat = Beat(self.config.name, HostMetrics(
            cpu_load=m.cpu_load, memory_available_mib=m.memory_available_mib,
            disk_free_gib=m.disk_free_gib, heartbeat_rtt_ms=self.last_rtt_ms),
            report.observed, report.versions, report.errors, self.config.code_version)
        asked = self.clock.monotonic()  # the lease counts from before we asked: ours ends first
        answer = self.link.send(beat)
        if answer is None:
            return False
        self.last_rtt_ms = (self.clock.monotonic() - asked) * 1000
        self.lease_until = renewed_until(self.lease_until, asked, answer.lease_seconds,
                                         answer.term, self.raft.state.leader_term)
        if answer.lease_seconds > 0:
            self.granted_revision = max(self.granted_revision, answer.revision)
        return True

    def beat(self) -> None:
        """One heartbeat, with the watchdog's turn before and after it: before, so that a
        VM this beat reports running is guarded by the time the leader hears of it (the
        leader counts on that: core.reconcile.unreported); after, to carry the renewed lease
        and, renewed or not, to stand the watchdog down once this host fenced itself."""
        try:
            with self._report_lock:
                report = self._report
            if report is not None:
                self._guard(report.domains)
            self.heartbeat_ok = self._heartbeat()
            if report is not None:
                self._guard(report.domains)
        except Exception:
            log.exception("heartbeat failed")
            self.heartbeat_ok = False

    def heartbeat_loop(self, stop: threading.Event) -> None:
        """Heartbeats on their own thread: a cycle busy in libvirt (a migration, a slow
        libvirtd) must not cost the host its lease; nor a host busy with guests (priority.py)."""
        critical(self.config.raft.critical_nice)
        failures = 0
        while not stop.is_set():
            asked = self.raft.leader_addr()
            self.beat()
            failures = 0 if self.heartbeat_ok else failures + 1
            if failures:
                # unanswered: again soon, sooner still once another member leads
                self._wait_retry(asked, retry_in(failures, self.config.heartbeat_interval))
            else:  # answered: the next one is due an interval from now
                self._beat_now.wait(self.config.heartbeat_interval)
            self._beat_now.clear()

    def _wait_retry(self, asked: str | None, seconds: float) -> None:
        until = self.clock.monotonic() + seconds
        while (left := until - self.clock.monotonic()) > 0:
            now = self.raft.leader_addr()
            if now is not None and now != asked:
                return
            if self._beat_now.wait(min(LEADER_WATCH, left)):
                return

    # ---- the loop ----------------------------------------------------------------------------

    def step(self) -> str:
        """One cycle whatever it meets (the loop must survive anything); its verdict logged
        when it changes."""
        self.last_verdict = run_cycle(self.cycle, self.last_verdict, log, "agent")
        return self.last_verdict

    def next_cycle_in(self) -> float:
        """Seconds until the next cycle is due: a heartbeat interval, or sooner to self-fence
        right when the lease runs out (a committed change wakes it earlier)."""
        wait = self.config.heartbeat_interval
        if self.behind:
            wait = min(wait, BEHIND_RETRY)
        if self.lease_until is not None and self.lease_valid():
            wait = min(wait, max(self.lease_until - self.clock.monotonic(), 0.0) + 0.001)
        return wait

    def run(self, stop: threading.Event) -> None:
        threading.Thread(target=self.heartbeat_loop, args=(stop,), name="heartbeat",
                         daemon=True).start()
        while not stop.is_set():
            self.step()
            self.wake.wait(self.next_cycle_in())
            self.wake.clear()

    def stand_down(self, why: str) -> list[str]:
        """This member can no longer follow the cluster (it halted: a command it cannot
        apply, data it cannot trust): stop what the cluster will restart elsewhere (its HA
        VMs, as self-fencing does), then stand the watchdog down, so that leaving is orderly
        rather than a power-off that would take its other VMs too. What it stopped."""
        stopped = []
        self.stood_down = True  # the heartbeat thread re-arms nothing from now on
        try:
            for action in self_fence_plan(self.raft.state.vms, self.hv.domains()):
                self.hv.destroy(action.uuid)
                stopped.append(action.vm)
        except HypervisorError as exc:
            # its HA VMs may still run: the watchdog stays armed and will fence the host
            log.critical("%s; could not stop the HA VMs (%s): the watchdog stays armed", why,
                         exc)
            return stopped
        log.critical("%s; stopped its HA VMs (%s) and stood the watchdog down", why,
                     ", ".join(stopped) or "none ran here")
        self.watchdog.disarm()
        self._armed = False
        return stopped

    def close(self) -> None:
        self.watchdog.close()
