"""What one `vm list` costs the member that answers it, with 10,000 VMs on 48 hosts: the
ListVms response made afresh (every VM's message built, as before VmMessages) against one
made by VmMessages while the cluster changes a little between calls (--changed VMs
stopped and started again each time, as a live cluster's agents and leader do).

    .venv/bin/python -m bench.list_cost [--hosts 48] [--vms 10000] [--changed 20] [--runs 20]

The core's own commands build the state (published as the Raft adapter does: each command
applied to a fork), so records are shared between states exactly as in a member. Prints
p50 / p90 of the member's CPU time per response, both ways in one run (the machine is
shared: compare within a run).
"""

from __future__ import annotations

import argparse
import itertools
import time

from hacluster.core import commands as c
from hacluster.core.state import ClusterState
from hacluster.messages import VmMessages, vm_message
from hacluster.v1 import cluster_pb2 as pb

from .write_latency import percentile

_ids = itertools.count()


def build(hosts: int, vms: int) -> ClusterState:
    state = ClusterState()
    for h in range(hosts):
        assert state.apply(c.RegisterHost(
            id=f"h{h}", name=f"host{h}", raft_addr=f"10.0.0.{h}:7400",
            api_addr=f"10.0.0.{h}:7401", cpus=64, memory_mib=1 << 20, disk_gib=10_000,
            lease=2.5, watchdog=1.0)).ok
    for i in range(vms):
        assert state.apply(c.CreateVm(id=f"v{i}", name=f"vm{i:05d}", uuid=f"u{i}", vcpus=1,
                                      memory_mib=64, state="stopped")).ok
    return state.fork()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=48)
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--changed", type=int, default=20)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    state = build(args.hosts, args.vms)
    made = VmMessages()
    made.all(state)  # a member's first list makes every message once
    fresh: list[float] = []
    cached: list[float] = []
    for run in range(args.runs):
        for i in range(args.changed):  # a few VMs change between two lists
            name = f"vm{(run * args.changed + i) % args.vms:05d}"
            want = "started" if state.vms[name].state.value == "stopped" else "stopped"
            state, result = state.after(c.SetVmState(id=f"s{next(_ids)}", name=name,
                                                     state=want))
            assert result.ok, result
        t = time.process_time()
        a = pb.ListVmsResponse(vms=[vm_message(v, state) for v in
                                    sorted(state.vms.values(), key=lambda v: v.name)])
        fresh.append(time.process_time() - t)
        t = time.process_time()
        b = pb.ListVmsResponse(vms=made.all(state))
        cached.append(time.process_time() - t)
        assert a == b  # the same answer
    print(f"{args.hosts} hosts, {args.vms} VMs, {args.changed} changed between lists, "
          f"{args.runs} lists; a member's CPU per ListVms response:")
    for label, samples in (("made afresh", fresh), ("VmMessages", cached)):
        print(f"  {label:12s} p50 {percentile(samples, 50) * 1e3:6.1f} ms  "
              f"p90 {percentile(samples, 90) * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
