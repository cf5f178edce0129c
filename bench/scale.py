"""A big lab on one machine: 48 hosts (5 voters, 43 learners) and 10,000 VMs.

    .venv/bin/python -m bench.scale [--hosts 48] [--voters 5] [--vms 10000] [--trials 10]
                                    [--writers 4] [--rate 12] [--preload] [--dir D]

Each host is a real haclusterd with its own libvirtd (test driver), keeper and watchdog, as
`hactl lab up --nodes N --voters V` makes them (the first V form the cluster, the others join
through `hactl host add`). Measured, in this order:

- time to form: `lab up` until every host is up;
- write latency: 300 CreateVm through the leader, p50/p99;
- heartbeat round trip: every host's last one (the leader's live figures), sampled 10 times;
- the leader's CPU: its haclusterd's share of one core over 30 s, steady, and per host;
- one host's power loss to its HA VMs running elsewhere (each host's own libvirt), p50/p99
  over --trials learners killed one after another (each powered on again before the next);
- `host list` and `vm list` through hactl's client;

first with 2 HA VMs per host, then again once --writers writers (--rate creates a second in
all) have brought the cluster to --vms VMs (the extra ones created stopped: the test
driver's 48 x 3 GiB would not hold them running). With --preload the writers create them
while only the voters run, the others join with a snapshot holding them, and everything is
measured once, at --vms VMs (the lists also at rest, as soon as every host is up). An
oracle polls every host's libvirt throughout: no VM may ever run twice.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from bench.failover import host_up, pct, summary, wait
from hacluster.client import Client, ClientError
from hacluster.lab import cluster as lab_mod
from hacluster.lab import grow
from hacluster.lab.oracle import Oracle

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_table() -> dict[int, tuple[float, int]]:
    """Every process's CPU seconds (utime + stime) and parent's pid, /proc read once."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        out[int(stat.parent.name)] = ((int(fields[11]) + int(fields[12])) / TICKS,
                                      int(fields[1]))
    return out


def member_cpu(table: dict[int, tuple[float, int]], pid: int) -> tuple[float, float]:
    """A haclusterd's own CPU seconds and its children's (its Raft process, raft.process)."""
    children = sum(cpu for cpu, parent in table.values() if parent == pid)
    return table.get(pid, (0.0, 0))[0], children


def ms(label: str, samples: list[float]) -> str:
    return (f"{label}: n={len(samples)} p50 {pct(samples, 50) * 1000:.1f} ms  p99 "
            f"{pct(samples, 99) * 1000:.1f} ms  max {max(samples) * 1000:.1f} ms")


