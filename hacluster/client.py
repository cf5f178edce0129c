"""A gRPC client of the cluster that tries each endpoint in turn, returning plain dicts.

The dicts are hactl's JSON output, so their keys are a documented interface (README). Writes
carry a request id made here, so retrying one on another member applies it at most once.
It speaks TLS only, checking the members' certificates against the cluster CA, and sends its
token as `authorization: Bearer ...` (gRPC sends call credentials over secure channels only).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc

M = TypeVar("M", bound=Message)

# Worth another endpoint: the member is unreachable, busy, or cannot commit right now.
FAILOVER_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                  grpc.StatusCode.RESOURCE_EXHAUSTED}


class ClientError(Exception):
    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


def console_dict(reply: pb.ConsoleOutput) -> dict[str, Any]:
    return {"host": reply.host, "text": reply.text, "offset": reply.offset}


def vm_dict(vm: pb.Vm) -> dict[str, Any]:
    return {
        "name": vm.name, "uuid": vm.uuid,
        "host": vm.host if vm.HasField("host") else None,
        "state": vm.state, "status": vm.status, "vcpus": vm.vcpus,
        "memory_mib": vm.memory_mib, "disk_gib": vm.disk_gib, "ha": vm.ha,
        "priority": vm.priority, "pending_reasons": list(vm.pending_reasons),
        "last_host": vm.last_host if vm.HasField("last_host") else None,
        "observed": vm.observed, "restarts": vm.restarts, "relocations": vm.relocations,
        "error": vm.error or None,
        "migrating_to": vm.migrating_to if vm.HasField("migrating_to") else None,
        "migration_error": vm.migration_error or None, "version": vm.version,
        "failures": list(vm.failures),
        "disks": [{"pool": d.pool, "volume": d.volume, "size_gib": d.size_gib,
                   "image": d.image or None} for d in vm.disks],
        "nics": [{"network": n.network, "mac": n.mac} for n in vm.nics],
        "imported": vm.imported, "pinned": vm.pinned or None,
        "restart_needed": vm.restart_needed, "cpu": vm.cpu,
    }


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value


def _unknown(value: float) -> float | None:
    return None if value < 0 else round(value, 3)


def host_dict(h: pb.Host) -> dict[str, Any]:
    return {
        "name": h.name, "status": h.status, "vms": list(h.vms), "cpus": h.cpus,
        "memory_mib": h.memory_mib, "memory_free_mib": h.memory_free_mib,
        "memory_allocated_mib": h.memory_allocated_mib,
        "memory_available_mib": _unknown(h.memory_available_mib),
        "vcpus_allocated": h.vcpus_allocated, "cpu_load": _unknown(h.cpu_load),
        "disk_gib": h.disk_gib, "disk_free_gib": h.disk_free_gib,
        "api_addr": h.api_addr, "raft_addr": h.raft_addr,
        "last_heard_ago": _unknown(h.last_heard_ago), "lease": h.lease,
        "watchdog": h.watchdog, "maintenance": h.maintenance, "version": h.version,
        "fenced_by": h.fenced_by or None, "watchdog_error": h.watchdog_error or None,
        "heartbeat_rtt_ms": _unknown(h.heartbeat_rtt_ms), "cpu_model": h.cpu_model or None,
    }


def live_dict(b: pb.HostLive) -> dict[str, Any]:
    """A host's live figures as the leader has them (null: not heard yet)."""
    return {"cpu_load": _unknown(b.cpu_load),
            "memory_available_mib": _unknown(b.memory_available_mib),
            "last_heard_ago": _unknown(b.last_heard_ago),
            "heartbeat_rtt_ms": _unknown(b.heartbeat_rtt_ms), "lease_left": round(b.lease_left, 3)}


def history_dict(h: pb.HistoryReply) -> dict[str, Any]:
    """Charts' data: sample times and each series' values (null: no sample then)."""
    return {"step": h.step, "t": [round(t, 3) for t in h.t],
            "series": {s.name: [None if v != v else round(v, 3) for v in s.values]
                       for s in h.series}}


def alarm_dict(a: pb.Alarm) -> dict[str, Any]:
    return {"key": a.key, "kind": a.kind, "severity": a.severity, "subject": a.subject,
            "message": a.message, "active": not a.cleared_at, "raised_at": _t(a.raised_at),
            "cleared_at": _t(a.cleared_at), "acked_by": a.acked_by or None,
            "acked_at": _t(a.acked_at), "local": a.local}


