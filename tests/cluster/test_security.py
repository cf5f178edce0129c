"""Nobody gets in uninvited, on a real lab: every RPC against every kind of credential, plaintext
and certificate-less connections, a member's certificate used for another member, revocation
reaching every member and stream within a second, and the forged-heartbeat attack replayed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from hacluster.auth import ADMIN, MEMBER, OPERATOR, PUBLIC, REQUIRED, VIEWER, operation
from hacluster.core.model import Role
from hacluster.v1 import cluster_pb2 as pb
from hacluster.v1 import cluster_pb2_grpc as rpc

from .conftest import LabRun, wait_for
from .test_failover import (
    HOST_LOSS,
    busiest_follower,
    client,
    fault_then_recovered,
    start_vms,
    watched,
)

pytestmark = pytest.mark.cluster

RANK = {"viewer": VIEWER.rank, "operator": OPERATOR.rank, "admin": ADMIN.rank}
CLUSTER = pb.DESCRIPTOR.services_by_name["Cluster"]


def channel(lab: LabRun, api: str, token: str | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(lab.ca_file.read_bytes())
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(api, credentials)


def call(ch: grpc.Channel, method: Any, request: Any) -> grpc.StatusCode:
    """The status of one call (its stream read to the end)."""
    rpc_call = (ch.unary_stream if method.server_streaming else ch.unary_unary)(
        f"/{CLUSTER.full_name}/{method.name}", request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=getattr(pb, method.output_type.name).FromString)
    try:
        reply = rpc_call(request, timeout=10)
        if method.server_streaming:
            list(reply)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def harmless(method: Any) -> Any:
    """A request for this RPC that changes nothing even when allowed (empty names are
    invalid), except where an empty one is a read."""
    msg = getattr(pb, method.input_type.name)()
    if method.name == "WatchEvents":
        msg.follow = False
    if method.name == "SetDirectoryRoles":
        msg.roles["cn=x"] = "no-such-role"  # an empty map would be a valid change
    return msg


def commit_indexes(lab: LabRun) -> list[int]:
    return [lab.client_at([h["api"]]).status()["commit_index"] for h in lab.status()]


def test_every_rpc_against_every_credential(make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    admin = client(lab)
    tokens = {role: admin.create_token(f"t-{role}", role)["token"]
              for role in ("viewer", "operator", "admin")}
    revoked = admin.create_token("t-revoked", "admin")["token"]
    admin.revoke_token("t-revoked")
    expired = admin.create_token("t-expired", "admin", ttl=1)["token"]
    time.sleep(1.5)
    credentials: dict[str, str | None] = {
        "none": None, "bad": "hat_" + "x" * 43, "revoked": revoked, "expired": expired,
        **tokens}
    api = lab.status()[1]["api"]  # a follower, as good as the leader
    before = commit_indexes(lab)
    refused: dict[str, set[str]] = {}
    for method in CLUSTER.methods:
        request = harmless(method)
        need = REQUIRED[operation(method.name, request)]
        for who, token in credentials.items():
            code = call(channel(lab, api, token), method, request)
            expected_ok = need is PUBLIC or (
                who in RANK and need is not MEMBER and isinstance(need, Role)
                and RANK[who] >= need.rank)
            if expected_ok:
                assert code not in (grpc.StatusCode.UNAUTHENTICATED,
                                    grpc.StatusCode.PERMISSION_DENIED), (method.name, who)
            else:
                want = (grpc.StatusCode.PERMISSION_DENIED if who in RANK
                        else grpc.StatusCode.UNAUTHENTICATED)
                assert code == want, (method.name, who, code)
                refused.setdefault(who, set()).add(method.name)
    assert refused["none"] >= {"CreateVm", "ListVms", "WatchEvents"}
    assert "ListVms" not in refused.get("viewer", set())
    assert {"CreateVm", "SetPolicy"} <= refused["viewer"]
    assert "SetPolicy" in refused["operator"] and "CreateVm" not in refused["operator"]
    # only allowed calls may have written anything: the refused ones did not (the allowed
    # ones here are empty requests, refused as invalid before they were proposed)
    assert commit_indexes(lab) == before


def test_plaintext_and_certificate_less_member_calls_are_refused(
        make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    h = lab.status()[0]
    with pytest.raises(grpc.RpcError) as err:
        rpc.ClusterStub(grpc.insecure_channel(h["api"])).ListVms(pb.ListVmsRequest(), timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # no plaintext port at all
    # a heartbeat on the API port, even with an admin token, is not a member's
    stub = rpc.AgentStub(channel(lab, h["api"], lab.token))
    with pytest.raises(grpc.RpcError) as err:
        stub.Heartbeat(pb.HeartbeatRequest(host="host1"), timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "member certificate" in (err.value.details() or "")
    # the member port takes no connection without a member certificate
    ip, port = h["api"].rsplit(":", 1)
    with pytest.raises(grpc.RpcError) as err:
        rpc.AgentStub(channel(lab, f"{ip}:{int(port) + 2}", lab.token)).LiveMetrics(
            pb.LiveMetricsRequest(), timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def member_channel(lab: LabRun, as_host: str, target: str) -> grpc.Channel:
    pki = lab.dir / "pki"
    credentials = grpc.ssl_channel_credentials(
        (pki / "ca.pem").read_bytes(), private_key=(pki / f"{as_host}.key").read_bytes(),
        certificate_chain=(pki / f"{as_host}.pem").read_bytes())
    ip, port = target.rsplit(":", 1)
    return grpc.secure_channel(f"{ip}:{int(port) + 2}", credentials)


@pytest.mark.parametrize("raft_process", ["false", "true"])
def test_a_members_certificate_cannot_heartbeat_for_another(
        make_lab: Callable[..., LabRun], raft_process: str) -> None:
    """raft_process: the member port served by the daemon, or by its Raft process
    (memberport.py: heartbeats answered there, live metrics forwarded to the daemon)."""
    lab = make_lab(3, extra=("--set", f"raft.process={raft_process}"))
    leader_name = client(lab).status()["leader"]
    leader_api = next(h["api"] for h in lab.status() if h["name"] == leader_name)
    forger = next(h for h in ("host1", "host2", "host3") if h != leader_name)
    victim = next(h for h in ("host1", "host2", "host3") if h not in (leader_name, forger))
    stub = rpc.AgentStub(member_channel(lab, forger, leader_api))
    with pytest.raises(grpc.RpcError) as err:
        stub.Heartbeat(pb.HeartbeatRequest(host=victim), timeout=3)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"cannot send heartbeats for '{victim}'" in (err.value.details() or "")
    # its own name is fine, and its live metrics call works (it is a member)
    assert stub.Heartbeat(pb.HeartbeatRequest(host=forger), timeout=3).lease_seconds > 0
    assert len(stub.LiveMetrics(pb.LiveMetricsRequest(), timeout=3).hosts) == 3


def test_a_revoked_token_stops_everywhere_within_a_second_streams_included(
        make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    apis = [h["api"] for h in lab.status()]
    token = client(lab).create_token("short-lived", "operator")["token"]
    stream_ended: list[tuple[float, grpc.StatusCode]] = []

    def follow() -> None:
        stub = rpc.ClusterStub(channel(lab, apis[2], token))
        try:
            for _ in stub.WatchEvents(pb.WatchEventsRequest(backlog=0, follow=True)):
                pass
        except grpc.RpcError as exc:
            stream_ended.append((time.monotonic(), exc.code()))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(1.0)
    assert all(lab.client_at([a], token=token).whoami()["name"] == "short-lived" for a in apis)
    lab.client_at([apis[0]]).revoke_token("short-lived")
    revoked_at = time.monotonic()
    for a in apis:
        wait_for(lambda a=a: _refused(lab, a, token), timeout=1.0,  # type: ignore[misc]
                 what=f"the token refused on {a}")
    assert time.monotonic() - revoked_at < 1.0 + 0.5  # every member, in about a second
    thread.join(3)
    assert stream_ended and stream_ended[0][1] == grpc.StatusCode.UNAUTHENTICATED
    assert stream_ended[0][0] - revoked_at < 2.0  # the next check, within a second or so


def _refused(lab: LabRun, api: str, token: str) -> bool:
    try:
        lab.client_at([api], token=token).whoami()
    except Exception as exc:  # the client's error says which
        return "unauthenticated" in str(exc)
    return False


def test_the_forged_heartbeat_attack_no_longer_blocks_a_failover(
        make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    start_vms(lab, 6)
    victim, lost = busiest_follower(lab)
    leader_name = client(lab).status()["leader"]
    leader_api = next(h["api"] for h in lab.status() if h["name"] == leader_name)
    stop = threading.Event()
    refusals: list[grpc.StatusCode] = []

    def forge() -> None:
        # the attacker holds an admin token and even a certificate of another member
        by_token = rpc.AgentStub(channel(lab, leader_api, lab.token))
        other = next(h for h in ("host1", "host2", "host3") if h not in (victim, leader_name))
        by_cert = rpc.AgentStub(member_channel(lab, other, leader_api))
        while not stop.is_set():
            for stub in (by_token, by_cert):
                try:
                    stub.Heartbeat(pb.HeartbeatRequest(host=victim), timeout=1)
                except grpc.RpcError as exc:
                    refusals.append(exc.code())
            time.sleep(0.2)

    attacker = threading.Thread(target=forge, daemon=True)
    attacker.start()
    try:
        with watched(lab) as oracle:
            fault_then_recovered(lab, oracle, "kill", victim, lost, HOST_LOSS)
    finally:
        stop.set()
        attacker.join(3)
    assert refusals and set(refusals) <= {grpc.StatusCode.UNAUTHENTICATED,
                                          grpc.StatusCode.PERMISSION_DENIED}
    log = (lab.dir / leader_name / "haclusterd.log").read_text()
    assert "refused from" in log and log.count("refused from") < len(refusals)  # rate-limited


def test_writes_are_audited_with_who_and_from_where(make_lab: Callable[..., LabRun],
                                                   tmp_path: Path) -> None:
    lab = make_lab(3)
    ops = client(lab).create_token("ops-bot", "operator")["token"]
    lab.client_at([lab.status()[0]["api"]], token=ops).create_vm("audited", vcpus=1,
                                                                 memory_mib=64)
    events = [e["message"] for e in client(lab).events(backlog=50)]
    assert any("VM audited created" in m and "by token:ops-bot from ipv4:127.0.0.1" in m
               for m in events), events
    log = (lab.dir / "host1" / "haclusterd.log").read_text()
    assert "token:ops-bot from ipv4:127.0.0.1" in log and "vm.create audited" in log
