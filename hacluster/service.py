"""The service layer: what every front end calls (gRPC today; the web console and metrics
later), once auth.Authenticator has said who calls (every method takes the Caller). It reads
one immutable snapshot of the replica per call, validates every write against it before
anything is proposed (a refused request leaves no entry in the log), then commits through
Raft, recording who asked and from where (the audit trail: the event feed and this member's
log). Errors are ApiError(code, message); each front end maps the codes to its statuses. No
decisions about the cluster are made here: apply and the leader do.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc

from . import serial_console
from .auth import Caller
from .certs import new_token, token_hash
from .config import Config
from .core import commands as c
from .core import networks, storage
from .core.balance import plan_balance
from .core.model import (
    Host,
    HostStatus,
    Role,
    Token,
    User,
    Vm,
    VmState,
    session_owner,
    user_owner,
)
from .core.placement import HostMetrics, HostTable, Placer
from .core.state import STALE_ADMISSION, ClusterState, Result
from .core.validate import (
    MAX_RULE_MEMBERS,
    name_error,
    shown,
    vm_spec_errors,
)
from .core.whatif import what_if
from .directory import DirectoryLogin
from .errors import ApiError, fail
from .heartbeat import NOT_LEADER, checked
from .history import RANGES, History
from .hypervisor import HypervisorError
from .leader import LeaderLoop
from .membership import Membership
from .messages import (
    VmMessages,
    alarm_message,
    history_message,
    host_message,
    incident_message,
    live_messages,
    network_message,
    policy_message,
    pool_message,
    rule_message,
    vms_by_host,
)
from .peers import Peers
from .raft import DiskFull, Unavailable
from .raftproc import RaftMember
from .users import LocalLogin, hash_password
from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc

log = logging.getLogger(__name__)

R = TypeVar("R")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
ADMISSION_TRIES = 3  # checks of admission control when other changes keep winning the race
VM_UUID_NAMESPACE = uuid.UUID("5b0f3f4e-8c57-4a1e-9a53-2d5c6f1b7e10")


MAX_TTL = 10 * 365 * 86400.0  # a token lives ten years at most
SESSION_OWNERS = ("session-of:", "ldap:", "user:")  # tokens made by a login, ended by logout
SESSION_TTL = 8 * 3600.0  # a session (web console, or a local user's login) lasts a workday
__all__ = ["ApiError", "ClusterService", "MemberService"]

RESULT_CODES = {"invalid": "invalid", "not_found": "not_found", "exists": "exists",
                "conflict": "conflict", "stale_term": "conflict", "admission": "conflict"}


_fail = fail


def _check_version(cmd: c.Command, state: ClusterState) -> None:
    """A feature newer than the cluster version waits, and the caller is told why."""
    try:
        c.check_allowed(cmd, state.cluster_version)
    except c.TooNew as exc:
        _fail("conflict", str(exc))


class ClusterService:
    """The Cluster API, one method per RPC, protobuf in and out."""

    def __init__(self, config: Config, raft: RaftMember, leader: LeaderLoop, peers: Peers
                 ) -> None:
        self.config = config
        self.raft = raft
        self.leader = leader
        self.peers = peers
        self.directory = DirectoryLogin(config.directory) if config.directory else None
        self.local_login = LocalLogin()
        self.vm_messages = VmMessages()  # vm list and get, made again only for what changed
        self.monitor = History()  # this host's monitoring history (the daemon's sampler fills it)
        self.inspect: Inspector | None = None  # this host's libvirt (the daemon sets it)
        self.console: serial_console.Console | None = None  # its VMs' consoles (likewise)

    # ---- helpers ---------------------------------------------------------------------------

    def _commit(self, cmd: c.Command, caller: Caller) -> Result:
        """Validate against this member's replica (nothing is proposed if apply would refuse
        it), then commit; apply checks again, and a race lost is refused the same way. The
        command records who asked and from where."""
        cmd = dataclasses.replace(cmd, actor=caller.actor, origin=caller.peer)
        if self.raft.disk_full():
            _fail("disk_full", f"{self.config.name}'s disk is full: it cannot store the "
                  "command (another member may: hactl tries the next one)")
        state = self.raft.state
        _check_version(cmd, state)
        verdict = state.dry_run(cmd)
        if verdict.ok:
            try:
                verdict = self.raft.propose(cmd)
            except DiskFull as exc:
                _fail("disk_full", str(exc))
            except Unavailable as exc:
                _fail("unavailable", str(exc))
            except c.TooNew as exc:  # the version rose or fell between (a new leader's view)
                _fail("conflict", str(exc))
        if not verdict.ok:
            _fail(RESULT_CODES.get(verdict.code, "conflict"), verdict.message)
        log.info("%s from %s: %s %s", caller.actor, caller.peer, cmd.TYPE,
                 getattr(cmd, "name", ""))
        return verdict

    def _commit_admitted(self, cmd: c.CreateVm | c.SetVmState, caller: Caller) -> Result:
        """Admission control here, on the proposing side (apply only checks that nothing
        it bears on changed since: core.state.ClusterState._admission); a race lost to
        another change is checked again on the newer state, a few times."""
        for attempt in range(ADMISSION_TRIES):
            state = self.raft.state
            why = state.admission_refusal(cmd)
            if why:
                _fail("conflict", why)
            if not c.allowed(f"{cmd.TYPE}.admitted_epoch", state.cluster_version):
                return self._commit(cmd, caller)  # older members check it in apply
            try:
                return self._commit(dataclasses.replace(
                    cmd, admitted_epoch=state.admission_epoch), caller)
            except ApiError as exc:
                if STALE_ADMISSION not in exc.message or attempt == ADMISSION_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _request_id(given: str) -> str:
        if not given:
            return uuid.uuid4().hex
        if not REQUEST_ID_RE.match(given):
            _fail("invalid", "request_id must be 1-64 letters, digits or '_.:-'")
        return given

    @staticmethod
    def _expect(request: pb.VmRequest | pb.SetVmStateRequest | pb.SetPolicyRequest
                ) -> int | None:
        return request.expect_version if request.HasField("expect_version") else None

    @staticmethod
    def _existing(kind: str, name: str, records: Mapping[str, R]) -> R:
        """The named record, or invalid for a bad name, not_found for a missing one."""
        if (err := name_error(kind, name)) is not None:
            _fail("invalid", err)
        record = records.get(name)
        if record is None:
            _fail("not_found", f"{kind} {name} does not exist")
        return record

    def vm_record(self, name: str, state: ClusterState | None = None) -> Vm:
        return self._existing("VM", name, (state or self.raft.state).vms)

    def host_record(self, name: str, state: ClusterState | None = None) -> Host:
        return self._existing("host", name, (state or self.raft.state).hosts)

    def live(self) -> dict[str, pb.HostLive]:
        """Soft state (live figures, leases): our own if we lead, else the leader's."""
        if self.leader.active:
            return live_messages(self.leader.live, self.raft.state,
                                 self.config.ha.grant_window, self.config.ha.margin)
        leader = self.peers.by_raft(self.raft.leader_addr())
        if leader is None:
            return {}
        try:
            reply = rpc.AgentStub(self.peers.channel(leader)).LiveMetrics(
                pb.LiveMetricsRequest(), timeout=0.5)
        except grpc.RpcError:
            return {}
        return {h.host: h for h in reply.hosts}

    # ---- cluster and hosts -----------------------------------------------------------------

    def GetStatus(self, request: pb.GetStatusRequest, caller: Caller) -> pb.ClusterStatus:
        state = self.raft.state
        status = self.raft.status()
        leader_addr = self.raft.leader_addr()
        live = self.live()
        members = []
        for m in self.peers.membership.current():
            connected = (m.name == self.config.name
                         or status.get(f"partner_node_status_server_{m.raft}") == 2)
            heard = live.get(m.name)
            if not m.voter:  # no Raft link of its own to judge by: heard by the leader
                connected = heard is not None and 0 <= heard.last_heard_ago < 5.0
            members.append(pb.Member(name=m.name, raft_addr=m.raft, api_addr=m.api,
                                     leader=m.raft == leader_addr, connected=connected,
                                     version=heard.code_version if heard else 0,
                                     peer_addr=m.peer, web_addr=m.web, voter=m.voter))
        leader_name = next((m.name for m in members if m.leader), "")
        return pb.ClusterStatus(
            leader=leader_name, term=self.raft.term(), quorum=self.raft.has_quorum(),
            members=members, self=self.config.name,
            commit_index=int(status.get("commit_idx", 0)),
            applied_index=int(status.get("last_applied", 0)),
            leader_term=state.leader_term,
            hosts_up=sum(1 for h in state.hosts.values() if h.status is HostStatus.UP),
            vms=len(state.vms),
            vms_running=state.running_count(),
            halted=self.raft.halted or "",
            snapshot_index=int(status.get("snapshot_index", 0)),
            log_entries=int(status.get("log_len", 0)),
            journal_bytes=int(status.get("journal_bytes", 0)),
            cluster_version=state.cluster_version, code_version=self.config.code_version,
        )

    def _hosts(self) -> tuple[ClusterState, HostTable, dict[str, pb.HostLive]]:
        state = self.raft.state
        return state, HostTable.of(state), self.live()

    def ListHosts(self, request: pb.ListHostsRequest, caller: Caller) -> pb.ListHostsResponse:
        state, table, live = self._hosts()
        on_hosts = vms_by_host(state)
        return pb.ListHostsResponse(hosts=[host_message(h, state, table, live, on_hosts)
                                           for h in sorted(state.hosts.values(),
                                                           key=lambda h: h.name)])

    def GetHost(self, request: pb.GetHostRequest, caller: Caller) -> pb.Host:
        state, table, live = self._hosts()
        return host_message(self.host_record(request.name, state), state, table, live)

    # ---- VMs ---------------------------------------------------------------------------------

    def CreateVm(self, request: pb.CreateVmRequest, caller: Caller) -> pb.Vm:
        state_value = VmState.STOPPED.value if request.stopped else VmState.STARTED.value
        errors = vm_spec_errors(request.name, request.vcpus, request.memory_mib,
                                request.disk_gib, request.priority, state_value)
        if errors:
            _fail("invalid", "; ".join(errors))
        cmd_id = self._request_id(request.request_id)
        # The same request id always names the same VM uuid, so a retry is the same command.
        vm_uuid = str(uuid.uuid5(VM_UUID_NAMESPACE, cmd_id))
        if len(request.disks) > storage.MAX_DISKS or len(request.networks) > networks.MAX_NICS:
            _fail("invalid", f"a VM has at most {storage.MAX_DISKS} disks and "
                  f"{networks.MAX_NICS} NICs")
        disks = [{"pool": d.pool, "size_gib": d.size_gib, "image": d.image}
                 for d in request.disks]
        self._commit_admitted(c.CreateVm(
            id=cmd_id, ts=time.time(), name=request.name, uuid=vm_uuid,
            vcpus=request.vcpus, memory_mib=request.memory_mib, disk_gib=request.disk_gib,
            state=state_value, ha=request.ha, priority=request.priority, disks=disks,
            networks=list(request.networks), cpu=request.cpu or "baseline"), caller)
        return self.GetVm(pb.VmRequest(name=request.name), caller)

    def ResizeVm(self, request: pb.ResizeVmRequest, caller: Caller) -> pb.Vm:
        self.vm_record(request.name)
        vcpus = request.vcpus if request.HasField("vcpus") else None
        memory = request.memory_mib if request.HasField("memory_mib") else None
        if vcpus is None and memory is None:
            _fail("invalid", "give the new vcpus, memory_mib or both")
        self._commit(c.ResizeVm(id=self._request_id(request.request_id), ts=time.time(),
                                name=request.name, vcpus=vcpus, memory_mib=memory,
                                expect_version=request.expect_version
                                if request.HasField("expect_version") else None), caller)
        return self.GetVm(pb.VmRequest(name=request.name), caller)

    def ImportVm(self, request: pb.ImportVmRequest, caller: Caller) -> pb.Vm:
        if (err := name_error("VM", request.name)) is not None:
            _fail("invalid", f"{err} (a domain is imported under its own name)")
        host = self.host_record(request.host)
        found = self._inspect(host.name, request.name)
        if found.managed:
            _fail("exists", f"domain {request.name} on {host.name} is already the cluster's")
        self._commit(c.ImportVm(id=self._request_id(request.request_id), ts=time.time(),
                                name=request.name, host=host.name, xml=found.xml,
                                running=found.running, ha=request.ha), caller)
        return self.GetVm(pb.VmRequest(name=request.name), caller)

    def _inspect(self, host: str, name: str) -> pb.InspectedDomain:
        """A domain of `host`'s libvirt: ours, or asked of that member."""
        if host == self.config.name and self.inspect is not None:
            return inspect_domain(self.inspect, host, name)
        reply: pb.InspectedDomain = self._ask_member(
            host, lambda stub: stub.InspectDomain(pb.InspectDomainRequest(name=name),
                                                  timeout=5.0))
        return reply

    def _ask_member(self, host: str, call: Callable[[rpc.AgentStub], Any]) -> Any:
        """A member call to `host`'s daemon, its refusal passed on as it said it."""
        member = self.peers.membership.by_name(host)
        if member is None:
            _fail("not_found", f"host {shown(host)} is not a member of this cluster")
        try:
            return call(rpc.AgentStub(self.peers.channel(member)))
        except grpc.RpcError as exc:
            code = {grpc.StatusCode.NOT_FOUND: "not_found",
                    grpc.StatusCode.FAILED_PRECONDITION: "conflict",
                    grpc.StatusCode.INVALID_ARGUMENT: "invalid"}.get(exc.code(), "unavailable")
            _fail(code, exc.details() or f"{host} does not answer ({exc.code().name})")

    def Console(self, request: pb.ConsoleRequest, caller: Caller) -> pb.ConsoleOutput:
        if (errors := serial_console.request_errors(request)):
            _fail("invalid", "; ".join(errors))
        vm = self.vm_record(request.name, self.raft.state)
        host = vm.host or vm.last_host
        if host is None:
            _fail("conflict", f"VM {vm.name} has not run anywhere yet: it has no console")
        if host == self.config.name and self.console is not None:
            return self.console(vm, request)
        reply: pb.ConsoleOutput = self._ask_member(
            host, lambda stub: stub.HostConsole(request, timeout=10.0))
        return reply

    def GetVm(self, request: pb.VmRequest, caller: Caller) -> pb.Vm:
        state = self.raft.state
        return self.vm_messages.one(self.vm_record(request.name, state), state)

    def ListVms(self, request: pb.ListVmsRequest, caller: Caller) -> pb.ListVmsResponse:
        state = self.raft.state
        return pb.ListVmsResponse(vms=self.vm_messages.all(state))

    def _set_state(self, request: pb.VmRequest | pb.SetVmStateRequest, state: str,
                   caller: Caller) -> pb.Vm:
        self.vm_record(request.name)
        self._commit_admitted(c.SetVmState(
            id=self._request_id(request.request_id), ts=time.time(), name=request.name,
            state=state, expect_version=self._expect(request)), caller)
        return self.GetVm(pb.VmRequest(name=request.name), caller)

    def SetVmState(self, request: pb.SetVmStateRequest, caller: Caller) -> pb.Vm:
        return self._set_state(request, request.state, caller)

    def StartVm(self, request: pb.VmRequest, caller: Caller) -> pb.Vm:
        return self._set_state(request, VmState.STARTED.value, caller)

    def StopVm(self, request: pb.VmRequest, caller: Caller) -> pb.Vm:
        return self._set_state(request, VmState.STOPPED.value, caller)

    def DeleteVm(self, request: pb.VmRequest, caller: Caller) -> pb.DeleteVmResponse:
        self.vm_record(request.name)
        self._commit(c.DeleteVm(id=self._request_id(request.request_id), ts=time.time(),
                                name=request.name, expect_version=self._expect(request),
                                delete_disks=request.delete_disks), caller)
        return pb.DeleteVmResponse()

    # ---- failover: fencing, incidents, policy --------------------------------------------------

    def ConfirmFenced(self, request: pb.GetHostRequest, caller: Caller) -> pb.Host:
        host = self.host_record(request.name)
        if host.status is HostStatus.DOWN:
            # The operator vouches the host is off; still, a lease the leader granted may
            # be running: its HA VMs might be running too until it ends.
            live = self.live().get(host.name)
            if live is None:
                _fail("unavailable", f"cannot tell whether {host.name}'s last lease has "
                      "ended: no leader answered; try again")
            if live.lease_left > 0:
                _fail("conflict", f"host {host.name}'s last lease may still be valid for "
                      f"{live.lease_left:.1f}s; confirm again after that")
        self._commit(c.ConfirmFenced(id=uuid.uuid4().hex, ts=time.time(), name=request.name),
                     caller)
        return self.GetHost(request, caller)

    # ---- members: hosts join and leave (hactl host add / remove) ---------------------------

    def AddMember(self, request: pb.AddMemberRequest, caller: Caller) -> pb.Member:
        """Recorded first (every member learns where it listens, and its certificate is
        accepted), then, a voter, added to Raft (membership.Keeper would too; this waits
        for it); a retry of either half is harmless."""
        api_host, _, api_port = request.api_addr.rpartition(":")
        port = int(api_port) if api_port.isdigit() else 0
        cmd = c.AddMember(id=self._request_id(request.request_id), ts=time.time(),
                          name=request.name, raft=request.raft_addr, api=request.api_addr,
                          peer=request.peer_addr or f"{api_host}:{port + 2}",
                          web=request.web_addr or f"{api_host}:{port + 1}")
        self._members_recorded()
        self._commit(cmd, caller)
        voter = self.raft.state.members[cmd.name].voter
        if voter:  # a learner is no Raft member: it dials the voters itself
            try:
                self.raft.change_membership(True, cmd.raft)
            except Unavailable as exc:
                _fail("unavailable", f"{cmd.name} is recorded but not yet a Raft voter: {exc}")
        log.info("%s from %s: member %s added (%s)", caller.actor, caller.peer, cmd.name,
                 "voter" if voter else "learner")
        return pb.Member(name=cmd.name, raft_addr=cmd.raft, api_addr=cmd.api,
                         peer_addr=cmd.peer, web_addr=cmd.web, voter=voter)

    def RemoveMember(self, request: pb.GetHostRequest, caller: Caller) -> pb.Member:
        """Forgotten with its host record, then out of Raft (the leader's membership.Keeper
        makes Raft follow the record, this only waits for it); refused, with nothing
        changed, unless apply would accept it."""
        self._members_recorded()
        state = self.raft.state
        record = self._existing("member", request.name, state.members)
        cmd = c.RemoveMember(id=uuid.uuid4().hex, ts=time.time(), name=record.name)
        _check_version(cmd, state)
        verdict = state.dry_run(cmd)
        if not verdict.ok:
            _fail(RESULT_CODES.get(verdict.code, "conflict"), verdict.message)
        if record.name == self.config.name:
            _fail("unavailable", f"{record.name} cannot remove itself: ask another member "
                  "(hactl tries the next endpoint)")
        if self.raft.leader_addr() == record.raft:
            # pysyncobj cannot remove its own leader (and hands leadership over badly): the
            # member steps aside by stopping, which costs nothing on an empty host
            _fail("conflict", f"{record.name} leads the cluster: stop its haclusterd first "
                  "(another member takes over), then remove it")
        self._commit(cmd, caller)
        try:
            if record.voter:
                self.raft.change_membership(False, record.raft)
        except Unavailable as exc:  # the keeper goes on trying
            log.warning("%s removed; Raft still counts it as a voter: %s", record.name, exc)
        return pb.Member(name=record.name, raft_addr=record.raft, api_addr=record.api,
                         peer_addr=record.peer, web_addr=record.web, voter=record.voter)

    def _members_recorded(self) -> None:
        state = self.raft.state
        if c.allowed("member.add", state.cluster_version) and not state.members:
            _fail("unavailable", "the leader has not recorded the members yet: try again in "
                  "a few seconds")

    def ListIncidents(self, request: pb.ListIncidentsRequest,
                      caller: Caller) -> pb.ListIncidentsResponse:
        return pb.ListIncidentsResponse(
            incidents=[incident_message(i) for i in reversed(self.raft.state.incidents)])

    def GetIncident(self, request: pb.GetIncidentRequest, caller: Caller) -> pb.Incident:
        for incident in self.raft.state.incidents:
            if incident.id == request.id:
                return incident_message(incident)
        _fail("not_found", f"incident {request.id} does not exist")

    def GetPolicy(self, request: pb.GetPolicyRequest, caller: Caller) -> pb.Policy:
        return policy_message(self.raft.state.policy)

    def SetPolicy(self, request: pb.SetPolicyRequest, caller: Caller) -> pb.Policy:
        self._commit(c.SetPolicy(id=self._request_id(request.request_id), ts=time.time(),
                                 changes=dict(request.changes),
                                 expect_version=self._expect(request)), caller)
        return policy_message(self.raft.state.policy)

    # ---- scheduling: migration, explain, maintenance, rules --------------------------------------

    def MigrateVm(self, request: pb.MigrateVmRequest, caller: Caller) -> pb.Vm:
        self.vm_record(request.name)
        if request.to:
            self.host_record(request.to)
        self._commit(c.RequestMigration(id=self._request_id(request.request_id), ts=time.time(),
                                        name=request.name, to=request.to), caller)
        return self.GetVm(pb.VmRequest(name=request.name), caller)

    def ExplainVm(self, request: pb.VmRequest, caller: Caller) -> pb.Explanation:
        state = self.raft.state
        vm = self.vm_record(request.name, state)
        # Judged as if it were not placed yet, so its own usage does not count against it.
        others = [v for v in state.vms.values() if v.name != vm.name]
        table = HostTable.of(state, others)
        candidate = Vm(**{**vm.to_dict(), "host": None, "migrating_to": None})
        d = Placer(state.policy, list(state.rules.values())).decide(candidate, table,
                                                                    explain=True)
        return pb.Explanation(vm=vm.name, choice=d.host or "", hosts=[
            pb.HostVerdict(host=h, eligible=h in d.scores, reason=d.rejected.get(h, ""),
                           score=d.scores.get(h, 0.0)) for h in table.names])

    def WhatIf(self, request: pb.WhatIfRequest, caller: Caller) -> pb.WhatIfReport:
        state = self.raft.state
        self.host_record(request.host, state)
        answer = what_if(state, request.host, request.maintenance, self._metrics(), time.time())
        return pb.WhatIfReport(host=answer.host, maintenance=answer.maintenance, vms=[
            pb.WhatIfVm(name=o.name, target=o.target, reason=o.reason) for o in answer.vms])

    def _metrics(self) -> dict[str, HostMetrics]:
        """The live figures placement weighs, as the leader has them."""
        return {h: HostMetrics(cpu_load=max(b.cpu_load, 0.0)) for h, b in self.live().items()}

    def ListAlarms(self, request: pb.ListAlarmsRequest, caller: Caller
                   ) -> pb.ListAlarmsResponse:
        """Active alarms first (critical, then by age), this member's own on top."""
        alarms = [alarm_message(a) for a in self.raft.state.alarms.values()
                  if request.all or a.active]
        alarms.sort(key=lambda a: (bool(a.cleared_at), a.severity != "critical", -a.raised_at))
        return pb.ListAlarmsResponse(alarms=self.local_alarms() + alarms)

    def local_alarms(self) -> list[pb.Alarm]:
        """What only this member can tell: the cluster cannot commit an alarm without
        quorum, nor this member store one on a full disk."""
        me, out = self.config.name, []
        if not self.raft.has_quorum():
            out.append(pb.Alarm(key=f"quorum-lost:{me}", kind="quorum-lost", severity="critical",
                                subject=me, local=True,
                                message=f"{me} cannot reach a majority of the members: no "
                                "change can be made through it"))
        if self.raft.disk_full():
            out.append(pb.Alarm(key=f"disk-full:{me}", kind="disk-full", severity="critical",
                                subject=me, local=True,
                                message=f"{me}'s disk is full: it cannot store the journal"))
        if self.raft.halted:
            out.append(pb.Alarm(key=f"halted:{me}", kind="halted", severity="critical",
                                subject=me, local=True, message=self.raft.halted))
        return out

    def AckAlarm(self, request: pb.AckAlarmRequest, caller: Caller) -> pb.Alarm:
        if request.key.partition(":")[0] in ("quorum-lost", "disk-full", "halted"):
            _fail("invalid", f"{shown(request.key)} is a member's own alarm: it clears when "
                  "its cause does and cannot be acknowledged")
        self._commit(c.AckAlarm(id=uuid.uuid4().hex, ts=time.time(), key=request.key), caller)
        return alarm_message(self.raft.state.alarms[request.key])

    def SetMaintenance(self, request: pb.SetMaintenanceRequest, caller: Caller) -> pb.Host:
        self.host_record(request.name)
        self._commit(c.SetMaintenance(id=uuid.uuid4().hex, ts=time.time(), name=request.name,
                                      on=request.on), caller)
        return self.GetHost(pb.GetHostRequest(name=request.name), caller)

    def CreateRule(self, request: pb.Rule, caller: Caller) -> pb.Rule:
        if len(request.vms) > MAX_RULE_MEMBERS or len(request.hosts) > MAX_RULE_MEMBERS:
            _fail("invalid", f"a rule names at most {MAX_RULE_MEMBERS} VMs and "
                  f"{MAX_RULE_MEMBERS} hosts")
        self._commit(c.CreateRule(id=uuid.uuid4().hex, ts=time.time(), name=request.name,
                                  kind=request.kind, strength=request.strength,
                                  vms=list(request.vms), hosts=list(request.hosts)), caller)
        return rule_message(self.raft.state.rules[request.name])

    def ListRules(self, request: pb.ListRulesRequest, caller: Caller) -> pb.ListRulesResponse:
        return pb.ListRulesResponse(rules=[rule_message(r) for r in sorted(
            self.raft.state.rules.values(), key=lambda r: r.name)])

    def DeleteRule(self, request: pb.DeleteRuleRequest, caller: Caller
                   ) -> pb.DeleteRuleResponse:
        if (err := name_error("rule", request.name)) is not None:
            _fail("invalid", err)
        self._commit(c.DeleteRule(id=uuid.uuid4().hex, ts=time.time(), name=request.name),
                     caller)
        return pb.DeleteRuleResponse()

    def CreatePool(self, request: pb.Pool, caller: Caller) -> pb.Pool:
        errors = storage.pool_errors(request.name, request.type, request.path,
                                     request.source_host, request.source_path)
        if errors:
            _fail("invalid", "; ".join(errors))
        self._commit(c.CreatePool(id=uuid.uuid4().hex, ts=time.time(), name=request.name,
                                  type=request.type, shared=request.shared, path=request.path,
                                  source_host=request.source_host,
                                  source_path=request.source_path), caller)
        state = self.raft.state
        return pool_message(state.pools[request.name], state)

    def ListPools(self, request: pb.ListPoolsRequest, caller: Caller) -> pb.ListPoolsResponse:
        state = self.raft.state
        return pb.ListPoolsResponse(pools=[pool_message(p, state) for p in sorted(
            state.pools.values(), key=lambda p: p.name)])

    def DeletePool(self, request: pb.DeletePoolRequest, caller: Caller
                   ) -> pb.DeletePoolResponse:
        if (err := name_error("pool", request.name)) is not None:
            _fail("invalid", err)
        self._commit(c.DeletePool(id=uuid.uuid4().hex, ts=time.time(), name=request.name),
                     caller)
        return pb.DeletePoolResponse()

    def CreateNetwork(self, request: pb.Network, caller: Caller) -> pb.Network:
        errors = networks.network_errors(request.name, request.bridge)
        if errors:
            _fail("invalid", "; ".join(errors))
        self._commit(c.CreateNetwork(id=uuid.uuid4().hex, ts=time.time(), name=request.name,
                                     bridge=request.bridge), caller)
        state = self.raft.state
        return network_message(state.networks[request.name], state)

    def ListNetworks(self, request: pb.ListNetworksRequest, caller: Caller
                     ) -> pb.ListNetworksResponse:
        state = self.raft.state
        return pb.ListNetworksResponse(networks=[network_message(n, state) for n in sorted(
            state.networks.values(), key=lambda n: n.name)])

    def DeleteNetwork(self, request: pb.DeleteNetworkRequest, caller: Caller
                      ) -> pb.DeleteNetworkResponse:
        if (err := name_error("network", request.name)) is not None:
            _fail("invalid", err)
        self._commit(c.DeleteNetwork(id=uuid.uuid4().hex, ts=time.time(), name=request.name),
                     caller)
        return pb.DeleteNetworkResponse()

    def Balance(self, request: pb.BalanceRequest, caller: Caller) -> pb.BalanceReport:
        plan = plan_balance(self.raft.state, self._metrics(), time.time())
        if request.apply:
            for move in plan.moves:
                self._commit(c.RequestMigration(id=uuid.uuid4().hex, ts=time.time(),
                                                name=move.vm, to=move.target), caller)
        return pb.BalanceReport(
            imbalance=plan.imbalance, imbalance_after=plan.imbalance_after,
            applied=request.apply,
            moves=[pb.BalanceMove(vm=m.vm, source=m.source, target=m.target, gain=m.gain)
                   for m in plan.moves])

    # ---- who calls, tokens, the directory --------------------------------------------------------

    def history(self, host: str, vm: str, range_: str) -> pb.HistoryReply:
        """A host's monitoring history (or one of its VMs'), from that host: this member's
        own, or asked of the member over the member port."""
        if range_ not in RANGES:
            _fail("invalid", f"range must be one of {', '.join(RANGES)}")
        if host == self.config.name:
            return history_message(self.monitor.window(vm, range_))
        member = self.peers.membership.by_name(host)
        if member is None:
            _fail("not_found", f"host {shown(host)} is not a member of this cluster")
        try:
            reply: pb.HistoryReply = rpc.AgentStub(self.peers.channel(member)).History(
                pb.HistoryRequest(vm=vm, range=range_), timeout=2.0)
            return reply
        except grpc.RpcError as exc:
            _fail("unavailable", f"{host} does not answer ({exc.code().name}): its charts "
                  "come back when it does")

    def WhoAmI(self, request: pb.WhoAmIRequest, caller: Caller) -> pb.Identity:
        return pb.Identity(kind=caller.kind, name=caller.name,
                           role=caller.role.value if caller.role else "", peer=caller.peer)

    def _issue(self, name: str, role: str, ttl: float, owner: str, caller: Caller
               ) -> pb.CreatedToken:
        if not (0 <= ttl <= MAX_TTL):
            _fail("invalid", f"ttl must be 0 (never expires) to {MAX_TTL:.0f} seconds")
        secret = new_token()
        self._commit(c.CreateToken(id=uuid.uuid4().hex, ts=time.time(), name=name, role=role,
                                   sha256=token_hash(secret), owner=owner,
                                   expires_at=time.time() + ttl if ttl else 0.0), caller)
        return pb.CreatedToken(token=secret, info=token_message(self.raft.state.tokens[name]))

    def open_session(self, caller: Caller, ttl: float) -> pb.CreatedToken:
        """A web session for a token's holder: a token of its own with the same role, that
        ends when its parent expires at the latest, and with it when it is revoked."""
        parent = self.raft.state.tokens.get(caller.name)
        if caller.kind != "token" or parent is None:
            _fail("unauthenticated", "a session is opened with a valid token")
        root = parent.owner.removeprefix("session-of:") if parent.owner.startswith(
            "session-of:") else parent.name
        left = (parent.expires_at - time.time()) if parent.expires_at else ttl
        return self._issue(f"web-{uuid.uuid4().hex[:12]}", parent.role.value,
                           max(1.0, min(ttl, left)), session_owner(root), caller)

    def close_session(self, caller: Caller) -> None:
        """Log out: a session's own token is revoked (a token given on its own is not: an
        operator revokes those with hactl token revoke)."""
        token = self.raft.state.tokens.get(caller.name)
        if token is not None and token.owner.startswith(SESSION_OWNERS):
            self._commit(c.RevokeToken(id=uuid.uuid4().hex, ts=time.time(), name=token.name),
                         caller)

    def CreateToken(self, request: pb.CreateTokenRequest, caller: Caller) -> pb.CreatedToken:
        return self._issue(request.name, request.role, request.ttl_seconds,
                           request.owner or caller.actor, caller)

    def ListTokens(self, request: pb.ListTokensRequest, caller: Caller) -> pb.ListTokensResponse:
        return pb.ListTokensResponse(tokens=[token_message(t) for t in sorted(
            self.raft.state.tokens.values(), key=lambda t: t.name)])

    def RevokeToken(self, request: pb.RevokeTokenRequest, caller: Caller
                    ) -> pb.RevokeTokenResponse:
        if (err := name_error("token", request.name)) is not None:
            _fail("invalid", err)
        self._commit(c.RevokeToken(id=uuid.uuid4().hex, ts=time.time(), name=request.name),
                     caller)
        return pb.RevokeTokenResponse()

    def Login(self, request: pb.LoginRequest, caller: Caller) -> pb.CreatedToken:
        """A local user's password first, then the directory's, for a session token."""
        state = self.raft.state
        role = self.local_login.role_of(state.users, request.user, request.password,
                                        caller.peer)
        name = f"login-{uuid.uuid4().hex[:12]}"
        if role is not None:
            return self._issue(name, role.value, SESSION_TTL, user_owner(request.user), caller)
        if self.directory is None:
            _fail("unauthenticated", "wrong user name or password")
        role = self.directory.role_of(request.user, request.password, caller.peer,
                                      state.directory_roles)
        return self._issue(name, role.value, self.directory.config.session_ttl,
                           f"ldap:{request.user}", caller)

    def CreateUser(self, request: pb.CreateUserRequest, caller: Caller) -> pb.UserInfo:
        if (err := name_error("user", request.name)) is not None:
            _fail("invalid", err)
        if request.name in self.raft.state.users:
            _fail("exists", f"user {request.name} already exists")
        self._commit(c.CreateUser(id=uuid.uuid4().hex, ts=time.time(), name=request.name,
                                  role=request.role,
                                  password_hash=hash_password(request.password)), caller)
        return user_message(self.raft.state.users[request.name])

    def ListUsers(self, request: pb.ListUsersRequest, caller: Caller) -> pb.ListUsersResponse:
        return pb.ListUsersResponse(users=[user_message(u) for u in sorted(
            self.raft.state.users.values(), key=lambda u: u.name)])

    def DeleteUser(self, request: pb.DeleteUserRequest, caller: Caller
                   ) -> pb.DeleteUserResponse:
        self._existing("user", request.name, self.raft.state.users)
        self._commit(c.DeleteUser(id=uuid.uuid4().hex, ts=time.time(), name=request.name),
                     caller)
        return pb.DeleteUserResponse()

    def SetPassword(self, request: pb.SetPasswordRequest, caller: Caller) -> pb.UserInfo:
        state = self.raft.state
        self._existing("user", request.name, state.users)
        token = state.tokens.get(caller.name)
        own = token is not None and token.owner == user_owner(request.name)
        if caller.role is not Role.ADMIN and not own:
            _fail("denied", "permission denied: only an admin, or the user logged in with "
                  "their password, sets a password")
        self._commit(c.SetPassword(id=uuid.uuid4().hex, ts=time.time(), name=request.name,
                                   password_hash=hash_password(request.password)), caller)
        return user_message(self.raft.state.users[request.name])

    def GetDirectoryRoles(self, request: pb.GetDirectoryRolesRequest, caller: Caller
                          ) -> pb.DirectoryRoles:
        return pb.DirectoryRoles(roles={g: r.value for g, r in
                                        self.raft.state.directory_roles.items()})

    def SetDirectoryRoles(self, request: pb.DirectoryRoles, caller: Caller
                          ) -> pb.DirectoryRoles:
        self._commit(c.SetDirectoryRoles(id=uuid.uuid4().hex, ts=time.time(),
                                         roles=dict(request.roles)), caller)
        return self.GetDirectoryRoles(pb.GetDirectoryRolesRequest(), caller)