def pool_dict(p: pb.Pool) -> dict[str, Any]:
    return {"name": p.name, "type": p.type, "shared": p.shared, "path": p.path or None,
            "source_host": p.source_host or None, "source_path": p.source_path or None,
            "capacity_gib": p.capacity_gib, "free_gib": p.free_gib,
            "allocated_gib": p.allocated_gib, "hosts": list(p.hosts),
            "errors": dict(sorted(p.errors.items()))}


def network_dict(n: pb.Network) -> dict[str, Any]:
    return {"name": n.name, "bridge": n.bridge, "hosts": list(n.hosts), "vms": n.vms}


def rule_dict(r: pb.Rule) -> dict[str, Any]:
    return {"name": r.name, "kind": r.kind, "strength": r.strength, "vms": list(r.vms),
            "hosts": list(r.hosts)}


def whatif_dict(r: pb.WhatIfReport) -> dict[str, Any]:
    return {"host": r.host, "maintenance": r.maintenance,
            "vms": [{"name": v.name, "target": v.target if v.HasField("target") else None,
                     "reason": v.reason} for v in r.vms]}


def _t(value: float) -> float | None:
    return value or None


def incident_dict(i: pb.Incident) -> dict[str, Any]:
    """Timestamps are wall-clock seconds (null = not yet); the seconds_* fields are
    durations from the host's last heartbeat, the figures an operator asks for."""
    base = i.last_heard or i.declared_at
    vms = [{"name": v.name, "host": v.host or None, "placed_at": _t(v.placed_at),
            "running_at": _t(v.running_at),
            "seconds_to_running": round(v.running_at - base, 3) if v.running_at else None}
           for v in i.vms]
    done = [v["seconds_to_running"] for v in vms if v["seconds_to_running"] is not None]
    return {
        "id": i.id, "host": i.host, "open": i.open, "last_heard": _t(i.last_heard),
        "declared_at": _t(i.declared_at), "fenced_at": _t(i.fenced_at),
        "fenced_by": i.fenced_by or None, "returned_at": _t(i.returned_at),
        "seconds_to_declared": round(i.declared_at - base, 3) if i.declared_at else None,
        "seconds_to_fenced": round(i.fenced_at - base, 3) if i.fenced_at else None,
        "seconds_to_all_running": max(done) if done and len(done) == len(vms) else None,
        "vms": vms,
    }


def token_dict(t: pb.TokenInfo) -> dict[str, Any]:
    return {"name": t.name, "role": t.role, "owner": t.owner, "created_at": _t(t.created_at),
            "expires_at": _t(t.expires_at)}


def user_dict(u: pb.UserInfo) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "created_at": _t(u.created_at)}


def created_dict(c: pb.CreatedToken) -> dict[str, Any]:
    return {**token_dict(c.info), "token": c.token}


def policy_dict(p: pb.Policy) -> dict[str, Any]:
    return {**{k: _number(v) for k, v in sorted(p.settings.items())}, "version": p.version}


def event_dict(e: pb.Event) -> dict[str, Any]:
    return {"seq": e.seq, "ts": e.ts, "kind": e.kind, "message": e.message}


def explain_dict(e: pb.Explanation) -> dict[str, Any]:
    return {"vm": e.vm, "choice": e.choice or None,
            "hosts": [{"host": h.host, "eligible": h.eligible, "reason": h.reason or None,
                       "score": round(h.score, 3) if h.eligible else None} for h in e.hosts]}


def balance_dict(r: pb.BalanceReport) -> dict[str, Any]:
    return {"imbalance": round(r.imbalance, 4), "imbalance_after": round(r.imbalance_after, 4),
            "applied": r.applied,
            "moves": [{"vm": m.vm, "source": m.source, "target": m.target,
                       "gain": round(m.gain, 4)} for m in r.moves]}


def identity_dict(i: pb.Identity) -> dict[str, Any]:
    return {"kind": i.kind, "name": i.name, "role": i.role or None, "peer": i.peer}


def member_dict(m: pb.Member) -> dict[str, Any]:
    return {"name": m.name, "raft_addr": m.raft_addr, "api_addr": m.api_addr,
            "peer_addr": m.peer_addr, "web_addr": m.web_addr, "voter": m.voter}


def status_dict(s: pb.ClusterStatus) -> dict[str, Any]:
    return {
        "leader": s.leader or None, "term": s.term, "leader_term": s.leader_term,
        "quorum": s.quorum, "self": s.self, "commit_index": s.commit_index,
        "applied_index": s.applied_index, "hosts_up": s.hosts_up, "vms": s.vms,
        "vms_running": s.vms_running, "halted": s.halted or None,
        "snapshot_index": s.snapshot_index, "log_entries": s.log_entries,
        "journal_bytes": s.journal_bytes,
        "cluster_version": s.cluster_version, "code_version": s.code_version,
        "members": [{"name": m.name, "raft_addr": m.raft_addr, "api_addr": m.api_addr,
                     "leader": m.leader, "connected": m.connected, "voter": m.voter,
                     "version": m.version or None} for m in s.members],
    }


