"""The gRPC servicers: translate requests into commands and state into messages. No decisions.

Reads come from this member's replica. Writes are validated here first (a clear
INVALID_ARGUMENT before anything is proposed), then committed through Raft, and apply's verdict
becomes the status code: a refused request changes nothing.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import NoReturn, TypeVar

import grpc

from .config import Config
from .core import commands as c
from .core.balance import plan_balance
from .core.model import (
    POLICY_LIMITS,
    Host,
    Incident,
    Observed,
    Policy,
    Rule,
    Vm,
    VmState,
    vm_status,
)
from .core.placement import HostMetrics, HostTable, Placer
from .core.reconcile import lease_grant
from .core.state import ClusterState, Result
from .core.validate import name_error, state_error, vm_spec_errors
from .eventlog import EventLog
from .leader import LeaderLoop
from .raft import RaftNode, Unavailable
from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc

log = logging.getLogger(__name__)

STATUS_FOR_CODE = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "exists": grpc.StatusCode.ALREADY_EXISTS,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "stale_term": grpc.StatusCode.FAILED_PRECONDITION,
}
OBSERVED_VALUES = {o.value for o in Observed}
R = TypeVar("R")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises


def vm_message(vm: Vm, state: ClusterState) -> pb.Vm:
    host = state.hosts.get(vm.host) if vm.host else None
    msg = pb.Vm(name=vm.name, uuid=vm.uuid, state=vm.state.value, status=vm_status(vm, host),
                vcpus=vm.vcpus, memory_mib=vm.memory_mib, disk_gib=vm.disk_gib, ha=vm.ha,
                priority=vm.priority, pending_reasons=vm.pending_reasons, version=vm.version,
                observed=vm.observed.value, restarts=vm.restarts,
                relocations=vm.relocations, error=vm.error,
                migration_error=vm.migration_error)
    if vm.migrating_to is not None:
        msg.migrating_to = vm.migrating_to
    if vm.host is not None:
        msg.host = vm.host
    if vm.last_host is not None:
        msg.last_host = vm.last_host
    return msg


def host_message(host: Host, state: ClusterState, table: HostTable,
                 live: dict[str, pb.HostLive]) -> pb.Host:
    i = table.index[host.name]
    p = state.policy
    beat = live.get(host.name)
    return pb.Host(
        name=host.name, status=host.status.value,
        vms=sorted(vm.name for vm in state.vms.values() if vm.host == host.name),
        cpus=host.cpus, memory_mib=host.memory_mib,
        memory_free_mib=int(table.free_memory(p)[i]),
        cpu_load=beat.cpu_load if beat else -1.0,
        disk_gib=host.disk_gib, disk_free_gib=int(table.free_disk(p)[i]),
        memory_allocated_mib=int(table.used_memory_mib[i]),
        vcpus_allocated=int(table.used_vcpus[i]),
        api_addr=host.api_addr, raft_addr=host.raft_addr,
        last_heard_ago=beat.last_heard_ago if beat else -1.0,
        version=host.version,
        memory_available_mib=beat.memory_available_mib if beat else -1.0,
        lease=host.lease, watchdog=host.watchdog, maintenance=host.maintenance,
    )


def rule_message(r: Rule) -> pb.Rule:
    return pb.Rule(name=r.name, kind=r.kind.value, strength=r.strength.value, vms=r.vms,
                   hosts=r.hosts)


def incident_message(i: Incident) -> pb.Incident:
    return pb.Incident(
        id=i.id, host=i.host, last_heard=i.last_heard, declared_at=i.declared_at,
        fenced_at=i.fenced_at, fenced_by=i.fenced_by, returned_at=i.returned_at, open=i.open,
        vms=[pb.IncidentVm(name=n, host=str(v.get("host") or ""),
                           placed_at=float(v.get("placed_at") or 0.0),  # type: ignore[arg-type]
                           running_at=float(v.get("running_at") or 0.0))  # type: ignore[arg-type]
             for n, v in sorted(i.vms.items())])


def policy_message(policy: Policy) -> pb.Policy:
    data = policy.to_dict()
    return pb.Policy(settings={k: float(data[k]) for k in POLICY_LIMITS},
                     version=policy.version)


class ClusterServicer(rpc.ClusterServicer):
    def __init__(self, config: Config, raft: RaftNode, leader: LeaderLoop,
                 events: EventLog) -> None:
        self.config = config
        self.raft = raft
        self.leader = leader
        self.events = events
        self._channels: dict[str, grpc.Channel] = {}

    # ---- helpers ---------------------------------------------------------------------------

    def _commit(self, context: grpc.ServicerContext, cmd: c.Command) -> Result:
        try:
            result = self.raft.propose(cmd)
        except Unavailable as exc:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        if not result.ok:
            _abort(context, STATUS_FOR_CODE.get(result.code, grpc.StatusCode.UNKNOWN),
                   result.message)
        return result

    def _request_id(self, context: grpc.ServicerContext, given: str) -> str:
        if not given:
            return uuid.uuid4().hex
        if not REQUEST_ID_RE.match(given):
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   "request_id must be 1-64 letters, digits or '_.:-'")
        return given

    @staticmethod
    def _existing(context: grpc.ServicerContext, kind: str, name: str,
                  records: Mapping[str, R]) -> R:
        """The named record, or INVALID_ARGUMENT for a bad name, NOT_FOUND for a missing one."""
        if (err := name_error(kind, name)) is not None:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, err)
        record = records.get(name)
        if record is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"{kind} {name} does not exist")
        return record

    def _vm(self, context: grpc.ServicerContext, name: str) -> Vm:
        return self._existing(context, "VM", name, self.raft.state.vms)

    def _host(self, context: grpc.ServicerContext, name: str) -> Host:
        return self._existing(context, "host", name, self.raft.state.hosts)

    def _live(self) -> dict[str, pb.HostLive]:
        """Live metrics: our own if we lead, else the leader's (soft state lives there)."""
        if self.leader.active:
            return live_messages(self.leader)
        leader = self.raft.leader_addr()
        api = next((m.api for m in self.config.members if m.raft == leader), None)
        if api is None:
            return {}
        channel = self._channels.get(api)
        if channel is None:
            channel = self._channels[api] = grpc.insecure_channel(api)
        try:
            reply = rpc.AgentStub(channel).LiveMetrics(pb.LiveMetricsRequest(), timeout=0.5)
        except grpc.RpcError:
            return {}
        return {h.host: h for h in reply.hosts}

    # ---- cluster and hosts ---------------------------------------------------------------------

    def GetStatus(self, request: pb.GetStatusRequest,
                  context: grpc.ServicerContext) -> pb.ClusterStatus:
        state = self.raft.state
        status = self.raft.status()
        leader_addr = self.raft.leader_addr()
        members = []
        for m in self.config.members:
            connected = (m.name == self.config.name
                         or status.get(f"partner_node_status_server_{m.raft}") == 2)
            members.append(pb.Member(name=m.name, raft_addr=m.raft, api_addr=m.api,
                                     leader=m.raft == leader_addr, connected=connected))
        leader_name = next((m.name for m in members if m.leader), "")
        return pb.ClusterStatus(
            leader=leader_name, term=self.raft.term(), quorum=self.raft.has_quorum(),
            members=members, self=self.config.name,
            commit_index=int(status.get("commit_idx", 0)),
            applied_index=int(status.get("last_applied", 0)),
            leader_term=state.leader_term,
            hosts_up=sum(1 for h in state.hosts.values() if h.status.value == "up"),
            vms=len(state.vms),
            vms_running=sum(1 for v in state.vms.values()
                            if vm_status(v, state.hosts.get(v.host or "")) == "running"),
            halted=self.raft.halted or "",
        )

    def _hosts(self) -> tuple[ClusterState, HostTable, dict[str, pb.HostLive]]:
        state = self.raft.state
        return state, HostTable.build(state.hosts.values(), state.vms.values()), self._live()

    def ListHosts(self, request: pb.ListHostsRequest,
                  context: grpc.ServicerContext) -> pb.ListHostsResponse:
        state, table, live = self._hosts()
        return pb.ListHostsResponse(hosts=[host_message(h, state, table, live)
                                           for h in sorted(state.hosts.values(),
                                                           key=lambda h: h.name)])

    def GetHost(self, request: pb.GetHostRequest, context: grpc.ServicerContext) -> pb.Host:
        host = self._host(context, request.name)
        state, table, live = self._hosts()
        return host_message(host, state, table, live)

    # ---- VMs ---------------------------------------------------------------------------------

    def CreateVm(self, request: pb.CreateVmRequest, context: grpc.ServicerContext) -> pb.Vm:
        state_value = VmState.STOPPED.value if request.stopped else VmState.STARTED.value
        errors = vm_spec_errors(request.name, request.vcpus, request.memory_mib,
                                request.disk_gib, request.priority, state_value)
        if errors:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(errors))
        cmd_id = self._request_id(context, request.request_id)
        if request.name in self.raft.state.vms and cmd_id not in self.raft.state.recent:
            _abort(context, grpc.StatusCode.ALREADY_EXISTS, f"VM {request.name} already exists")
        self._commit(context, c.CreateVm(
            id=cmd_id, ts=time.time(), name=request.name, uuid=str(uuid.uuid4()),
            vcpus=request.vcpus, memory_mib=request.memory_mib, disk_gib=request.disk_gib,
            state=state_value, ha=request.ha, priority=request.priority))
        return vm_message(self.raft.state.vms[request.name], self.raft.state)

    def GetVm(self, request: pb.VmRequest, context: grpc.ServicerContext) -> pb.Vm:
        return vm_message(self._vm(context, request.name), self.raft.state)

    def ListVms(self, request: pb.ListVmsRequest,
                context: grpc.ServicerContext) -> pb.ListVmsResponse:
        state = self.raft.state
        return pb.ListVmsResponse(vms=[vm_message(v, state)
                                       for v in sorted(state.vms.values(), key=lambda v: v.name)])

    def _set_state(self, request: pb.VmRequest | pb.SetVmStateRequest,
                   context: grpc.ServicerContext, state: str) -> pb.Vm:
        if (err := state_error(state)) is not None:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, err)
        self._vm(context, request.name)
        self._commit(context, c.SetVmState(
            id=self._request_id(context, request.request_id), ts=time.time(),
            name=request.name, state=state,
            expect_version=request.expect_version if request.HasField("expect_version")
            else None))
        return vm_message(self._vm(context, request.name), self.raft.state)

    def SetVmState(self, request: pb.SetVmStateRequest, context: grpc.ServicerContext) -> pb.Vm:
        return self._set_state(request, context, request.state)

    def StartVm(self, request: pb.VmRequest, context: grpc.ServicerContext) -> pb.Vm:
        return self._set_state(request, context, VmState.STARTED.value)

    def StopVm(self, request: pb.VmRequest, context: grpc.ServicerContext) -> pb.Vm:
        return self._set_state(request, context, VmState.STOPPED.value)

    def DeleteVm(self, request: pb.VmRequest,
                 context: grpc.ServicerContext) -> pb.DeleteVmResponse:
        self._vm(context, request.name)
        self._commit(context, c.DeleteVm(
            id=self._request_id(context, request.request_id), ts=time.time(),
            name=request.name,
            expect_version=request.expect_version if request.HasField("expect_version")
            else None))
        return pb.DeleteVmResponse()


    # ---- failover: fencing, incidents, events, policy -------------------------------------------

    def ConfirmFenced(self, request: pb.GetHostRequest, context: grpc.ServicerContext) -> pb.Host:
        self._host(context, request.name)
        self._commit(context, c.ConfirmFenced(id=uuid.uuid4().hex, ts=time.time(),
                                              name=request.name))
        return self.GetHost(request, context)

    def ListIncidents(self, request: pb.ListIncidentsRequest,
                      context: grpc.ServicerContext) -> pb.ListIncidentsResponse:
        return pb.ListIncidentsResponse(
            incidents=[incident_message(i) for i in reversed(self.raft.state.incidents)])

    def GetIncident(self, request: pb.GetIncidentRequest,
                    context: grpc.ServicerContext) -> pb.Incident:
        for incident in self.raft.state.incidents:
            if incident.id == request.id:
                return incident_message(incident)
        _abort(context, grpc.StatusCode.NOT_FOUND, f"incident {request.id} does not exist")

    def WatchEvents(self, request: pb.WatchEventsRequest,
                    context: grpc.ServicerContext) -> Iterator[pb.Event]:
        if request.backlog < 0:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "backlog must be >= 0")
        seq = self.events.last_seq(request.backlog)
        while context.is_active():
            for event in self.events.since(seq, timeout=1.0 if request.follow else 0.0):
                seq = event.seq
                yield pb.Event(seq=event.seq, ts=event.ts, kind=event.kind,
                               message=event.message)
            if not request.follow:
                return

    def GetPolicy(self, request: pb.GetPolicyRequest, context: grpc.ServicerContext) -> pb.Policy:
        return policy_message(self.raft.state.policy)

    def SetPolicy(self, request: pb.SetPolicyRequest, context: grpc.ServicerContext) -> pb.Policy:
        self._commit(context, c.SetPolicy(
            id=self._request_id(context, request.request_id), ts=time.time(),
            changes=dict(request.changes),
            expect_version=request.expect_version if request.HasField("expect_version")
            else None))
        return policy_message(self.raft.state.policy)


    # ---- scheduling: migration, explain, maintenance, rules --------------------------------------

    def MigrateVm(self, request: pb.MigrateVmRequest, context: grpc.ServicerContext) -> pb.Vm:
        self._vm(context, request.name)
        if request.to and (err := name_error("host", request.to)) is not None:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, err)
        self._commit(context, c.RequestMigration(
            id=self._request_id(context, request.request_id), ts=time.time(),
            name=request.name, to=request.to))
        return vm_message(self._vm(context, request.name), self.raft.state)

    def ExplainVm(self, request: pb.VmRequest, context: grpc.ServicerContext) -> pb.Explanation:
        vm = self._vm(context, request.name)
        state = self.raft.state
        # Judged as if it were not placed yet, so its own usage does not count against it.
        others = [v for v in state.vms.values() if v.name != vm.name]
        table = HostTable.build(state.hosts.values(), others)
        candidate = Vm(**{**vm.to_dict(), "host": None, "migrating_to": None})
        d = Placer(state.policy, list(state.rules.values())).decide(candidate, table,
                                                                    explain=True)
        return pb.Explanation(vm=vm.name, choice=d.host or "", hosts=[
            pb.HostVerdict(host=h, eligible=h in d.scores, reason=d.rejected.get(h, ""),
                           score=d.scores.get(h, 0.0)) for h in table.names])

    def SetMaintenance(self, request: pb.SetMaintenanceRequest,
                       context: grpc.ServicerContext) -> pb.Host:
        self._host(context, request.name)
        self._commit(context, c.SetMaintenance(id=uuid.uuid4().hex, ts=time.time(),
                                               name=request.name, on=request.on))
        return self.GetHost(pb.GetHostRequest(name=request.name), context)

    def CreateRule(self, request: pb.Rule, context: grpc.ServicerContext) -> pb.Rule:
        self._commit(context, c.CreateRule(
            id=uuid.uuid4().hex, ts=time.time(), name=request.name, kind=request.kind,
            strength=request.strength, vms=list(request.vms), hosts=list(request.hosts)))
        return rule_message(self.raft.state.rules[request.name])

    def ListRules(self, request: pb.ListRulesRequest,
                  context: grpc.ServicerContext) -> pb.ListRulesResponse:
        return pb.ListRulesResponse(rules=[rule_message(r) for r in sorted(
            self.raft.state.rules.values(), key=lambda r: r.name)])

    def DeleteRule(self, request: pb.DeleteRuleRequest,
                   context: grpc.ServicerContext) -> pb.DeleteRuleResponse:
        if (err := name_error("rule", request.name)) is not None:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, err)
        self._commit(context, c.DeleteRule(id=uuid.uuid4().hex, ts=time.time(),
                                           name=request.name))
        return pb.DeleteRuleResponse()


    def Balance(self, request: pb.BalanceRequest,
                context: grpc.ServicerContext) -> pb.BalanceReport:
        metrics = {h: HostMetrics(cpu_load=max(b.cpu_load, 0.0)) for h, b in self._live().items()}
        plan = plan_balance(self.raft.state, metrics, time.time())
        if request.apply:
            for move in plan.moves:
                self._commit(context, c.RequestMigration(
                    id=uuid.uuid4().hex, ts=time.time(), name=move.vm, to=move.target))
        return pb.BalanceReport(
            imbalance=plan.imbalance, imbalance_after=plan.imbalance_after,
            applied=request.apply,
            moves=[pb.BalanceMove(vm=m.vm, source=m.source, target=m.target, gain=m.gain)
                   for m in plan.moves])