def user_message(u: User) -> pb.UserInfo:
    return pb.UserInfo(name=u.name, role=u.role.value, created_at=u.created_at)


def token_message(t: Token) -> pb.TokenInfo:
    return pb.TokenInfo(name=t.name, role=t.role.value, owner=t.owner, created_at=t.created_at,
                        expires_at=t.expires_at)


Inspector = Callable[[str], tuple[str, bool, bool]]
"""A host's libvirt asked about a domain: (its XML, running, already ours)."""


def inspect_domain(inspect: Inspector, host: str, name: str) -> pb.InspectedDomain:
    if (err := name_error("VM", name)) is not None:
        _fail("invalid", err)
    try:
        xml, running, managed = inspect(name)
    except HypervisorError as exc:
        if "not found" in str(exc).lower():
            _fail("not_found", f"no domain {shown(name)} in {host}'s libvirt")
        _fail("unavailable", str(exc))
    return pb.InspectedDomain(xml=xml, running=running, managed=managed)


class MemberService:
    """Member-to-member calls. Heartbeat and LiveMetrics, which only the acting leader
    answers, are cheap and lock-free on purpose: they run on the API's event loop, ahead of
    any client work; those that ask this host's libvirt run off it (api.ASKS_LIBVIRT)."""

    def __init__(self, config: Config, raft: RaftMember, leader: LeaderLoop,
                 monitor: History, membership: Membership) -> None:
        self.config = config
        self.monitor = monitor
        self.inspect: Inspector | None = None  # this host's libvirt (the daemon sets it)
        self.console: serial_console.Console | None = None  # its VMs' consoles (likewise)
        self.membership = membership
        self.raft = raft
        self.leader = leader

    def _require_leader(self) -> None:
        if not self.leader.active:
            _fail("conflict", NOT_LEADER)

    def Heartbeat(self, request: pb.HeartbeatRequest, caller: Caller) -> pb.HeartbeatResponse:
        beat = checked(request, caller.name, self.membership)
        if not self.leader.active:
            if self.raft.is_leader():  # its claim pending: a sign of life all the same
                self.leader.heard(beat, self.leader.clock.monotonic(), granted=False)
            _fail("conflict", NOT_LEADER)
        answer = self.leader.answer(beat)
        return pb.HeartbeatResponse(leader_term=answer.term, lease_seconds=answer.lease_seconds,
                                    message=answer.message, revision=answer.revision)

    def ListMembers(self, request: pb.ListMembersRequest, caller: Caller
                    ) -> pb.ListMembersReply:
        members = self.raft.state.members.values()
        if not members:
            _fail("unavailable", "the cluster has not recorded its members (every member must "
                  "run version 2: hactl cluster status)")
        return pb.ListMembersReply(members=[
            pb.Member(name=m.name, raft_addr=m.raft, api_addr=m.api, peer_addr=m.peer,
                      web_addr=m.web, voter=m.voter, record_version=m.version)
            for m in members])

    def History(self, request: pb.HistoryRequest, caller: Caller) -> pb.HistoryReply:
        if request.range not in RANGES:
            _fail("invalid", f"range must be one of {', '.join(RANGES)}")
        return history_message(self.monitor.window(request.vm, request.range))

    def InspectDomain(self, request: pb.InspectDomainRequest, caller: Caller
                      ) -> pb.InspectedDomain:
        if self.inspect is None:
            _fail("unavailable", f"{self.config.name} has no hypervisor to ask")
        return inspect_domain(self.inspect, self.config.name, request.name)

    def HostConsole(self, request: pb.ConsoleRequest, caller: Caller) -> pb.ConsoleOutput:
        if (errors := serial_console.request_errors(request)):
            _fail("invalid", "; ".join(errors))
        vm = self.raft.state.vms.get(request.name)
        if vm is None:
            _fail("not_found", f"no VM {shown(request.name)}")
        if self.console is None:
            _fail("unavailable", f"{self.config.name} has no hypervisor to ask")
        return self.console(vm, request)

    def LiveMetrics(self, request: pb.LiveMetricsRequest, caller: Caller
                    ) -> pb.LiveMetricsResponse:
        self._require_leader()
        return pb.LiveMetricsResponse(hosts=list(live_messages(
            self.leader.live, self.raft.state, self.config.ha.grant_window,
            self.config.ha.margin).values()))