def _refusal(code: grpc.StatusCode, details: str) -> str:
    """The server's message, saying plainly which kind of refusal it is."""
    if code == grpc.StatusCode.UNAUTHENTICATED and not details.startswith("unauthenticated"):
        return f"unauthenticated: {details}"
    if code == grpc.StatusCode.PERMISSION_DENIED and not details.startswith("permission"):
        return f"permission denied: {details}"
    return details or str(code)


class Client:
    def __init__(self, endpoints: Sequence[str], timeout: float = 10.0, *,
                 ca: bytes | None = None, token: str | None = None) -> None:
        if not endpoints:
            raise ClientError("no endpoints: use --endpoints host:port,... or HACTL_ENDPOINTS")
        if ca is None:
            raise ClientError("no CA certificate to check the members with: use --ca FILE or "
                              "HACTL_CA (the cluster's ca.pem)")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
        if token:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.access_token_call_credentials(token))
        self._credentials = credentials
        self._channels: dict[str, grpc.Channel] = {}

    def _channel(self, endpoint: str) -> grpc.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = self._channels[endpoint] = grpc.secure_channel(endpoint,
                                                                     self._credentials)
        return channel

    def _call(self, method: Callable[[rpc.ClusterStub], Callable[..., M]],
              request: Message, timeout: float | None = None) -> M:
        errors = []
        for endpoint in self.endpoints:
            try:
                return method(rpc.ClusterStub(self._channel(endpoint)))(
                    request, timeout=max(timeout or 0.0, self.timeout))
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
                if code not in FAILOVER_CODES:
                    raise ClientError(_refusal(code, details), code) from exc
                errors.append(f"{endpoint}: {details or code.name}")
        raise ClientError("no member could answer: " + "; ".join(errors),
                          grpc.StatusCode.UNAVAILABLE)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    # ---- calls ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return status_dict(self._call(lambda s: s.GetStatus, pb.GetStatusRequest()))

    def list_hosts(self) -> list[dict[str, Any]]:
        reply = self._call(lambda s: s.ListHosts, pb.ListHostsRequest())
        return [host_dict(h) for h in reply.hosts]

    def get_host(self, name: str) -> dict[str, Any]:
        return host_dict(self._call(lambda s: s.GetHost, pb.GetHostRequest(name=name)))

    def create_vm(self, name: str, vcpus: int, memory_mib: int, disk_gib: int = 0,
                  ha: bool = True, priority: int = 0, stopped: bool = False,
                  disks: Sequence[tuple[str, int, str]] = (),
                  networks: Sequence[str] = (), cpu: str = "baseline") -> dict[str, Any]:
        """`disks`: (pool, size GiB, image "POOL/VOLUME" or "") each, vda first;
        `networks`: a NIC on each; `cpu`: baseline or host-passthrough."""
        request = pb.CreateVmRequest(
            name=name, vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib, ha=ha,
            priority=priority, stopped=stopped, request_id=uuid.uuid4().hex,
            disks=[pb.DiskSpec(pool=p, size_gib=n, image=i) for p, n, i in disks],
            networks=networks, cpu=cpu)
        return vm_dict(self._call(lambda s: s.CreateVm, request))

    def resize_vm(self, name: str, vcpus: int | None = None,
                  memory_mib: int | None = None) -> dict[str, Any]:
        request = pb.ResizeVmRequest(name=name, vcpus=vcpus, memory_mib=memory_mib,
                                     request_id=uuid.uuid4().hex)
        return vm_dict(self._call(lambda s: s.ResizeVm, request))

    def import_vm(self, name: str, host: str, ha: bool = False) -> dict[str, Any]:
        request = pb.ImportVmRequest(name=name, host=host, ha=ha,
                                     request_id=uuid.uuid4().hex)
        return vm_dict(self._call(lambda s: s.ImportVm, request))

    def console(self, name: str, tail_lines: int = 0, after: int | None = None,
                typed: bytes = b"") -> dict[str, Any]:
        """The VM's serial console: its last tail_lines lines, or what came after `after`
        (an earlier answer's offset), after typing `typed` into it."""
        return console_dict(self._call(lambda s: s.Console, pb.ConsoleRequest(
            name=name, tail_lines=tail_lines, after=after, input=typed)))

    def get_vm(self, name: str) -> dict[str, Any]:
        return vm_dict(self._call(lambda s: s.GetVm, pb.VmRequest(name=name)))

    def list_vms(self) -> list[dict[str, Any]]:
        return [vm_dict(v) for v in self._call(lambda s: s.ListVms, pb.ListVmsRequest()).vms]

    def start_vm(self, name: str) -> dict[str, Any]:
        request = pb.VmRequest(name=name, request_id=uuid.uuid4().hex)
        return vm_dict(self._call(lambda s: s.StartVm, request))

    def stop_vm(self, name: str) -> dict[str, Any]:
        request = pb.VmRequest(name=name, request_id=uuid.uuid4().hex)
        return vm_dict(self._call(lambda s: s.StopVm, request))

    def set_vm_state(self, name: str, state: str) -> dict[str, Any]:
        request = pb.SetVmStateRequest(name=name, state=state, request_id=uuid.uuid4().hex)
        return vm_dict(self._call(lambda s: s.SetVmState, request))

    def confirm_fenced(self, name: str) -> dict[str, Any]:
        return host_dict(self._call(lambda s: s.ConfirmFenced, pb.GetHostRequest(name=name)))

    def add_member(self, name: str, raft: str, api: str, peer: str = "", web: str = ""
                   ) -> dict[str, Any]:
        request = pb.AddMemberRequest(name=name, raft_addr=raft, api_addr=api, peer_addr=peer,
                                      web_addr=web)
        return member_dict(self._call(lambda s: s.AddMember, request, timeout=40.0))

    def remove_member(self, name: str) -> dict[str, Any]:
        return member_dict(self._call(lambda s: s.RemoveMember, pb.GetHostRequest(name=name),
                                      timeout=40.0))

    def incidents(self) -> list[dict[str, Any]]:
        reply = self._call(lambda s: s.ListIncidents, pb.ListIncidentsRequest())
        return [incident_dict(i) for i in reply.incidents]

    def incident(self, incident_id: int) -> dict[str, Any]:
        return incident_dict(self._call(lambda s: s.GetIncident,
                                        pb.GetIncidentRequest(id=incident_id)))

    def get_policy(self) -> dict[str, Any]:
        return policy_dict(self._call(lambda s: s.GetPolicy, pb.GetPolicyRequest()))

    def set_policy(self, changes: dict[str, float]) -> dict[str, Any]:
        request = pb.SetPolicyRequest(changes=changes, request_id=uuid.uuid4().hex)
        return policy_dict(self._call(lambda s: s.SetPolicy, request))

    def events(self, backlog: int = 20, follow: bool = False) -> Iterator[dict[str, Any]]:
        """The event feed of the first member that answers, until interrupted."""
        errors = []
        for endpoint in self.endpoints:
            stream = rpc.ClusterStub(self._channel(endpoint)).WatchEvents(
                pb.WatchEventsRequest(backlog=backlog, follow=follow))
            try:
                for e in stream:
                    yield event_dict(e)
                return
            except grpc.RpcError as exc:
                if exc.code() not in FAILOVER_CODES:
                    raise ClientError(_refusal(exc.code(), exc.details() or ""),
                                      exc.code()) from exc
                errors.append(f"{endpoint}: {exc.details() or exc.code().name}")
        raise ClientError("no member could answer: " + "; ".join(errors),
                          grpc.StatusCode.UNAVAILABLE)

    def migrate_vm(self, name: str, to: str = "") -> dict[str, Any]:
        request = pb.MigrateVmRequest(name=name, to=to, request_id=uuid.uuid4().hex)
        return vm_dict(self._call(lambda s: s.MigrateVm, request))

    def explain_vm(self, name: str) -> dict[str, Any]:
        return explain_dict(self._call(lambda s: s.ExplainVm, pb.VmRequest(name=name)))

    def what_if(self, host: str, maintenance: bool = False) -> dict[str, Any]:
        r = self._call(lambda s: s.WhatIf, pb.WhatIfRequest(host=host, maintenance=maintenance))
        return whatif_dict(r)

    def alarms(self, all_: bool = False) -> list[dict[str, Any]]:
        reply = self._call(lambda s: s.ListAlarms, pb.ListAlarmsRequest(all=all_))
        return [alarm_dict(a) for a in reply.alarms]

    def ack_alarm(self, key: str) -> dict[str, Any]:
        return alarm_dict(self._call(lambda s: s.AckAlarm, pb.AckAlarmRequest(key=key)))

    def set_maintenance(self, name: str, on: bool) -> dict[str, Any]:
        request = pb.SetMaintenanceRequest(name=name, on=on)
        return host_dict(self._call(lambda s: s.SetMaintenance, request))

    def create_rule(self, name: str, kind: str, strength: str, vms: Sequence[str],
                    hosts: Sequence[str] = ()) -> dict[str, Any]:
        request = pb.Rule(name=name, kind=kind, strength=strength, vms=vms, hosts=hosts)
        return rule_dict(self._call(lambda s: s.CreateRule, request))

    def list_rules(self) -> list[dict[str, Any]]:
        return [rule_dict(r) for r in self._call(lambda s: s.ListRules,
                                                  pb.ListRulesRequest()).rules]

    def delete_rule(self, name: str) -> None:
        self._call(lambda s: s.DeleteRule, pb.DeleteRuleRequest(name=name))

    def create_pool(self, name: str, type_: str, shared: bool, path: str = "",
                    source_host: str = "", source_path: str = "") -> dict[str, Any]:
        request = pb.Pool(name=name, type=type_, shared=shared, path=path,
                          source_host=source_host, source_path=source_path)
        return pool_dict(self._call(lambda s: s.CreatePool, request))

    def list_pools(self) -> list[dict[str, Any]]:
        return [pool_dict(p) for p in self._call(lambda s: s.ListPools,
                                                  pb.ListPoolsRequest()).pools]

    def delete_pool(self, name: str) -> None:
        self._call(lambda s: s.DeletePool, pb.DeletePoolRequest(name=name))

    def create_network(self, name: str, bridge: str) -> dict[str, Any]:
        request = pb.Network(name=name, bridge=bridge)
        return network_dict(self._call(lambda s: s.CreateNetwork, request))

    def list_networks(self) -> list[dict[str, Any]]:
        return [network_dict(n) for n in self._call(lambda s: s.ListNetworks,
                                                     pb.ListNetworksRequest()).networks]

    def delete_network(self, name: str) -> None:
        self._call(lambda s: s.DeleteNetwork, pb.DeleteNetworkRequest(name=name))

    def balance(self, apply: bool = False) -> dict[str, Any]:
        return balance_dict(self._call(lambda s: s.Balance, pb.BalanceRequest(apply=apply)))

    def delete_vm(self, name: str, delete_disks: bool = False) -> None:
        self._call(lambda s: s.DeleteVm, pb.VmRequest(name=name, request_id=uuid.uuid4().hex,
                                                      delete_disks=delete_disks))

    # ---- identity, tokens, the directory ---------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        return identity_dict(self._call(lambda s: s.WhoAmI, pb.WhoAmIRequest()))

    def create_token(self, name: str, role: str, ttl: float = 0.0, owner: str = ""
                     ) -> dict[str, Any]:
        return created_dict(self._call(lambda s: s.CreateToken, pb.CreateTokenRequest(
            name=name, role=role, ttl_seconds=ttl, owner=owner)))

    def list_tokens(self) -> list[dict[str, Any]]:
        return [token_dict(t) for t in self._call(lambda s: s.ListTokens,
                                                   pb.ListTokensRequest()).tokens]

    def revoke_token(self, name: str) -> None:
        self._call(lambda s: s.RevokeToken, pb.RevokeTokenRequest(name=name))

    def login(self, user: str, password: str) -> dict[str, Any]:
        return created_dict(self._call(lambda s: s.Login,
                                       pb.LoginRequest(user=user, password=password)))

    def create_user(self, name: str, role: str, password: str) -> dict[str, Any]:
        return user_dict(self._call(lambda s: s.CreateUser, pb.CreateUserRequest(
            name=name, role=role, password=password)))

    def list_users(self) -> list[dict[str, Any]]:
        return [user_dict(u) for u in self._call(lambda s: s.ListUsers,
                                                  pb.ListUsersRequest()).users]

    def delete_user(self, name: str) -> None:
        self._call(lambda s: s.DeleteUser, pb.DeleteUserRequest(name=name))

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        return user_dict(self._call(lambda s: s.SetPassword, pb.SetPasswordRequest(
            name=name, password=password)))

    def directory_roles(self) -> dict[str, str]:
        return dict(self._call(lambda s: s.GetDirectoryRoles,
                               pb.GetDirectoryRolesRequest()).roles)

    def set_directory_roles(self, roles: dict[str, str]) -> dict[str, str]:
        return dict(self._call(lambda s: s.SetDirectoryRoles,
                               pb.DirectoryRoles(roles=roles)).roles)
