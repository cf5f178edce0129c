"""A bad-input campaign against a live member: hypothesis builds requests for every RPC from
the protobuf descriptors (huge, empty, negative, NaN, unicode, duplicated, long lists) and
sends them over a real channel. Whatever it sends: never UNKNOWN or INTERNAL, never a client
command committed for a refused request, and the member stays healthy."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.client import Client
from hacluster.core import commands as c
from hacluster.core.state import ClusterState, Result
from hacluster.daemon import Daemon
from hacluster.raft import RaftNode
from hacluster.v1 import cluster_pb2 as pb

from .test_api import member, secure  # noqa: F401 (fixture)
from .test_raft import wait

NAMES = st.sampled_from(["web1", "host1", "solo", "ghost", "", "UPPER", "a" * 64, "x/y",
                         "web1 ", "é", "\x00", "-", "vm" * 40])
TEXT = st.one_of(NAMES, st.text(max_size=40), st.text(min_size=1000, max_size=5000))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
    [0.0, -1.0, 0.5, 1.0, 1e300, math.nan, math.inf]))
INT32 = st.one_of(st.integers(-(1 << 31), (1 << 31) - 1), st.sampled_from([0, -1, 1, 64]))
INT64 = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), st.sampled_from([0, -1, 1, 256]))
SCALARS = {
    FieldDescriptor.TYPE_STRING: TEXT, FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: FLOATS, FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_BYTES: st.one_of(st.binary(max_size=64), st.binary(min_size=4000,
                                                                            max_size=5000)),
}
SERVICES = [pb.DESCRIPTOR.services_by_name[s] for s in ("Cluster", "Agent")]
METHODS = [(s.name, m) for s in SERVICES for m in s.methods]


def message(desc: Descriptor) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of field values for a message of this type (recursively)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key = SCALARS[f.message_type.fields_by_name["key"].type]
            value = SCALARS[f.message_type.fields_by_name["value"].type]
            fields[f.name] = st.dictionaries(key, value, max_size=5)
        elif f.message_type is not None and f.is_repeated:
            fields[f.name] = st.lists(message(f.message_type), max_size=10)
        elif f.message_type is not None:
            fields[f.name] = message(f.message_type)
        elif f.is_repeated:
            fields[f.name] = st.one_of(st.lists(SCALARS[f.type], max_size=6),
                                       st.lists(NAMES, min_size=300, max_size=400))
        else:
            fields[f.name] = SCALARS[f.type]
    return st.fixed_dictionaries({}, optional=fields)


def build(desc: Descriptor, values: dict[str, Any]) -> Any:
    cls = getattr(pb, desc.name)
    msg = cls()
    for name, value in values.items():
        f = desc.fields_by_name[name]
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            getattr(msg, name).update(value)
        elif f.message_type is not None and f.is_repeated:
            getattr(msg, name).extend([build(f.message_type, v) for v in value])
        elif f.message_type is not None:
            getattr(msg, name).CopyFrom(build(f.message_type, value))
        elif f.is_repeated:
            getattr(msg, name).extend(value)
        else:
            setattr(msg, name, value)
    return msg


PKI = Path()
# the campaign is an admin's: what it probes is validation (auth has tests of its own), and
# member calls are refused for want of a member certificate whatever they carry
REQUESTS = st.sampled_from(METHODS).flatmap(
    lambda sm: st.tuples(st.just(sm), message(sm[1].input_type)))


@pytest.fixture
def watched(member: tuple[Daemon, Client], pki: Path  # noqa: F811
            ) -> Iterator[tuple[Daemon, list[c.Command]]]:
    """The member, and every client command it applies from now on (any member's writes
    pass through its replica; only client commands could come from a campaign request)."""
    daemon, _ = member
    global PKI
    PKI = pki
    wait(lambda: serving(daemon))
    wait(lambda: bool(daemon.raft.state.members))  # the leader's own AddMember, done once
    applied: list[c.Command] = []
    assert isinstance(daemon.raft, RaftNode)  # raft.process off: the replica is here
    replica = daemon.raft._obj
    original = replica._on_applied

    def record(cmd: c.Command, result: Result, state: ClusterState) -> None:
        if not cmd.LEADER_ONLY and not isinstance(cmd, c.RegisterHost | c.FinishMigration):
            applied.append(cmd)
        original(cmd, result, state)

    replica._on_applied = record
    yield daemon, applied


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=REQUESTS)
def test_no_request_crashes_or_commits_when_refused(
        watched: tuple[Daemon, list[c.Command]], request: tuple[tuple[str, Any], Any]) -> None:
    daemon, applied = watched
    (service, method), values = request
    channel = secure(daemon, PKI)
    call = channel.unary_stream if method.server_streaming else channel.unary_unary
    path = f"/hacluster.v1.{service}/{method.name}"
    rpc = call(path, request_serializer=lambda m: m.SerializeToString(),
               response_deserializer=getattr(pb, method.output_type.name).FromString)
    msg = build(method.input_type, values)
    if method.name == "WatchEvents":
        msg.follow = False  # a campaign does not wait on a live stream
    before = len(applied)
    try:
        reply = rpc(msg, timeout=10)
        if method.server_streaming:
            list(reply)
    except grpc.RpcError as exc:
        # never a crash; and never "busy" or a broken answer either: nothing else is running
        assert exc.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED), (
            method.name, exc.code(), exc.details()[:300])
        assert exc.details(), (method.name, "an error without a message")
        assert applied[before:] == [], (method.name, exc.code(), applied[before:])
    finally:
        channel.close()
    assert serving(daemon) and daemon.raft.halted is None


def serving(daemon: Daemon) -> bool:
    with secure(daemon, PKI) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
