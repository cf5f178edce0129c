"""Placement throughput of the pure core: every filter and weigher on, one decision at a time.

    .venv/bin/python -m bench.placement [--hosts 1000] [--vms 10000] [--repeat 3] [--attached]

Builds a cluster of hosts of mixed sizes with live metrics and --rules placement rules (a
third "must" anti-affinity pairs, a third "should" affinity pairs, a third "must" host
rules), then (a) times single decisions against 1,000 hosts and (b) places 10,000 VMs on them
in one batch (place_all, which updates the table after each choice, as the leader does).
Every filter and weigher is on. With --attached every VM also has a disk on a shared pool
that 9 hosts in 10 see and a NIC on a network that 6 hosts in 7 have, and one VM in 10 a
disk on a local pool (the storage and network filters then have work). Prints the best of
--repeat.
"""

from __future__ import annotations

import argparse
import random
import time

from hacluster.core.model import Host, Network, Policy, Pool, PoolType, Rule, RuleKind, Strength, Vm
from hacluster.core.placement import HostMetrics, HostTable, Placer


def attach(hosts: list[Host], batch: list[Vm]) -> tuple[dict[str, Pool], dict[str, Network]]:
    """Pools and a network over the hosts, and disks and NICs on every VM."""
    names = [h.name for h in hosts]
    pools = {"nfs": Pool("nfs", PoolType.DIR, True, "/srv/nfs", seen={
                 n: [1e6, 1e6] for i, n in enumerate(names) if i % 10}),
             "local": Pool("local", PoolType.DIR, False, "/srv/local", seen={
                 n: [2000.0, 2000.0] for n in names})}
    networks = {"lan": Network("lan", "br0", hosts=[n for i, n in enumerate(names) if i % 7])}
    for i, vm in enumerate(batch):
        vm.disks = [{"pool": "local" if i % 10 == 0 else "nfs", "volume": f"v{i}",
                     "size_gib": 20, "image": ""}]
        vm.ha = i % 10 != 0
        vm.nics = [{"network": "lan", "mac": f"52:54:00:{i:06x}"}]
    return pools, networks


def cluster(n_hosts: int, seed: int = 1) -> tuple[list[Host], dict[str, HostMetrics]]:
    rng = random.Random(seed)
    hosts = [Host(f"h{i:04d}", "x:1", "x:2", cpus=rng.choice([32, 64, 128]),
                  memory_mib=rng.choice([256, 512, 1024]) * 1024, disk_gib=4096)
             for i in range(n_hosts)]
    metrics = {h.name: HostMetrics(cpu_load=rng.random(), memory_available_mib=1e5,
                                   disk_free_gib=1e3) for h in hosts}
    return hosts, metrics


def vms(n: int, seed: int = 2) -> list[Vm]:
    rng = random.Random(seed)
    return [Vm(name=f"vm{i}", uuid=f"u{i}", vcpus=rng.choice([1, 2, 4, 8]),
               memory_mib=rng.choice([512, 1024, 2048, 4096, 8192]),
               disk_gib=rng.choice([0, 10, 40]), priority=rng.randint(0, 3),
               last_host=f"h{rng.randrange(1000):04d}") for i in range(n)]


def rules(n: int, vms: list[Vm], hosts: list[Host], seed: int = 3) -> list[Rule]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(vms, 2)
        if i % 3 == 0:
            out.append(Rule(f"r{i}", RuleKind.ANTI_AFFINITY, Strength.MUST, [a.name, b.name]))
        elif i % 3 == 1:
            out.append(Rule(f"r{i}", RuleKind.AFFINITY, Strength.SHOULD, [a.name, b.name]))
        else:
            out.append(Rule(f"r{i}", RuleKind.HOST, Strength.MUST, [a.name],
                            [h.name for h in rng.sample(hosts, 50)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rules", type=int, default=300)
    ap.add_argument("--attached", action="store_true", help="disks and NICs on every VM")
    args = ap.parse_args()
    hosts, metrics = cluster(args.hosts)
    batch = vms(args.vms)
    pools, networks = attach(hosts, batch) if args.attached else ({}, {})
    placer = Placer(Policy(), rules(args.rules, batch, hosts))

    best_single = float("inf")
    for _ in range(args.repeat):
        table = HostTable.build(hosts, [], metrics, pools, networks)
        sample = batch[:2000]
        t0 = time.perf_counter()
        for vm in sample:
            placer.decide(vm, table)
        best_single = min(best_single, (time.perf_counter() - t0) / len(sample))

    best_batch = float("inf")
    placed = 0
    for _ in range(args.repeat):
        table = HostTable.build(hosts, [], metrics, pools, networks)
        t0 = time.perf_counter()
        decisions = placer.place_all(batch, table)
        best_batch = min(best_batch, time.perf_counter() - t0)
        placed = sum(d.host is not None for d in decisions)

    print(f"hosts={args.hosts} filters={len(placer.filters)} weighers={len(placer.weighers)} "
          f"rules={args.rules} attached={args.attached}")
    print(f"single decision: {best_single * 1e6:.0f} us -> {1 / best_single:,.0f} placements/s")
    print(f"batch: {args.vms} VMs in {best_batch:.2f} s ({placed} placed, "
          f"{args.vms / best_batch:,.0f} placements/s)")


if __name__ == "__main__":
    main()