def timed(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def steady(lab: lab_mod.Lab, client: Client, trials: int, oracle: Oracle) -> None:
    """Writes, heartbeats, the leader's CPU and --trials power losses, as the lab is now."""
    at = f"at {len(client.list_vms())} VMs"
    leader = next(h for h in lab.hosts if h.name == client.status()["leader"])
    leader_client = lab.client(timeout=30, hosts=[leader.name])
    writes = timed(lambda: leader_client.create_vm(
        f"w{time.monotonic_ns()}", vcpus=1, memory_mib=16, stopped=True), 300)
    print(ms(f"{at}: write (CreateVm via the leader)", writes), flush=True)
    rtts: list[float] = []
    for _ in range(10):
        rtts += [rtt / 1000 for h in client.list_hosts()  # null: none measured yet
                 if (rtt := h["heartbeat_rtt_ms"]) is not None and rtt >= 0]
        time.sleep(1.0)
    print(ms(f"{at}: heartbeat round trip", rtts), flush=True)
    leader = next(h for h in lab.hosts if h.name == client.status()["leader"])
    others = [h for h in lab.hosts if h is not leader]
    before = cpu_table()
    w0 = time.monotonic()
    time.sleep(30)
    took = time.monotonic() - w0
    after = cpu_table()
    used = {h.name: [b - a for a, b in zip(member_cpu(before, h.pids["haclusterd"]),
                                           member_cpu(after, h.pids["haclusterd"]),
                                           strict=True)] for h in lab.hosts}
    share = {name: sum(parts) / took for name, parts in used.items()}
    if raft := used[leader.name][1] / took:  # its Raft process on its own (raft.process)
        print(f"{at}: the leader's Raft process {raft * 100:.1f}% of a core", flush=True)
    still = client.status()["leader"] == leader.name
    print(f"{at}: leader CPU {share[leader.name] * 100:.1f}% of a core at {len(lab.hosts)} "
          f"hosts ({share[leader.name] * 100 / len(lab.hosts):.2f}% per host; {leader.name}, "
          f"{'still' if still else 'no longer'} leading); the others: "
          f"{statistics.mean(share[h.name] for h in others) * 100:.1f}% each, "
          f"{sum(share.values()) * 100:.0f}% in all", flush=True)
    losses: list[float] = []
    voters = {m["name"] for m in client.status()["members"] if m["voter"]}
    for _ in range(trials):  # each time the learner running the most HA VMs
        running: dict[str, set[str]] = {}
        for v in client.list_vms():
            if v["status"] == "running" and v["host"] not in voters:
                running.setdefault(v["host"], set()).add(v["name"])
        if not running:  # say why, rather than a short n below
            up = sum(1 for h in client.list_hosts() if h["status"] == "up")
            print(f"  trials stopped after {len(losses)}: no learner runs an HA VM "
                  f"({up} of {len(lab.hosts)} hosts up)", flush=True)
            break
        victim = next(h for h in lab.hosts if h.name == max(running, key=lambda n: (
            len(running[n]), n)))
        mine = running[victim.name]
        t = time.monotonic()
        lab.kill_host(victim)

        def back(names: set[str] = mine, gone: str = victim.name) -> bool:
            now = oracle.running_now()
            return all(n in now and gone not in now[n] for n in names)
        # every 0.1 s, not back to back: 48 libvirtds asked 50 times a second took most of a
        # core from the cluster at the very moment it recovers (within 0.1 s + a poll)
        wait(back, 60, f"{victim.name}'s VMs running elsewhere", every=0.1)
        losses.append(time.monotonic() - t)
        print(f"  {victim.name} lost: its {len(mine)} HA VMs running elsewhere in "
              f"{losses[-1]:.2f} s", flush=True)  # kept if a later trial ends the run
        lab.start_host(victim)
        wait(functools.partial(host_up, client, victim.name), 120, "host back")
        time.sleep(3)
    print(summary(f"{at}: host power loss -> its HA VMs running", losses), flush=True)
    print(f"  violations: {oracle.violations or 'none'}", flush=True)
    lists(lab, client, at)


def lists(lab: lab_mod.Lab, client: Client, at: str) -> None:
    print(ms(f"{at}: host list ({len(lab.hosts)} hosts)", timed(client.list_hosts, 20)))
    print(ms(f"{at}: vm list ({len(client.list_vms())} VMs)", timed(client.list_vms, 20)),
          flush=True)


def create_surely(client: Client, name: str, who: str, memory_mib: int,
                  stopped: bool = False) -> None:
    """Create a VM, again while the cluster cannot answer (a leader lost on a saturated
    machine comes back): a create that may or may not have applied is tried again with the
    same name, and "exists" then means done."""
    while True:
        try:
            client.create_vm(name, vcpus=1, memory_mib=memory_mib, stopped=stopped)
            return
        except ClientError as exc:
            if exc.code == grpc.StatusCode.ALREADY_EXISTS:
                return
            if exc.code != grpc.StatusCode.UNAVAILABLE:
                raise
            print(f"  {who}: {exc}; again", flush=True)
            time.sleep(1.0)


def fill(lab: lab_mod.Lab, client: Client, vms: int, writers: int, rate: float) -> None:
    """Create stopped VMs until the cluster holds `vms`: `writers` writers, each through
    another member first (and any other when it cannot answer), `rate` creates a second in
    all."""
    have = len(client.list_vms())
    names = [h.name for h in lab.hosts]

    def create(part: int) -> None:
        writer = lab.client(timeout=30, hosts=names[part % len(names):] + names[:part % len(names)])
        due = time.monotonic()
        for i in range(have + part, vms, writers):
            create_surely(writer, f"s{i:05d}", f"writer {part}", memory_mib=16, stopped=True)
            # paced: --rate creates a second in all, never a burst to catch up
            due = max(due + writers / rate, time.monotonic() - 1.0)
            time.sleep(max(0.0, due - time.monotonic()))
    t = time.monotonic()
    threads = [threading.Thread(target=create, args=(p,)) for p in range(writers)]
    for w in threads:
        w.start()
    for w in threads:
        w.join()
    print(f"{vms - have} more VMs created ({writers} writers, at most {rate:g} a second, "
          f"{len(lab.hosts)} hosts) in {time.monotonic() - t:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=48)
    parser.add_argument("--voters", type=int, default=5)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--trials-at-vms", type=int, default=None,
                        help="power losses once at --vms VMs (default: --trials)")
    parser.add_argument("--writers", type=int, default=4)
    # Every create is applied by every member: on one machine, 48 times on the same two
    # cores. Unpaced, four writers saturated it and the cluster lost its leader.
    parser.add_argument("--rate", type=float, default=12.0)
    # The HA VMs (2 a host) are created, placed and started this many a second: a 48-host
    # lab with 10,000 VMs saturates this machine's two cores when they come unpaced.
    parser.add_argument("--ha-rate", type=float, default=2.0)
    parser.add_argument("--preload", action="store_true",
                        help="create the --vms VMs while only the voters run, then grow the "
                        "lab (the others join with a snapshot holding them) and measure once")
    parser.add_argument("--set", action="append", default=[], dest="settings",
                        metavar="SECTION.KEY=VALUE", help="into every host's configuration "
                        "(as `hactl lab up --set`), e.g. raft.critical_nice=0 to compare")
    parser.add_argument("--base-ip", default="127.0.97")
    parser.add_argument("--log-level", default="WARNING", help="the hosts' (INFO: every "
                        "verdict, lease and leader change, for a run that went wrong)")
    parser.add_argument("--dir", help="make the lab here and keep it (its hosts' logs) after "
                        "the run; by default a temporary directory, deleted")
    args = parser.parse_args()
    with contextlib.nullcontext(args.dir) if args.dir else tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        lab = lab_mod.create(tmp, args.voters, args.base_ip, log_level=args.log_level,
                             settings=args.settings)
        try:
            for h in lab.hosts:
                lab.start_host(h)
            lab_mod.wait_until_up(lab, timeout=300)
            took = time.monotonic() - t0
            client = lab.client(timeout=30)
            if args.preload:
                fill(lab, client, args.vms - 2 * args.hosts, args.writers, args.rate)
            t1 = time.monotonic()
            grow.grow(lab, args.hosts - args.voters, args.voters)
            took += time.monotonic() - t1
            print(f"formed: {args.hosts} hosts ({args.voters} voters) up in {took:.0f} s"
                  f"{' (not counting the preload)' if args.preload else ''}", flush=True)
            if args.preload:  # at rest, before the HA VMs and the load of the measurements
                lists(lab, client, f"at rest, {len(client.list_vms())} VMs")
            # The oracle polls every host's libvirt in the background twice a second (20
            # times, with 48 libvirtds on the same two cores, it took a good part of a core
            # itself); the failover trials poll every 0.1 s, the wait below every 0.5 s.
            with Oracle(lambda: {h.name: h.libvirt_uri for h in lab.hosts},
                        period=0.5) as oracle:
                ha = [f"ha{i:03d}" for i in range(2 * args.hosts)]
                for name in ha:
                    create_surely(client, name, "HA VMs", memory_mib=64)
                    time.sleep(1 / args.ha_rate)
                # running by each host's libvirt, not by a list of 10,000 VMs asked of a
                # member 50 times a second (the bench's own load, not the operators')
                try:
                    wait(lambda: set(ha) <= set(oracle.running_now()), 300,
                         "HA VMs running", every=0.5)
                    steady(lab, client, args.trials, oracle)
                    if not args.preload:
                        fill(lab, client, args.vms, args.writers, args.rate)
                        steady(lab, client, args.trials if args.trials_at_vms is None
                               else args.trials_at_vms, oracle)
                finally:  # a run cut short still says whether a VM ever ran twice
                    print(f"oracle: violations {oracle.violations or 'none'}", flush=True)
        finally:
            lab.stop_all()


if __name__ == "__main__":
    main()
