"""The gRPC API over a real channel: a one-member haclusterd in this process, libvirt's test
driver as its hypervisor. Bad input gets the right status and a message, and changes nothing."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from hacluster import config as cfg
from hacluster.client import Client, ClientError
from hacluster.core import commands as c
from hacluster.daemon import Daemon
from hacluster.raft import RaftNode
from hacluster.v1 import cluster_pb2 as pb
from hacluster.v1 import cluster_pb2_grpc as rpc

from ..conftest import admin_token, tls_section
from .test_raft import SECRET, free_ports, wait


def secure(daemon: Daemon, pki: Path, token: str | None = None) -> grpc.Channel:
    """A TLS channel to the member's API, with the admin token unless given another."""
    credentials = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes()),
        grpc.access_token_call_credentials(token or admin_token(pki)))
    return grpc.secure_channel(daemon.config.me.api, credentials)


@contextmanager
def one_member(tmp_path: Path, host_uri: str, pki: Path, **extra: Any
               ) -> Iterator[tuple[Daemon, Client]]:
    """A one-member cluster in this process, over real TLS; the client is its admin. Its
    Raft member is in this process too (raft.process off, not the default): these tests
    look into its replica and its log; the cluster tests run the default."""
    raft_port, api_port, web_port, peer_port = free_ports(4)
    extra.setdefault("raft", {"process": False})
    config = cfg.parse({
        "name": "solo", "data_dir": str(tmp_path / "data"), "libvirt_uri": host_uri,
        "storage_dir": str(tmp_path), "tls": tls_section(pki, "solo"),
        "cluster": {"secret": SECRET, "members": [
            {"name": "solo", "raft": f"127.0.0.1:{raft_port}", "api": f"127.0.0.1:{api_port}",
             "peer": f"127.0.0.1:{peer_port}", "web": f"127.0.0.1:{web_port}"}]}, **extra,
    })
    daemon = Daemon(config)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    client = Client([config.me.api], timeout=5, ca=(pki / "ca.pem").read_bytes(),
                    token=admin_token(pki))
    wait(lambda: daemon.leader.active and daemon.agent.registered
         and "admin" in daemon.raft.state.tokens)
    try:
        yield daemon, client
    finally:
        daemon.stop_event.set()
        thread.join(10)
        client.close()


@pytest.fixture
def member(tmp_path: Path, host_uri: str, pki: Path) -> Iterator[tuple[Daemon, Client]]:
    with one_member(tmp_path, host_uri, pki) as running:
        yield running


def test_create_place_and_run(member: tuple[Daemon, Client]) -> None:
    daemon, client = member
    vm = client.create_vm("web1", vcpus=2, memory_mib=512)
    assert vm["name"] == "web1" and vm["state"] == "started"
    wait(lambda: client.get_vm("web1")["status"] == "running")
    assert client.get_vm("web1")["host"] == "solo"
    assert [d.name for d in daemon.hypervisor.domains()] == ["web1"]  # libvirt's word
    client.stop_vm("web1")
    wait(lambda: client.get_vm("web1")["status"] == "stopped")
    client.delete_vm("web1")
    wait(lambda: daemon.hypervisor.domains() == [])


