"""Committed-write latency through the gRPC API of a real 3-member lab on loopback.

    .venv/bin/python -m bench.write_latency [--writes 1000]

Starts a lab (3 haclusterd processes, each with its own libvirtd), then creates VMs one at a
time (each call returns after the command is fsync'd and committed by a majority and applied
on the member that received it), through a follower and through the leader. VMs are created
stopped so the figure is the control plane's alone, not libvirt's. Prints p50/p90/p99; then
the same on a lab with fsync off (raft.fsync = false, for comparison only: never in
production), to show what durability costs on this disk.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

import grpc

from hacluster.lab import cluster as lab_mod
from hacluster.v1 import cluster_pb2 as pb
from hacluster.v1 import cluster_pb2_grpc as rpc

from .labs import running_lab


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def measure(lab: lab_mod.Lab, api: str, prefix: str, n: int) -> list[float]:
    credentials = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(Path(lab.ca_file).read_bytes()),
        grpc.access_token_call_credentials(lab.admin_token()))
    stub = rpc.ClusterStub(grpc.secure_channel(api, credentials))
    samples = []
    for i in range(n):
        request = pb.CreateVmRequest(name=f"{prefix}{i}", vcpus=1, memory_mib=64, stopped=True,
                                     request_id=uuid.uuid4().hex)
        t0 = time.perf_counter()
        stub.CreateVm(request, timeout=10)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=1000)
    ap.add_argument("--base-ip", default="127.0.66")
    args = ap.parse_args()
    print(f"3 members on loopback, {args.writes} sequential CreateVm calls each")
    for fsync in (True, False):
        with running_lab(args.base_ip, settings=[f"raft.fsync={str(fsync).lower()}"]) as lab:
            leader = lab.client().status()["leader"]
            by_role = {"leader": next(h for h in lab.hosts if h.name == leader),
                       "follower": next(h for h in lab.hosts if h.name != leader)}
            measure(lab, by_role["follower"].api, "warm", 50)
            for role, host in by_role.items():
                s = measure(lab, host.api, role, args.writes)
                print(f"fsync {'on ' if fsync else 'off'} via {role:8s}: "
                      f"p50 {percentile(s, 50) * 1e3:.2f} ms  "
                      f"p90 {percentile(s, 90) * 1e3:.2f} ms  "
                      f"p99 {percentile(s, 99) * 1e3:.2f} ms  "
                      f"mean {statistics.mean(s) * 1e3:.2f} ms  "
                      f"({len(s) / sum(s):,.0f} writes/s)")


if __name__ == "__main__":
    main()
