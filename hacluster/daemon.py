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
from concurrent import futures
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import config as cfg
from .agent import Agent
from .api import AgentServicer, ClusterServicer
from .core.commands import Command
from .core.events import describe
from .core.host_plan import concerns_host
from .core.reconcile import concerns_leader
from .core.state import ClusterState, Result
from .eventlog import EventLog
from .hypervisor import Hypervisor, HypervisorError
from .leader import LeaderLoop
from .notify import sd_notify
from .raft import RaftNode
from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc
from .watchdog import WatchdogError, open_watchdog

log = logging.getLogger("haclusterd")

EXIT_HALTED = 3  # systemd: RestartPreventExitStatus=3, an operator must upgrade this member


class Daemon:
    def __init__(self, config: cfg.Config) -> None:
        self.config = config
        self.stop_event = threading.Event()
        # Created before the Raft member: its tick thread may apply the journal at once.
        self.wake_agent = threading.Event()
        self.wake_leader = threading.Event()
        self.events = EventLog()
        self.raft = RaftNode(config.me.raft, [m.raft for m in config.peers], config.data_dir,
                             config.secret, config.raft,
                             on_applied=self._on_applied)
        self.hypervisor = Hypervisor(config.libvirt_uri, on_event=self.wake_agent.set,
                                     boot=config.boot)
        self.leader = LeaderLoop(config, self.raft, self.wake_leader)
        self.agent = Agent(config, self.raft, self.hypervisor, self.wake_agent,
                           open_watchdog(config.watchdog))
        self.health = health.HealthServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16,
                                                             thread_name_prefix="grpc"))
        rpc.add_ClusterServicer_to_server(
            ClusterServicer(config, self.raft, self.leader, self.events), self.server)
        rpc.add_AgentServicer_to_server(AgentServicer(config, self.raft, self.leader),
                                        self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        services = (pb.DESCRIPTOR.services_by_name["Cluster"].full_name,
                    pb.DESCRIPTOR.services_by_name["Agent"].full_name,
                    reflection.SERVICE_NAME, health.SERVICE_NAME)
        reflection.enable_server_reflection(services, self.server)
        if self.server.add_insecure_port(config.me.api) == 0:
            raise OSError(f"cannot listen on {config.me.api}")

    def _on_applied(self, cmd: Command, result: Result, state: ClusterState) -> None:
        """Runs in the Raft tick thread: only wake the loops that have work, never block."""
        for line in describe(cmd, result, state):
            self.events.add(cmd.ts, cmd.TYPE, line)
        if not result.ok:
            return
        if concerns_host(cmd, result, state, self.config.name):
            self.wake_agent.set()
        if concerns_leader(cmd):
            self.wake_leader.set()

    def run(self) -> int:
        self.server.start()
        self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        agent_thread = threading.Thread(target=self.agent.run, args=(self.stop_event,),
                                         name="agent", daemon=True)
        agent_thread.start()
        log.info("%s started: raft %s, api %s, libvirt %s", self.config.name,
                 self.config.me.raft, self.config.me.api, self.config.libvirt_uri)
        ready = False
        while not self.stop_event.is_set():
            if self.raft.halted:
                log.critical("%s", self.raft.halted)
                sd_notify(f"STATUS={self.raft.halted}")
                self.shutdown()
                return EXIT_HALTED
            self._supervise_leader()
            if not ready and self.raft.is_ready() and self.agent.registered:
                ready = True
                self.health.set("", health_pb2.HealthCheckResponse.SERVING)
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
        self.server.stop(grace=1.0).wait(2)
        self.agent.close()
        self.hypervisor.close()
        self.raft.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="haclusterd", description=__doc__)
    parser.add_argument("--config", "-c", default="/etc/hacluster/haclusterd.toml")
    args = parser.parse_args(argv)
    try:
        config = cfg.load(args.config)
    except cfg.ConfigError as exc:
        print(f"haclusterd: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level,
                        format=f"%(asctime)s {config.name} %(name)s %(levelname)s %(message)s")
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    try:
        daemon = Daemon(config)
    except (HypervisorError, WatchdogError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping (VMs keep running)", signum)
        daemon.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    code = daemon.run()
    log.info("stopped after %.0fs", time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
