"""Load never costs a lease: hundreds of event streams and a crowd of readers against the
leader of a lab running HA VMs, judged by each host's libvirt (no VM ever stopped), the
cluster's own record (no incident, no leader change) and the agents' logs (no lease lost)."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import LabRun
from .test_failover import client, leader, start_vms, watched

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
LOAD = r'''
import asyncio, sys, threading, time
import grpc
from grpc import aio
from hacluster.v1 import cluster_pb2 as pb, cluster_pb2_grpc as rpc

target, streams, readers, seconds = sys.argv[1], *map(int, sys.argv[2:5])
ca, token = open(sys.argv[5], "rb").read(), sys.argv[6]
stop = time.monotonic() + seconds


def credentials():
    return grpc.composite_channel_credentials(grpc.ssl_channel_credentials(ca),
                                              grpc.access_token_call_credentials(token))
counts = {"events": 0, "lists": 0, "errors": 0, "streams_open": 0}

def reader():
    stub = rpc.ClusterStub(grpc.secure_channel(target, credentials()))
    while time.monotonic() < stop:
        try:
            stub.ListVms(pb.ListVmsRequest(), timeout=5)
            counts["lists"] += 1
        except grpc.RpcError:
            counts["errors"] += 1

async def watcher(channel):
    stream = rpc.ClusterStub(channel).WatchEvents(pb.WatchEventsRequest(backlog=5, follow=True))
    counts["streams_open"] += 1
    try:
        async for _ in stream:
            counts["events"] += 1
    except (grpc.RpcError, asyncio.CancelledError):
        pass

async def main():
    channels = [aio.secure_channel(target, credentials()) for _ in range(streams)]
    tasks = [asyncio.create_task(watcher(c)) for c in channels]
    await asyncio.sleep(max(stop - time.monotonic(), 0))
    for t in tasks:
        t.cancel()

threads = [threading.Thread(target=reader) for _ in range(readers)]
for t in threads:
    t.start()
asyncio.run(main())
for t in threads:
    t.join()
print(counts, flush=True)
'''


def test_200_watchers_and_20_readers_on_the_leader_cost_no_lease(
        make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    names = start_vms(lab, 9)
    first = leader(lab)
    target = next(h["api"] for h in lab.status() if h["name"] == first)
    term = client(lab).status()["term"]
    with watched(lab) as oracle:
        load = subprocess.Popen([sys.executable, "-c", LOAD, target, "200", "20", "60",
                                 str(lab.ca_file), lab.token],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
        time.sleep(5)
        slowest = 0.0
        reader = lab.client_at([target], timeout=5)
        while load.poll() is None:
            t0 = time.monotonic()
            assert len(reader.list_vms()) == 9
            slowest = max(slowest, time.monotonic() - t0)
            assert lab.hactl("vm", "list", endpoints=target).returncode == 0  # hactl too
            time.sleep(2)
        counts = ast.literal_eval(load.communicate()[0])
        assert oracle.outages == {}, oracle.outages  # no VM stopped, even for one poll
    assert counts["streams_open"] == 200 and counts["lists"] > 100, counts
    assert slowest < 1.0, f"vm list took {slowest:.2f}s under load"
    status = client(lab).status()
    assert status["term"] == term and status["leader"] == first  # no election
    assert client(lab).incidents() == []
    assert all(v["status"] == "running" for v in client(lab).list_vms() if v["name"] in names)
    for h in lab.status():
        log = (lab.dir / h["name"] / "haclusterd.log").read_text()
        assert "lease expired" not in log and "no lease" not in log.split("joined the cluster")[-1]
