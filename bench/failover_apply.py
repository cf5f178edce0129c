"""What one failover costs each replica to apply, with 10,000 VMs on 48 hosts: the lost host
fenced (FenceHost) and its HA VMs placed elsewhere (a Batch of AssignVm), applied as the Raft
adapter does (to a fork), by a replica that scans every VM and by one that carries the VM
index (core/vm_index.py; every Raft replica since 2026-12-04: ClusterState.indexed).

    .venv/bin/python -m bench.failover_apply [--hosts 48] [--vms 10000] [--runs 20]

Every member applies every failover, 96 replicas in a 48-host lab with `raft.process` (a
daemon's and its Raft process's), at the moment 48 hosts' heartbeats must be answered.
Prints the median per replica and that times 2 x hosts, both ways in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

from hacluster.core import commands as c
from hacluster.core.state import ClusterState

from .list_cost import build


def with_ha_vms(state: ClusterState, hosts: int) -> ClusterState:
    """Two running HA VMs a host, as bench.scale's lab has."""
    for h in range(hosts):
        for k in range(2):
            name = f"ha{h:02d}{k}"
            assert state.apply(c.CreateVm(id=f"c{name}", name=name, uuid=f"u{name}", vcpus=1,
                                          memory_mib=64, ha=True)).ok
            assert state.apply(c.AssignVm(id=f"a{name}", name=name, host=f"host{h}")).ok
    return state.fork()


def failover(state: ClusterState, host: str, runs: int) -> tuple[float, float]:
    """Median ms: the fence, then the placements, each applied to a fork of `state`."""
    down, res = state.after(c.SetHostStatus(id="down", name=host, status="down",
                                            last_heard=1.0, ts=2.0))
    assert res.ok
    fence_ms, assign_ms = [], []
    for i in range(runs):
        t = time.perf_counter()
        fenced, res = down.after(c.FenceHost(id=f"f{i}", name=host, by="lease+watchdog",
                                             ts=6.0))
        fence_ms.append((time.perf_counter() - t) * 1000)
        assert res.ok
        freed = [n for n in sorted(fenced.vms) if fenced.vms[n].last_host == host
                 and fenced.vms[n].host is None]
        batch = c.Batch(id=f"b{i}", commands=tuple(
            c.AssignVm(id=f"m{i}{n}", name=n, host="host0") for n in freed))
        t = time.perf_counter()
        _, res = fenced.after(batch)
        assign_ms.append((time.perf_counter() - t) * 1000)
        assert res.ok and all(p.ok for p in res.parts) and freed
    return statistics.median(fence_ms), statistics.median(assign_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=48)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    base = with_ha_vms(build(args.hosts, args.vms), args.hosts)
    victim = f"host{args.hosts - 1}"
    for label, state in (("scanning", ClusterState.from_dict(base.to_dict())),
                         ("indexed", ClusterState.from_dict(base.to_dict()).indexed())):
        fence, assign = failover(state, victim, args.runs)
        replicas = 2 * args.hosts
        print(f"{label:8s} replica: fence {fence:.2f} ms, placements {assign:.2f} ms; "
              f"{replicas} replicas: {(fence + assign) * replicas:.0f} ms of CPU a failover",
              flush=True)


if __name__ == "__main__":
    main()
