"""The JSON API (/api/v1) behind the console's pages, for scripts too (curl with a bearer
token). Each endpoint is one service call, checked as the gRPC method of the same name
(auth.REQUIRED), and answers with the records `hactl -o json` prints (client.*_dict), so the
keys are the same documented ones. Errors: {"error": message, "code": code} with 400, 401,
403, 404, 409, 503 or 507; a refused write changes nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import client as dicts
from ..alarming import Tolerance
from ..auth import Caller
from ..core.changes import STATUS, touched
from ..core.placement import HostTable
from ..core.state import ClusterState
from ..errors import ApiError, fail
from ..eventlog import EventLog
from ..eventlog import TooManyStreams as TooManyEventStreams
from ..messages import host_message, vms_by_host
from ..raftproc import RaftMember
from ..service import SESSION_OWNERS, SESSION_TTL, ClusterService
from ..v1 import cluster_pb2 as pb
from .feed import Pair, TooManyStreams, sse
from .metrics import ClusterCollector, registry
from .server import WebServer
from .session import COOKIE, clear_cookie, credentials, csrf_token, set_cookie
from .views import VmQuery, int_arg, operations, query_vms, summary

STATIC = Path(__file__).parent / "static"
MAX_DELTA_VMS = 200  # more VMs changed at once: the delta says so, tabs reload what they show
LIVE_EVERY = 2.0  # seconds between live figures (load, heartbeats, leader) on the stream
T = TypeVar("T")
JSON = dict[str, Any]


async def body(request: web.Request, spec: dict[str, type], required: tuple[str, ...] = ()
               ) -> JSON:
    """The request's JSON object, checked against spec (name -> type): unknown, missing or
    mistyped fields are refused (400) before anything is done."""
    if request.content_type != "application/json":
        fail("invalid", "send a JSON object with Content-Type: application/json")
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        fail("invalid", "the body is not valid JSON")
    if not isinstance(data, dict):
        fail("invalid", "the body must be a JSON object")
    unknown = sorted(set(data) - set(spec))
    if unknown:
        fail("invalid", f"unknown fields: {', '.join(k[:40] for k in unknown[:5])}")
    missing = [k for k in required if k not in data]
    if missing:
        fail("invalid", f"missing fields: {', '.join(missing)}")
    for key, value in data.items():
        kind = spec[key]
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              if kind is float else isinstance(value, kind)
              and not (kind is int and isinstance(value, bool)))
        if not ok:
            fail("invalid", f"{key} must be {kind.__name__}")
    return data


def flag(request: web.Request, key: str) -> bool:
    value = request.query.get(key, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        fail("invalid", f"{key} must be true or false")
    return value in ("true", "1", "")


def query_int(request: web.Request, key: str, low: int, high: int) -> int | None:
    if key not in request.query:
        return None
    try:
        value = int(request.query[key])
    except ValueError:
        fail("invalid", f"{key} must be a whole number")
    if not low <= value <= high:
        fail("invalid", f"{key} must be {low}-{high}")
    return value


class Routes:
    def __init__(self, server: WebServer, service: ClusterService, raft: RaftMember,
                 events: EventLog, local: Callable[[], dict[str, float]],
                 tolerance: Tolerance) -> None:
        self.server = server
        self.tolerance = tolerance
        self.metrics = registry(ClusterCollector(raft, service.live, local))
        self.service = service
        self.raft = raft
        self.events = events
        self.live: dict[str, pb.HostLive] = {}  # the leader's live figures, every LIVE_EVERY
        self._summaries: tuple[ClusterState, JSON] | None = None
        server.background += [self._deltas, self._live_figures, self._events]

    def table(self) -> list[web.AbstractRouteDef]:
        api = "/api/v1"
        return [
            web.get("/", self.index), web.static("/static", STATIC, follow_symlinks=False),
            web.get("/metrics", self.prometheus),
            web.get(f"{api}/session", self.session), web.post(f"{api}/session", self.login),
            web.delete(f"{api}/session", self.logout),
            web.get(f"{api}/status", self.status), web.get(f"{api}/summary", self.summary),
            web.get(f"{api}/operations", self.operations),
            web.get(f"{api}/hosts", self.hosts), web.get(f"{api}/hosts/{{name}}", self.host),
            web.post(f"{api}/hosts/{{name}}/maintenance", self.maintenance),
            web.get(f"{api}/hosts/{{name}}/what-if", self.what_if),
            web.post(f"{api}/hosts/{{name}}/confirm-fenced", self.confirm_fenced),
            web.get(f"{api}/hosts/{{name}}/history", self.host_history),
            web.get(f"{api}/vms/{{name}}/history", self.vm_history),
            web.get(f"{api}/vms", self.vms), web.post(f"{api}/vms", self.create_vm),
            web.post(f"{api}/vms/import", self.import_vm),
            web.get(f"{api}/vms/{{name}}", self.vm), web.delete(f"{api}/vms/{{name}}",
                                                                self.delete_vm),
            web.post(f"{api}/vms/{{name}}/start", self.start_vm),
            web.post(f"{api}/vms/{{name}}/stop", self.stop_vm),
            web.post(f"{api}/vms/{{name}}/migrate", self.migrate_vm),
            web.post(f"{api}/vms/{{name}}/resize", self.resize_vm),
            web.get(f"{api}/vms/{{name}}/console", self.console),
            web.post(f"{api}/vms/{{name}}/console", self.console),
            web.get(f"{api}/vms/{{name}}/explain", self.explain_vm),
            web.get(f"{api}/alarms", self.alarms),
            web.post(f"{api}/alarms/{{key}}/ack", self.ack_alarm),
            web.get(f"{api}/incidents", self.incidents),
            web.get(f"{api}/incidents/{{id}}", self.incident),
            web.get(f"{api}/rules", self.rules), web.post(f"{api}/rules", self.create_rule),
            web.delete(f"{api}/rules/{{name}}", self.delete_rule),
            web.get(f"{api}/storage", self.pools), web.post(f"{api}/storage", self.create_pool),
            web.delete(f"{api}/storage/{{name}}", self.delete_pool),
            web.get(f"{api}/networks", self.networks),
            web.post(f"{api}/networks", self.create_network),
            web.delete(f"{api}/networks/{{name}}", self.delete_network),
            web.get(f"{api}/balance", self.balance_plan), web.post(f"{api}/balance",
                                                                    self.balance_run),
            web.get(f"{api}/policy", self.policy), web.patch(f"{api}/policy", self.set_policy),
            web.get(f"{api}/tokens", self.tokens), web.post(f"{api}/tokens", self.create_token),
            web.delete(f"{api}/tokens/{{name}}", self.revoke_token),
            web.get(f"{api}/users", self.users), web.post(f"{api}/users", self.create_user),
            web.delete(f"{api}/users/{{name}}", self.delete_user),
            web.put(f"{api}/users/{{name}}/password", self.set_password),
            web.get(f"{api}/events", self.event_stream), web.get(f"{api}/live", self.live_stream),
        ]

    # ---- helpers --------------------------------------------------------------------------

    async def _json(self, request: web.Request, op: str, fn: Callable[[Caller], Any],
                    status: int = 200) -> web.Response:
        return web.json_response(await self.server.call(request, op, fn), status=status)

    @staticmethod
    def _id(request: web.Request) -> str:
        """The Idempotency-Key header, if any: a retried write then applies at most once."""
        return request.headers.get("Idempotency-Key", "") or uuid.uuid4().hex

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html",
                                headers={"Cache-Control": "no-cache"})

    async def prometheus(self, request: web.Request) -> web.Response:
        """Prometheus' scrape: a viewer token (Authorization: Bearer, as Prometheus'
        `authorization` setting sends it)."""
        text = await self.server.call(request, "Metrics", lambda c: generate_latest(
            self.metrics))
        return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # ---- sessions ---------------------------------------------------------------------------

    async def session(self, request: web.Request) -> web.Response:
        token, via_cookie = credentials(request)

        def who(caller: Caller) -> JSON:
            record = self.raft.state.tokens.get(caller.name)
            owner = record.owner if record else ""
            return {**dicts.identity_dict(self.service.WhoAmI(pb.WhoAmIRequest(), caller)),
                    # who logged in: the token a session was opened with, or the user
                    "user": owner.partition(":")[2] if owner.startswith(SESSION_OWNERS)
                    else caller.name,
                    "expires_at": record.expires_at or None if record else None,
                    "csrf": csrf_token(token) if via_cookie and token else None,
                    "member": self.server.config.name}
        return await self._json(request, "WhoAmI", who)

    async def login(self, request: web.Request) -> web.Response:
        """{"token": ...} or {"user": ..., "password": ...}: a session, in the cookie."""
        data = await body(request, {"token": str, "user": str, "password": str})
        if "token" in data:
            caller = self.server.auth.check("OpenSession", data["token"], None,
                                            request.remote or "?")
            created = await self.server.in_pool(
                lambda: self.service.open_session(caller, SESSION_TTL))
        elif "user" in data and "password" in data:
            public = self.server.auth.check("Login", None, None, request.remote or "?")
            login = pb.LoginRequest(user=data["user"], password=data["password"])
            created = await self.server.in_pool(lambda: self.service.Login(login, public))
        else:
            fail("invalid", "log in with a token, or a user and a password")
        response = web.json_response({**dicts.token_dict(created.info),
                                      "csrf": csrf_token(created.token)})
        set_cookie(response, created.token)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        await self.server.call(request, "CloseSession", self.service.close_session)
        response = web.json_response({})
        if COOKIE in request.cookies:
            clear_cookie(response)
        return response

    # ---- the cluster, hosts -------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.Response:
        return await self._json(request, "GetStatus", lambda c: dicts.status_dict(
            self.service.GetStatus(pb.GetStatusRequest(), c)))

    async def summary(self, request: web.Request) -> web.Response:
        return await self._json(request, "GetSummary", lambda c: self._summary())

    def _summary(self, table: HostTable | None = None) -> JSON:
        """The dashboard's figures, computed once per state (a delta and every tab's GET
        share them: 30 ms at 10,000 VMs), with this member's own alarms added fresh."""
        state = self.raft.state
        cached = self._summaries
        if cached is None or cached[0] is not state:
            cached = self._summaries = (state, summary(state, table))
        active = [a for a in state.alarms.values() if a.active]
        local = self.service.local_alarms()
        return {**cached[1], "failures_tolerated": self.tolerance.value(state),
                "alarms": {"active": len(active) + len(local),
                           "unacknowledged": sum(1 for a in active if not a.acked_at)
                           + len(local),
                           "critical": sum(1 for a in active if a.severity == "critical")
                           + len(local)}}

    async def operations(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListOperations",
                                lambda c: {"operations": operations(self.raft.state)})

    async def hosts(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListHosts", lambda c: [dicts.host_dict(h) for h in
                                self.service.ListHosts(pb.ListHostsRequest(), c).hosts])

    async def host(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return await self._json(request, "GetHost", lambda c: dicts.host_dict(
            self.service.GetHost(pb.GetHostRequest(name=name), c)))

    async def maintenance(self, request: web.Request) -> web.Response:
        data = await body(request, {"on": bool}, required=("on",))
        req = pb.SetMaintenanceRequest(name=request.match_info["name"], on=data["on"])
        return await self._json(request, "SetMaintenance", lambda c: dicts.host_dict(
            self.service.SetMaintenance(req, c)))

    async def what_if(self, request: web.Request) -> web.Response:
        req = pb.WhatIfRequest(host=request.match_info["name"],
                               maintenance=flag(request, "maintenance"))
        return await self._json(request, "WhatIf", lambda c: dicts.whatif_dict(
            self.service.WhatIf(req, c)))

    async def confirm_fenced(self, request: web.Request) -> web.Response:
        req = pb.GetHostRequest(name=request.match_info["name"])
        return await self._json(request, "ConfirmFenced", lambda c: dicts.host_dict(
            self.service.ConfirmFenced(req, c)))

    async def host_history(self, request: web.Request) -> web.Response:
        """The host's charts: CPU and memory every 5 s for an hour (?range=1h) or every
        minute for a day (?range=1d), from the host itself."""
        name, range_ = request.match_info["name"], request.query.get("range", "1h")

        def fetch(caller: Caller) -> JSON:
            self.service.host_record(name)
            reply = self.service.history(name, "", range_)
            return {"host": name, "vm": None, "range": range_, **dicts.history_dict(reply)}
        return await self._json(request, "GetHistory", fetch)

    async def vm_history(self, request: web.Request) -> web.Response:
        """A VM's charts (CPU, memory, disk and network I/O), from the host it runs on."""
        name, range_ = request.match_info["name"], request.query.get("range", "1h")

        def fetch(caller: Caller) -> JSON:
            vm = self.service.vm_record(name)
            if vm.host is None:
                fail("conflict", f"VM {name} is on no host: it has no charts now")
            reply = self.service.history(vm.host, name, range_)  # none yet: empty series
            return {"host": vm.host, "vm": name, "range": range_, **dicts.history_dict(reply)}
        return await self._json(request, "GetHistory", fetch)

    # ---- VMs ----------------------------------------------------------------------------------

    async def vms(self, request: web.Request) -> web.Response:
        query = VmQuery.parse(dict(request.query))

        def page(caller: Caller) -> JSON:
            state = self.raft.state
            total, found, counts = query_vms(state, query)
            return {"total": total, "offset": query.offset, "limit": query.limit,
                    "counts": counts, "revision": state.revision,
                    "vms": [dicts.vm_dict(self.service.vm_messages.one(v, state))
                            for v in found]}
        return await self._json(request, "ListVms", page)

    async def create_vm(self, request: web.Request) -> web.Response:
        data = await body(request, {"name": str, "vcpus": int, "memory_mib": int,
                                    "disk_gib": int, "ha": bool, "priority": int,
                                    "stopped": bool, "disks": list, "networks": list,
                                    "cpu": str},
                          required=("name", "vcpus", "memory_mib"))
        disks = data.pop("disks", [])
        if not all(isinstance(d, dict) and isinstance(d.get("pool"), str)
                   and type(d.get("size_gib")) is int and isinstance(d.get("image", ""), str)
                   and set(d) <= {"pool", "size_gib", "image"} for d in disks):
            fail("invalid", "disks is a list of {pool, size_gib, image}")
        if not all(isinstance(n, str) for n in data.get("networks", [])):
            fail("invalid", "networks is a list of names")
        req = pb.CreateVmRequest(**{"ha": True, **data}, request_id=self._id(request),
                                 disks=[pb.DiskSpec(**d) for d in disks])
        return await self._json(request, "CreateVm", lambda c: dicts.vm_dict(
            self.service.CreateVm(req, c)), status=201)

    async def import_vm(self, request: web.Request) -> web.Response:
        data = await body(request, {"name": str, "host": str, "ha": bool},
                          required=("name", "host"))
        req = pb.ImportVmRequest(**data, request_id=self._id(request))
        return await self._json(request, "ImportVm", lambda c: dicts.vm_dict(
            self.service.ImportVm(req, c)), status=201)

    async def vm(self, request: web.Request) -> web.Response:
        req = pb.VmRequest(name=request.match_info["name"])
        return await self._json(request, "GetVm", lambda c: dicts.vm_dict(
            self.service.GetVm(req, c)))

    async def delete_vm(self, request: web.Request) -> web.Response:
        flag = request.query.get("delete_disks", "false")
        if flag not in ("true", "false"):
            fail("invalid", "delete_disks is true or false")
        req = pb.VmRequest(name=request.match_info["name"], request_id=self._id(request),
                           delete_disks=flag == "true")
        return await self._json(request, "DeleteVm", lambda c: (
            self.service.DeleteVm(req, c), {})[1])

    async def start_vm(self, request: web.Request) -> web.Response:
        req = pb.VmRequest(name=request.match_info["name"], request_id=self._id(request))
        return await self._json(request, "StartVm", lambda c: dicts.vm_dict(
            self.service.StartVm(req, c)))

    async def stop_vm(self, request: web.Request) -> web.Response:
        req = pb.VmRequest(name=request.match_info["name"], request_id=self._id(request))
        return await self._json(request, "StopVm", lambda c: dicts.vm_dict(
            self.service.StopVm(req, c)))

    async def migrate_vm(self, request: web.Request) -> web.Response:
        data = await body(request, {"to": str})
        req = pb.MigrateVmRequest(name=request.match_info["name"], to=data.get("to", ""),
                                  request_id=self._id(request))
        return await self._json(request, "MigrateVm", lambda c: dicts.vm_dict(
            self.service.MigrateVm(req, c)))

    async def resize_vm(self, request: web.Request) -> web.Response:
        data = await body(request, {"vcpus": int, "memory_mib": int})
        req = pb.ResizeVmRequest(name=request.match_info["name"], request_id=self._id(request),
                                 **data)
        return await self._json(request, "ResizeVm", lambda c: dicts.vm_dict(
            self.service.ResizeVm(req, c)))

    async def console(self, request: web.Request) -> web.Response:
        """The VM's serial console: GET ?tail=N (its last lines) or ?after=OFFSET (what came
        since); POST {"input": "...", "after": OFFSET} types first."""
        data = await body(request, {"input": str, "after": int}) \
            if request.method == "POST" else {}
        tail = query_int(request, "tail", 0, 10_000)
        after = data["after"] if "after" in data else query_int(request, "after", 0, 1 << 62)
        if after is not None and not 0 <= after < 1 << 62:
            fail("invalid", "after must be an offset >= 0 (the offset of a previous answer)")
        req = pb.ConsoleRequest(name=request.match_info["name"], tail_lines=tail or 0,
                                after=after, input=str(data.get("input", "")).encode())
        return await self._json(request, "Console", lambda c: dicts.console_dict(
            self.service.Console(req, c)))

    async def explain_vm(self, request: web.Request) -> web.Response:
        req = pb.VmRequest(name=request.match_info["name"])
        return await self._json(request, "ExplainVm", lambda c: dicts.explain_dict(
            self.service.ExplainVm(req, c)))

    # ---- alarms, incidents, rules, balancing, policy, tokens -----------------------------------

    async def alarms(self, request: web.Request) -> web.Response:
        req = pb.ListAlarmsRequest(all=flag(request, "all") if "all" in request.query else False)
        return await self._json(request, "ListAlarms", lambda c: [
            dicts.alarm_dict(a) for a in self.service.ListAlarms(req, c).alarms])

    async def ack_alarm(self, request: web.Request) -> web.Response:
        req = pb.AckAlarmRequest(key=request.match_info["key"])
        return await self._json(request, "AckAlarm", lambda c: dicts.alarm_dict(
            self.service.AckAlarm(req, c)))

    async def incidents(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListIncidents", lambda c: [
            dicts.incident_dict(i) for i in
            self.service.ListIncidents(pb.ListIncidentsRequest(), c).incidents])

    async def incident(self, request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not raw.isdigit() or len(raw) > 18:
            fail("invalid", "an incident id is a number")
        req = pb.GetIncidentRequest(id=int(raw))
        return await self._json(request, "GetIncident", lambda c: dicts.incident_dict(
            self.service.GetIncident(req, c)))

    async def rules(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListRules", lambda c: [
            dicts.rule_dict(r) for r in self.service.ListRules(pb.ListRulesRequest(), c).rules])

    async def create_rule(self, request: web.Request) -> web.Response:
        data = await body(request, {"name": str, "kind": str, "strength": str, "vms": list,
                                    "hosts": list}, required=("name", "kind", "vms"))
        if not all(isinstance(x, str) for x in [*data["vms"], *data.get("hosts", [])]):
            fail("invalid", "vms and hosts are lists of names")
        req = pb.Rule(name=data["name"], kind=data["kind"],
                      strength=data.get("strength", "must"), vms=data["vms"],
                      hosts=data.get("hosts", []))
        return await self._json(request, "CreateRule", lambda c: dicts.rule_dict(
            self.service.CreateRule(req, c)), status=201)

    async def delete_rule(self, request: web.Request) -> web.Response:
        req = pb.DeleteRuleRequest(name=request.match_info["name"])
        return await self._json(request, "DeleteRule", lambda c: (
            self.service.DeleteRule(req, c), {})[1])

    async def pools(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListPools", lambda c: [
            dicts.pool_dict(p) for p in self.service.ListPools(pb.ListPoolsRequest(), c).pools])

    async def create_pool(self, request: web.Request) -> web.Response:
        data = await body(request, {"name": str, "type": str, "shared": bool, "path": str,
                                    "source_host": str, "source_path": str},
                          required=("name", "type"))
        req = pb.Pool(**{"shared": True, **data})
        return await self._json(request, "CreatePool", lambda c: dicts.pool_dict(
            self.service.CreatePool(req, c)), status=201)

    async def delete_pool(self, request: web.Request) -> web.Response:
        req = pb.DeletePoolRequest(name=request.match_info["name"])
        return await self._json(request, "DeletePool", lambda c: (
            self.service.DeletePool(req, c), {})[1])

    async def networks(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListNetworks", lambda c: [
            dicts.network_dict(n) for n in self.service.ListNetworks(
                pb.ListNetworksRequest(), c).networks])

    async def create_network(self, request: web.Request) -> web.Response:
        data = await body(request, {"name": str, "bridge": str}, required=("name", "bridge"))
        req = pb.Network(name=data["name"], bridge=data["bridge"])
        return await self._json(request, "CreateNetwork", lambda c: dicts.network_dict(
            self.service.CreateNetwork(req, c)), status=201)

    async def delete_network(self, request: web.Request) -> web.Response:
        req = pb.DeleteNetworkRequest(name=request.match_info["name"])
        return await self._json(request, "DeleteNetwork", lambda c: (
            self.service.DeleteNetwork(req, c), {})[1])

    async def balance_plan(self, request: web.Request) -> web.Response:
        return await self._json(request, "BalancePlan", lambda c: dicts.balance_dict(
            self.service.Balance(pb.BalanceRequest(apply=False), c)))

    async def balance_run(self, request: web.Request) -> web.Response:
        return await self._json(request, "BalanceRun", lambda c: dicts.balance_dict(
            self.service.Balance(pb.BalanceRequest(apply=True), c)))

    async def policy(self, request: web.Request) -> web.Response:
        return await self._json(request, "GetPolicy", lambda c: dicts.policy_dict(
            self.service.GetPolicy(pb.GetPolicyRequest(), c)))

    async def set_policy(self, request: web.Request) -> web.Response:
        data = await body(request, {"changes": dict, "expect_version": int},
                          required=("changes",))
        changes = data["changes"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in changes.values()):
            fail("invalid", "changes maps policy settings to numbers")
        req = pb.SetPolicyRequest(changes=changes, request_id=self._id(request))
        if "expect_version" in data:
            req.expect_version = data["expect_version"]
        return await self._json(request, "SetPolicy", lambda c: dicts.policy_dict(
            self.service.SetPolicy(req, c)))

    async def tokens(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListTokens", lambda c: [
            dicts.token_dict(t) for t in
            self.service.ListTokens(pb.ListTokensRequest(), c).tokens])

    async def create_token(self, request: web.Request) -> web.Response:
        data = await body(request, {"name": str, "role": str, "ttl_seconds": float,
                                    "owner": str}, required=("name", "role"))
        req = pb.CreateTokenRequest(**data)
        return await self._json(request, "CreateToken", lambda c: dicts.created_dict(
            self.service.CreateToken(req, c)), status=201)

    async def revoke_token(self, request: web.Request) -> web.Response:
        req = pb.RevokeTokenRequest(name=request.match_info["name"])
        return await self._json(request, "RevokeToken", lambda c: (
            self.service.RevokeToken(req, c), {})[1])

    async def users(self, request: web.Request) -> web.Response:
        return await self._json(request, "ListUsers", lambda c: [
            dicts.user_dict(u) for u in self.service.ListUsers(pb.ListUsersRequest(), c).users])

    async def create_user(self, request: web.Request) -> web.Response:
        data = await body(request, {"name": str, "role": str, "password": str},
                          required=("name", "role", "password"))
        req = pb.CreateUserRequest(**data)
        return await self._json(request, "CreateUser", lambda c: dicts.user_dict(
            self.service.CreateUser(req, c)), status=201)

    async def delete_user(self, request: web.Request) -> web.Response:
        req = pb.DeleteUserRequest(name=request.match_info["name"])
        return await self._json(request, "DeleteUser", lambda c: (
            self.service.DeleteUser(req, c), {})[1])

    async def set_password(self, request: web.Request) -> web.Response:
        data = await body(request, {"password": str}, required=("password",))
        req = pb.SetPasswordRequest(name=request.match_info["name"], password=data["password"])
        return await self._json(request, "SetPassword", lambda c: dicts.user_dict(
            self.service.SetPassword(req, c)))

    # ---- streams ------------------------------------------------------------------------------

    async def _open_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        return response

    def _still_allowed(self, request: web.Request, op: str) -> str | None:
        """Why the stream must end now (token revoked or expired, client gone), or None."""
        if request.transport is None or request.transport.is_closing():
            return "gone"
        try:
            self.server.caller(request, op)
        except ApiError as exc:
            return exc.message
        return None

    async def event_stream(self, request: web.Request) -> web.StreamResponse:
        """The event feed as Server-Sent Events (?backlog=N, ?follow=false to stop after
        the backlog); resumes after Last-Event-ID with nothing missed, while this member
        still holds it."""
        self.server.caller(request, "WatchEvents")
        backlog = int_arg(dict(request.query), "backlog", 20, 0, 1000)
        follow = flag(request, "follow") if "follow" in request.query else True
        boot, _, seq = request.headers.get("Last-Event-ID", "").partition(".")
        after = int(seq) if boot == self.server.feed.boot and seq.isdigit() else None
        try:
            sub = self.events.subscribe(backlog, after)
        except TooManyEventStreams as exc:
            fail("busy", str(exc))
        response = await self._open_stream(request)
        idle = 0.0
        try:
            while True:
                if not follow and not sub.backlog:
                    break
                event = await sub.next(timeout=1.0)
                why = self._still_allowed(request, "WatchEvents")
                if why is not None or sub.overflowed:
                    await response.write(sse("end", {"why": why or "fell behind: reconnect"}))
                    break
                if event is not None:
                    idle = 0.0
                    await response.write(sse("event", asdict(event),
                                             f"{self.server.feed.boot}.{event.seq}"))
                elif (idle := idle + 1.0) >= 10.0:
                    idle = 0.0
                    await response.write(b": ping\n\n")
        except ConnectionError:
            pass
        finally:
            sub.close()
        return response

    async def live_stream(self, request: web.Request) -> web.StreamResponse:
        """Typed deltas of every committed change (`delta`), live figures every 2 s (`live`),
        `reset` when a tab must reload what it shows; resumable with Last-Event-ID."""
        self.server.caller(request, "WatchLive")
        feed = self.server.feed
        try:
            stream, first = feed.open(request.headers.get("Last-Event-ID")
                                      or request.query.get("last"))
        except TooManyStreams as exc:
            fail("busy", str(exc))
        try:
            response = await self._open_stream(request)
            await response.write(b"".join(first))
            checked = time.monotonic()
            while True:
                messages = await stream.take(timeout=1.0)
                if time.monotonic() - checked >= 1.0 or stream.overflowed:
                    checked = time.monotonic()  # the token, once a second as gRPC streams
                    why = self._still_allowed(request, "WatchLive")
                    if why is not None or stream.overflowed:
                        await response.write(sse("end", {"why": why or "fell behind: "
                                                         "reconnect"}))
                        break
                if messages:
                    await response.write(messages)
        except ConnectionError:
            pass
        finally:
            feed.close(stream)
        return response

    # ---- what the streams carry -----------------------------------------------------------------

    def delta(self, pairs: list[Pair]) -> JSON | None:
        """One delta for a batch of applied commands: the records they changed, rendered
        once from the current state (a deleted record is null), and which other views
        (incidents, rules, policy, tokens) to reload."""
        state = self.raft.state
        keys: set[tuple[str, str]] = set()
        for cmd, result in pairs:
            keys |= touched(cmd, result, state)
        if not keys:
            return None
        out: JSON = {"revision": state.revision}
        vm_names = sorted(name for kind, name in keys if kind == "vm")
        if len(vm_names) > MAX_DELTA_VMS:
            out["vms_changed"] = len(vm_names)
        elif vm_names:
            out["vms"] = {n: dicts.vm_dict(self.service.vm_messages.one(state.vms[n], state))
                          if n in state.vms else None for n in vm_names}
        host_names = sorted(name for kind, name in keys if kind == "host")
        table = HostTable.of(state) \
            if host_names or STATUS in keys else None
        if host_names and table is not None:
            on_hosts = vms_by_host(state)
            out["hosts"] = {n: dicts.host_dict(host_message(state.hosts[n], state, table,
                                                            self.live, on_hosts))
                            if n in state.hosts else None for n in host_names}
        if STATUS in keys:
            out["summary"] = self._summary(table)
        out["views"] = sorted({kind for kind, _ in keys} - {"vm", "host", "status"})
        return out

    async def _deltas(self) -> None:
        await self.server.feed.run(self.delta, self.server.pool)

    async def _events(self) -> None:
        """The event feed rides the live stream too (one stream per tab, not two)."""
        while True:
            sub = self.events.subscribe(0)
            try:
                while not sub.overflowed:
                    event = await sub.next(timeout=5.0)
                    if event is not None and self.server.feed.streams:
                        self.server.feed.publish("event", asdict(event))
            finally:
                sub.close()

    async def _live_figures(self) -> None:
        """Every LIVE_EVERY seconds, while anyone watches: the leader's live figures per
        host and the Raft status (what changes without a commit), not kept for resuming."""
        while True:
            await asyncio.sleep(LIVE_EVERY)
            if not self.server.feed.streams:
                continue
            try:
                figures = await self.server.in_pool(self._figures)
            except ApiError:
                continue
            self.server.feed.publish("live", figures, keep=False)

    def _figures(self) -> JSON:
        self.live = self.service.live()
        status = self.service.GetStatus(pb.GetStatusRequest(), Caller("member", "", None, ""))
        return {"at": time.time(), "status": {
            k: v for k, v in dicts.status_dict(status).items() if k != "members"},
            "members": [{"name": m.name, "leader": m.leader, "connected": m.connected}
                        for m in status.members],
            "hosts": {h: dicts.live_dict(b) for h, b in sorted(self.live.items())}}
