"""Balancing: the cost of one pass, and a simulated month of load changes.

    .venv/bin/python -m bench.balance [--hosts 96] [--vms 10000] [--days 30]

(a) One pass over --hosts hosts and --vms VMs placed unevenly (best of 3).
(b) A month on 12 hosts and 200 VMs: every minute each VM's CPU demand drifts (a random walk,
    with a few busy spells) and a host's CPU load is its VMs' demand over its CPUs; the
    leader's pass runs (automatic mode) and its moves complete at once. Counts the
    migrations, and checks that no VM ever moved back to a host it had left within its
    cooldown (the promise: no ping-pong).
"""

from __future__ import annotations

import argparse
import random
import time

from hacluster.core import commands as c
from hacluster.core.balance import plan_balance
from hacluster.core.placement import HostMetrics
from hacluster.core.state import ClusterState

ids = (f"b{i}" for i in range(10**9))


def cluster(hosts: int, vms: int, seed: int) -> ClusterState:
    rng = random.Random(seed)
    s = ClusterState()
    for i in range(hosts):
        s.apply(c.RegisterHost(id=next(ids), name=f"h{i:03d}", raft_addr="x:1", api_addr="x:2",
                               cpus=64, memory_mib=512 * 1024, disk_gib=4096, lease=2.5))
    s.apply(c.SetPolicy(id=next(ids), changes={"max_migrations_per_host": 4}))
    for i in range(vms):
        s.apply(c.CreateVm(id=next(ids), name=f"vm{i:05d}", uuid=f"u{i}", vcpus=2,
                           memory_mib=rng.choice([1024, 2048, 4096])))
        # uneven: the first third of the hosts get twice their share
        host = rng.randrange(hosts // 3) if rng.random() < 0.5 else rng.randrange(hosts)
        s.apply(c.AssignVm(id=next(ids), name=f"vm{i:05d}", host=f"h{host:03d}"))
    return s


def one_pass(hosts: int, vms: int) -> None:
    s = cluster(hosts, vms, seed=1)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        bp = plan_balance(s, {}, now=0.0)
        best = min(best, time.perf_counter() - t0)
    print(f"one pass over {hosts} hosts and {vms} VMs: {best * 1000:.0f} ms "
          f"({len(bp.moves)} moves, imbalance {bp.imbalance:.3f} -> {bp.imbalance_after:.3f})")


def month(days: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    s = cluster(12, 200, seed)
    cooldown = s.policy.migration_cooldown
    demand = {v: rng.random() * 0.5 for v in s.vms}  # busy share of each vCPU
    moves = back = 0
    minutes = days * 24 * 60
    t0 = time.perf_counter()
    for minute in range(minutes):
        now = minute * 60.0
        for v in demand:  # drift, and now and then a busy spell
            demand[v] = min(1.0, max(0.0, demand[v] + rng.gauss(0, 0.02)))
            if rng.random() < 0.0002:
                demand[v] = 1.0
        cpu = dict.fromkeys(s.hosts, 0.0)
        for v, d in demand.items():
            vm = s.vms[v]
            cpu[vm.host or ""] = cpu.get(vm.host or "", 0.0) + d * vm.vcpus / 64
        bp = plan_balance(s, {h: HostMetrics(cpu_load=min(x, 1.0)) for h, x in cpu.items()},
                          now)
        for m in bp.moves:
            vm = s.vms[m.vm]
            if now - vm.left.get(m.target, -1e18) < cooldown:
                back += 1
            s.apply(c.SetMigration(id=next(ids), name=m.vm, to=m.target))
            s.apply(c.FinishMigration(id=next(ids), ts=now, name=m.vm, source=m.source,
                                      to=m.target, ok=True))
            moves += 1
    took = time.perf_counter() - t0
    print(f"{days} simulated days ({minutes} passes, 12 hosts, 200 VMs): {moves} migrations, "
          f"{moves / days:.1f} a day; moved back within the cooldown: {back} "
          f"({took:.0f} s to simulate)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=96)
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    one_pass(args.hosts, args.vms)
    month(args.days)


if __name__ == "__main__":
    main()
