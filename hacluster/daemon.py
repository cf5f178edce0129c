"""haclusterd: wires the Raft member, the libvirt agent, the leader loop and the gRPC API.

Stopping the daemon (SIGTERM) never stops VMs: they live in the host's libvirtd and are
adopted again when the daemon comes back.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType

from . import config as cfg
from .agent import Agent
from .alarming import AlarmEvaluator, Tolerance
from .api import ApiServer
from .auth import Authenticator
from .core.commands import Batch, Command
from .core.events import describe
from .core.host_plan import concerns_host
from .core.reconcile import concerns_leader
from .core.state import ClusterState, Result
from .eventlog import EventLog
from .heartbeat import GrpcLink
from .history import Sampler
from .hypervisor import DomainStats, Hypervisor, HypervisorError
from .joining import NotAMember, fresher, starting_config
from .leader import LeaderLoop
from .membership import Keeper, Membership
from .notify import sd_notify
from .peers import Peers
from .raft import Downgrade, RaftNode, wipe
from .raftproc import RaftProcess
from .raftstore import StorageError
from .serial_console import host_console
from .service import ClusterService, MemberService
from .watchdog import WatchdogError, open_watchdog
from .web.feed import ChangeFeed
from .web.routes import Routes
from .web.server import WebServer

log = logging.getLogger("haclusterd")

# Exit statuses systemd must not answer with a restart (RestartPreventExitStatus=2 3 4):
EXIT_CONFIG = 2  # a bad configuration file
EXIT_HALTED = 3  # met a command it cannot apply, or a downgrade: run the newer code
EXIT_STORAGE = 4  # its data cannot be trusted: wipe it and rejoin (README)


class Daemon:
    def __init__(self, config: cfg.Config, stop_event: threading.Event | None = None) -> None:
        self.config = config
        self.stop_event = stop_event or threading.Event()
        # Created before the Raft member: its tick thread may apply the journal at once.
        self.wake_agent = threading.Event()
        self.wake_leader = threading.Event()
        self.events = EventLog()
        self.feed = ChangeFeed(max_streams=config.api.streams)
        self.membership = Membership(config, lambda: self.raft.state)
        self.raft = (RaftProcess if config.raft.process else RaftNode)(
            config.me.raft, [m.raft for m in config.peers if m.voter], config.data_dir,
            config.secret, config.raft, on_applied=self._on_applied,
            previous_secrets=config.previous_secrets, code_version=config.code_version,
            voter=config.me.voter)
        self.hypervisor = Hypervisor(config.libvirt_uri, on_event=self.wake_agent.set,
                                     guests=config.guests)
        self.leader = LeaderLoop(config, self.raft, self.wake_leader)
        watchdog, watchdog_error = open_watchdog(config.watchdog)
        if watchdog_error:
            log.error("watchdog: %s; this host registers without one (only a fence agent or "
                      "an operator can fence it)", watchdog_error)
        self.agent = Agent(config, self.raft, self.hypervisor, self.wake_agent, watchdog,
                           watchdog_error)
        self.peers = Peers(config, self.membership)
        self.agent.link = GrpcLink(self.peers, self.raft, min(1.0, config.ha.lease / 2))
        service = ClusterService(config, self.raft, self.leader, self.peers)
        service.inspect = self.hypervisor.inspect
        service.console = host_console(self.hypervisor, config.name)
        members = MemberService(config, self.raft, self.leader, service.monitor,
                                self.membership)
        members.inspect, members.console = service.inspect, service.console
        auth = Authenticator(lambda: self.raft.state)
        self.api = ApiServer(config, service, members, self.events, auth,
                             member_port=not isinstance(self.raft, RaftProcess))
        if isinstance(self.raft, RaftProcess):  # its process answers heartbeats too
            self.leader.forwarded = True
            self.raft.serve_members(config, self.api.forwarded, self.leader.heard,
                                    lambda until: self.leader.live.heard(until))
        self.sampler = Sampler(service.monitor, self.hypervisor, self._test_host_memory)
        tolerance = Tolerance()  # the dashboard's and the alarms' figure, computed once
        self.alarms = AlarmEvaluator(config, self.raft, self.leader, tolerance,
                                     self.membership)
        self.leader_changes = 0  # seen by this member (for /metrics)
        self.web = WebServer(config, auth, self.feed, lambda server: Routes(
            server, service, self.raft, self.events, self._local_counts, tolerance).table())

    def _local_counts(self) -> dict[str, float]:
        return {"leader_changes": self.leader_changes, "web_streams": len(self.feed.streams),
                "event_streams": self.events.streams}

    def _test_host_memory(self, domains: dict[str, DomainStats]) -> tuple[float, float] | None:
        """A test-driver host is not this machine: its memory in use is its domains'."""
        if self.hypervisor.kind != "test":
            return None
        used = sum(d.memory_kib for d in domains.values()) / 1024
        return used, float(self.agent.capacity().memory_mib)

    def _on_applied(self, cmd: Command, result: Result, state: ClusterState) -> None:
        """Runs in the Raft tick thread: only wake the loops that have work, never block."""
        self.feed.note(cmd, result)
        pairs = list(zip(cmd.commands, result.parts, strict=False)) \
            if isinstance(cmd, Batch) else [(cmd, result)]
        for sub, res in pairs:
            for line in describe(sub, res, state):
                self.events.add(sub.ts, sub.TYPE, line)
            if not res.ok:
                continue
            if concerns_host(sub, res, state, self.config.name):
                self.wake_agent.set()
            if concerns_leader(sub):
                self.wake_leader.set()

    def run(self) -> int:
        self.api.start()
        self.web.start()
        agent_thread = threading.Thread(target=self.agent.run, args=(self.stop_event,),
                                         name="agent", daemon=True)
        agent_thread.start()
        keeper = Keeper(self.config.name, self.raft, self.config.data_dir,
                        lambda records: fresher(self.config, records))
        for name, job in (("monitoring", self.sampler.run), ("alarms", self.alarms.run),
                          ("membership", keeper.run)):
            threading.Thread(target=job, args=(self.stop_event,), name=name, daemon=True).start()
        log.info("%s started: raft %s, api %s, web https://%s/, libvirt %s",
                 self.config.name, self.config.me.raft, self.config.me.api,
                 self.config.me.web, self.config.libvirt_uri)
        ready = False
        leader = self.raft.leader_addr()
        while not self.stop_event.is_set():
            now_leader = self.raft.leader_addr()
            if now_leader != leader and now_leader is not None:
                self.leader_changes += 1
            leader = now_leader or leader
            if self.raft.process_lost:  # as if the daemon had crashed: VMs keep running
                self.shutdown()
                return 1
            if self.raft.halted:
                log.critical("%s", self.raft.halted)
                self.agent.stand_down(self.raft.halted)
                sd_notify(f"STATUS={self.raft.halted}")
                self.shutdown()
                return EXIT_STORAGE if self.raft.storage_error else EXIT_HALTED
            self._supervise_leader()
            if not ready and self.raft.is_ready() and self.agent.registered:
                ready = True
                self.api.set_serving(True)
                sd_notify("READY=1\nSTATUS=member of the cluster")
                log.info("%s joined the cluster", self.config.name)
            if ready:
                sd_notify("WATCHDOG=1")  # systemd's WatchdogSec: restart a hung daemon
            self.raft.leadership_changed.wait(0.1)
            self.raft.leadership_changed.clear()
        self.shutdown()
        return 0

    def _supervise_leader(self) -> None:
        """Start the leader loop when we win an election, stop it first thing when we lose."""
        leading = self.raft.is_leader()
        if leading and not self.leader.running:
            self.leader.start()
        elif not leading and self.leader.running:
            self.leader.stop()
            log.info("no longer leader")

    def shutdown(self) -> None:
        sd_notify("STOPPING=1")
        self.stop_event.set()
        self.wake_agent.set()
        self.leader.stop()
        self.api.stop(grace=1.0)
        self.web.stop()
        self.agent.close()
        self.peers.close()
        self.hypervisor.close()
        self.raft.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="haclusterd", description=__doc__)
    parser.add_argument("--config", "-c", default="/etc/hacluster/haclusterd.toml")
    parser.add_argument("--wipe-data", action="store_true",
                        help="set this member's Raft data aside (renamed, not deleted) and "
                        "exit; started again, it rejoins from the other members. Only with the "
                        "other members running and holding a majority (README: Recovering a "
                        "member)")
    args = parser.parse_args(argv)
    try:
        config = cfg.load(args.config)
    except cfg.ConfigError as exc:
        print(f"haclusterd: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.wipe_data:
        aside = wipe(config.data_dir)
        print(f"haclusterd: {config.data_dir} set aside as {aside}; start haclusterd to rejoin "
              "(it votes again once it has caught up)")
        return 0
    # A thread waiting for the GIL gets it within a millisecond, not Python's default 5:
    # heartbeats are answered on the gRPC thread while the web thread may be busy.
    sys.setswitchinterval(0.001)
    logging.basicConfig(level=config.log_level,
                        format=f"%(asctime)s {config.name} %(name)s %(levelname)s %(message)s")
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping (VMs keep running)", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        joined = starting_config(config, stopping)
        if joined is None:
            return 0  # stopped while waiting to be added
        daemon = Daemon(joined, stopping)
    except NotAMember as exc:
        log.critical("cannot start: %s", exc)
        return EXIT_CONFIG
    except ValueError as exc:  # an unreadable member list in the data directory
        log.critical("cannot start: %s", exc)
        return EXIT_STORAGE
    except StorageError as exc:
        log.critical("cannot start: %s", exc)
        return EXIT_STORAGE
    except Downgrade as exc:  # refused before anything touched a VM
        log.critical("cannot start: %s", exc)
        return EXIT_HALTED
    except (HypervisorError, WatchdogError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1

    started = time.monotonic()
    code = daemon.run()
    log.info("stopped after %.0fs", time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