BAD_CREATES = [
    ({"memory_mib": 0}, grpc.StatusCode.INVALID_ARGUMENT, "memory_mib"),
    ({"memory_mib": -1}, grpc.StatusCode.INVALID_ARGUMENT, "memory_mib"),
    ({"vcpus": 0}, grpc.StatusCode.INVALID_ARGUMENT, "vcpus"),
    ({"name": "Bad Name"}, grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ({"name": "dup"}, grpc.StatusCode.ALREADY_EXISTS, "already exists"),
]


@pytest.mark.parametrize(("change", "code", "fragment"), BAD_CREATES)
def test_bad_create_is_refused_and_changes_nothing(member: tuple[Daemon, Client],
                                                   change: dict[str, object],
                                                   code: grpc.StatusCode, fragment: str) -> None:
    daemon, client = member
    client.create_vm("dup", vcpus=1, memory_mib=64, stopped=True)
    before = daemon.raft.state.to_dict()["vms"]
    args: dict[str, object] = {"name": "new", "vcpus": 1, "memory_mib": 64}
    args.update(change)
    with pytest.raises(ClientError) as err:
        client.create_vm(**args)  # type: ignore[arg-type]
    assert err.value.code == code and fragment in str(err.value)
    assert daemon.raft.state.to_dict()["vms"] == before


def test_unknown_names_are_not_found(member: tuple[Daemon, Client]) -> None:
    _, client = member
    for call in (client.get_vm, client.start_vm, client.stop_vm, client.delete_vm,
                 client.get_host):
        with pytest.raises(ClientError) as err:
            call("ghost")
        assert err.value.code == grpc.StatusCode.NOT_FOUND and "ghost" in str(err.value)


def test_stale_expected_version_is_a_failed_precondition(member: tuple[Daemon, Client],
                                                          pki: Path) -> None:
    daemon, client = member
    vm = client.create_vm("a", vcpus=1, memory_mib=64)
    stub = rpc.ClusterStub(secure(daemon, pki))
    with pytest.raises(grpc.RpcError) as err:
        stub.StopVm(pb.VmRequest(name="a", expect_version=vm["version"] + 100), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert client.get_vm("a")["state"] == "started"


def test_a_leader_whose_claim_is_pending_takes_heartbeats_as_signs_of_life(
        member: tuple[Daemon, Client]) -> None:
    """heartbeat.checked: between winning the election and its claim committing, a leader
    refuses heartbeats (no lease yet) but records them, so that it judges no host it heard
    silent once it acts (its grace period is only host_down_after from its start)."""
    daemon, _ = member
    wait(lambda: daemon.agent.heartbeat_ok)  # its agent's beats are answered
    daemon.leader.active = False  # as if its claim had not committed yet
    try:
        time.sleep(0.2)  # a beat answered as the flag changed is behind us
        refusing_since = time.monotonic()

        def refused_and_heard() -> bool:
            beat = daemon.leader.live.heartbeats().get("solo")
            return (not daemon.agent.heartbeat_ok and beat is not None
                    and beat.at >= refusing_since)
        wait(refused_and_heard)
    finally:
        daemon.leader.active = True
    wait(lambda: daemon.agent.heartbeat_ok)


def test_status_health_and_reflection(member: tuple[Daemon, Client], pki: Path) -> None:
    daemon, client = member
    status = client.status()
    assert status["leader"] == "solo" and status["quorum"] and status["leader_term"] >= 1
    # probes need no token; a plaintext connection is refused
    channel = grpc.secure_channel(daemon.config.me.api,
                                  grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes()))
    health = health_pb2_grpc.HealthStub(channel)
    wait(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
         == health_pb2.HealthCheckResponse.SERVING)
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert {"hacluster.v1.Cluster", "grpc.health.v1.Health"} <= set(services)
    (host,) = client.list_hosts()
    assert (host["name"], host["cpus"], host["memory_mib"], host["status"]) == ("solo", 8,
                                                                                8192, "up")


def test_garbage_on_the_api_port_changes_nothing(member: tuple[Daemon, Client]) -> None:
    daemon, client = member
    client.create_vm("keep", vcpus=1, memory_mib=64, stopped=True)  # nothing left to do
    before = daemon.raft.state.to_dict()
    host, port = daemon.config.me.api.rsplit(":", 1)
    for blob in (b"\x00" * 64, b"GET / HTTP/1.1\r\n\r\n", bytes(range(256)) * 8):
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(blob)
            time.sleep(0.05)
    assert client.list_vms()[0]["name"] == "keep"
    assert daemon.raft.state.to_dict()["vms"] == before["vms"]


def logged_after(daemon: Daemon, index: int) -> list[str]:
    """The types of the commands in the member's Raft log after entry `index`."""
    assert isinstance(daemon.raft, RaftNode)  # raft.process off: the log is in this process
    log = daemon.raft._obj._SyncObj__raftLog
    out = []
    for i in range(len(log)):
        data, idx, _ = log[i]
        if idx > index and data[:1] == b"\x00":  # a replicated call: (method, (blob,))
            out.append(c.decode(pickle.loads(data[1:])[1][0]).TYPE)
    return out


def test_admission_control_is_checked_before_proposing(member: tuple[Daemon, Client]) -> None:
    """One host cannot survive its own failure: with admission control on, an HA VM is
    refused with the reason and nothing reaches the log; a non-HA one is admitted."""
    daemon, client = member
    client.set_policy({"admission_control": 1})
    wait(lambda: daemon.raft.state.policy.admission_control)
    applied = daemon.raft.status()["last_applied"]
    with pytest.raises(ClientError) as err:
        client.create_vm("guarded", vcpus=1, memory_mib=64)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot survive 1 failures" in str(err.value), err.value
    assert "guarded" not in daemon.raft.state.vms
    # refused before the log: no create among the entries since (the alarm evaluator may
    # commit meanwhile: a busy machine raises host-cpu)
    assert "vm.create" not in logged_after(daemon, applied)
    client.create_vm("plain", vcpus=1, memory_mib=64, ha=False)
    wait(lambda: "plain" in daemon.raft.state.vms)
    assert logged_after(daemon, applied).count("vm.create") == 1  # the check sees creates
