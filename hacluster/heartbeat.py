"""The heartbeat link between a host's agent and the leader, apart from what travels over it.

A Beat is what the agent reports (metrics, what runs there); an Answer is the leader's (its
term and a lease). The agent sends through a Link; the leader answers in LeaderLoop.answer;
core.lease says what either side may conclude. GrpcLink is production's link (mutual TLS to
the leader's member port, api.py's event loop answers it first); the simulator has its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from .core.model import OBSERVED_VALUES
from .core.placement import HostMetrics
from .core.validate import heartbeat_errors, shown
from .errors import fail
from .membership import Membership
from .peers import Peers
from .ports import Consensus
from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc

log = logging.getLogger(__name__)

LEADER_WATCH = 0.05  # seconds: how often a heartbeat in flight checks the leader is the same


@dataclass(frozen=True)
class Beat:
    host: str
    metrics: HostMetrics
    observed: dict[str, str]  # VM -> what runs here (Observed values)
    versions: dict[str, int]  # the VM record versions the agent's replica had
    errors: dict[str, str] = field(default_factory=dict)  # VM -> why a start was refused
    code_version: int = 0  # the hacluster code version the host runs (0: too old to say)


@dataclass(frozen=True)
class Answer:
    term: int  # the answering leader's
    lease_seconds: float  # 0: no lease (message says why)
    message: str = ""
    # the leader's replica revision it was granted on: the host acts on no older replica
    # (one that lags could still show a VM here that has since been restarted elsewhere)
    revision: int = 0


class Link(Protocol):
    def send(self, beat: Beat) -> Answer | None:
        """Deliver a beat to the leader this member's Raft names; None if unanswered."""


def to_request(beat: Beat) -> pb.HeartbeatRequest:
    m = beat.metrics
    return pb.HeartbeatRequest(
        host=beat.host, cpu_load=m.cpu_load, memory_available_mib=m.memory_available_mib,
        disk_free_gib=m.disk_free_gib, observed=beat.observed,
        observed_versions=beat.versions, errors=beat.errors, rtt_ms=m.heartbeat_rtt_ms,
        code_version=beat.code_version)


# Both heartbeat answerers (MemberService.Heartbeat, memberport.MemberPort.answer) refuse a
# checked beat with this until they act as leader; a Raft leader whose claim has not
# committed yet still records it as a sign of life: a new leader judges hosts silent
# host_down_after (1 s) from its start, its claim can take most of that on a loaded machine,
# and a host it wrongly marks down gets no lease (a 48-host lab lost HA VMs to this after
# every leader change).
NOT_LEADER = "this member is not the leader"


def checked(request: pb.HeartbeatRequest, caller: str, membership: Membership) -> Beat:
    """A heartbeat as a leader takes it from member `caller`, or ApiError saying why not
    (whichever process answers it: the daemon's API loop or the Raft process, memberport)."""
    if request.host != caller:
        fail("denied", f"permission denied: {caller}'s certificate cannot send heartbeats for "
             f"{shown(request.host)}")
    if membership.by_name(request.host) is None:
        fail("invalid", f"{shown(request.host)} is not a cluster member")
    errors = heartbeat_errors(request.cpu_load, request.memory_available_mib,
                              request.disk_free_gib, len(request.observed))
    bad = sorted(v for v in request.observed.values() if v not in OBSERVED_VALUES)
    if bad:
        errors.append(f"unknown VM states: {bad[:5]}")
    if errors:
        fail("invalid", "; ".join(errors))
    return from_request(request)


def from_request(request: pb.HeartbeatRequest) -> Beat:
    return Beat(request.host, HostMetrics(
        cpu_load=request.cpu_load, memory_available_mib=request.memory_available_mib,
        disk_free_gib=request.disk_free_gib,
        heartbeat_rtt_ms=request.rtt_ms if 0 <= request.rtt_ms < 1e6 else -1.0),
        dict(request.observed), dict(request.observed_versions), dict(request.errors),
        request.code_version)


class GrpcLink:
    def __init__(self, peers: Peers, raft: Consensus, timeout: float) -> None:
        self.peers = peers
        self.raft = raft
        self.timeout = timeout

    def send(self, beat: Beat) -> Answer | None:
        addr = self.raft.leader_addr()
        leader = self.peers.by_raft(addr)
        if leader is None:
            return None
        call = rpc.AgentStub(self.peers.channel(leader)).Heartbeat.future(
            to_request(beat), timeout=self.timeout)
        try:
            while True:
                try:
                    reply = call.result(timeout=LEADER_WATCH)
                    break
                except grpc.FutureTimeoutError:
                    # a leader that stopped answering is soon replaced: ask the new one at
                    # once rather than wait out this call (every lease counts the time)
                    if self.raft.leader_addr() != addr:
                        call.cancel()
                        return None
        except (grpc.RpcError, grpc.FutureCancelledError) as exc:
            log.debug("heartbeat to %s failed: %s", leader.name, exc)
            return None
        return Answer(reply.leader_term, reply.lease_seconds, reply.message, reply.revision)