def live_messages(leader: LeaderLoop) -> dict[str, pb.HostLive]:
    now = time.monotonic()
    return {h: pb.HostLive(host=h, cpu_load=b.metrics.cpu_load,
                           memory_available_mib=b.metrics.memory_available_mib,
                           disk_free_gib=b.metrics.disk_free_gib, last_heard_ago=now - b.at)
            for h, b in leader.live.heartbeats().items()}


class AgentServicer(rpc.AgentServicer):
    """Member-to-member calls; only the acting leader answers them."""

    def __init__(self, config: Config, raft: RaftNode, leader: LeaderLoop) -> None:
        self.members = {m.name for m in config.members}
        self.raft = raft
        self.leader = leader

    def _require_leader(self, context: grpc.ServicerContext) -> None:
        if not self.leader.active:
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION, "this member is not the leader")

    def Heartbeat(self, request: pb.HeartbeatRequest,
                  context: grpc.ServicerContext) -> pb.HeartbeatResponse:
        self._require_leader(context)
        if request.host not in self.members:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   f"{request.host!r} is not a cluster member")
        bad = sorted(v for v in request.observed.values() if v not in OBSERVED_VALUES)
        if bad:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"unknown VM states: {bad}")
        self.leader.live.record(request.host, HostMetrics(
            cpu_load=request.cpu_load, memory_available_mib=request.memory_available_mib,
            disk_free_gib=request.disk_free_gib), dict(request.observed),
            dict(request.observed_versions))
        lease, why = lease_grant(self.raft.state, request.host)
        if not self.leader.fresh():
            lease, why = 0.0, "no lease: this leader has not proven its majority recently"
        if lease > 0:
            self.leader.live.grant(request.host)
        return pb.HeartbeatResponse(leader_term=self.leader.term, lease_seconds=lease,
                                    message=why)

    def LiveMetrics(self, request: pb.LiveMetricsRequest,
                    context: grpc.ServicerContext) -> pb.LiveMetricsResponse:
        self._require_leader(context)
        return pb.LiveMetricsResponse(hosts=list(live_messages(self.leader).values()))
