"""Failover time in the lab: from a host's power loss to all of its HA VMs running elsewhere.

    .venv/bin/python -m bench.failover [--hosts 3 5] [--profiles safe fast] [--trials 20]
                                       [--leader-trials 10] [--vms 50]

For every (hosts, profile): a fresh lab (real haclusterd, libvirtd and watchdog processes),
--vms HA VMs, then --trials times: kill -9 the non-leader host running the most VMs (its
haclusterd, libvirtd and watchdog: a power loss), and time until every one of its VMs runs on
another host, as each host's own libvirt says (polled every 20 ms); power the host on again
and let it rejoin before the next trial. Then --leader-trials times the same with the leader,
also timing until a new leader has committed its claim (a new leader acting).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable

from hacluster.client import Client, ClientError
from hacluster.lab import cluster as lab_mod
from hacluster.lab.oracle import Oracle


def wait(predicate: Callable[[], bool], timeout: float, what: str,
         every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except ClientError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)


def host_up(client: Client, name: str) -> bool:
    return bool(client.get_host(name)["status"] == "up")


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(label: str, samples: list[float]) -> str:
    if not samples:
        return f"{label}: no samples"
    return (f"{label}: n={len(samples)} p50 {pct(samples, 50):.2f} s  p99 {pct(samples, 99):.2f} s"
            f"  max {max(samples):.2f} s  mean {statistics.mean(samples):.2f} s")


def one_config(hosts: int, profile: str, trials: int, leader_trials: int, vms: int,
               base_ip: str) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"host": [], "leader_vms": [], "leader_acting": []}
    with tempfile.TemporaryDirectory() as tmp:
        lab = lab_mod.create(tmp, hosts, base_ip, log_level="WARNING", profile=profile)
        try:
            for h in lab.hosts:
                lab.start_host(h)
            lab_mod.wait_until_up(lab)
            everyone = lab.client(timeout=2)
            for i in range(vms):
                everyone.create_vm(f"vm{i:03d}", vcpus=1, memory_mib=64, priority=i % 4)
            wait(lambda: all(v["status"] == "running" for v in everyone.list_vms()), 60,
                 "VMs running")
            time.sleep(3.0)  # steady state: past the new leader's grace period
            uris = {h.name: h.libvirt_uri for h in lab.hosts}
            with Oracle(lambda: uris, period=0.02) as oracle:
                for trial in range(trials + leader_trials):
                    kill_leader = trial >= trials
                    status = everyone.status()
                    placed: dict[str, set[str]] = {}
                    for v in everyone.list_vms():
                        placed.setdefault(v["host"], set()).add(v["name"])
                    victim = status["leader"] if kill_leader else max(
                        (h for h in placed if h != status["leader"]),
                        key=lambda h: (len(placed[h]), h))
                    lost = placed.get(victim, set())
                    host = lab.host(victim)
                    survivors = lab.client(timeout=1, hosts=[h.name for h in lab.hosts
                                                             if h is not host])
                    t0 = time.monotonic()
                    lab.kill_host(host)
                    acting = None
                    while True:
                        now = oracle.running_now()
                        if kill_leader and acting is None:
                            try:
                                s = survivors.status()
                                if s["leader"] not in (None, victim) and \
                                        s["leader_term"] == s["term"]:
                                    acting = time.monotonic() - t0
                            except ClientError:
                                pass
                        if all(vm in now and victim not in now[vm] for vm in lost) and (
                                acting is not None or not kill_leader):
                            break
                        if time.monotonic() - t0 > 60:
                            raise TimeoutError(f"trial {trial}: VMs of {victim} not back")
                        time.sleep(0.02)
                    took = max(oracle.last_seen[vm][0] for vm in lost) - t0 if lost else 0.0
                    if kill_leader:
                        results["leader_vms"].append(took)
                        results["leader_acting"].append(acting or 0.0)
                    else:
                        results["host"].append(took)
                    print(f"  {hosts} hosts {profile}: trial {trial + 1} "
                          f"{'leader ' if kill_leader else ''}{victim} ({len(lost)} VMs) "
                          f"{took:.2f} s" + (f", new leader acting {acting:.2f} s"
                                             if acting is not None else ""), flush=True)
                    lab.start_host(host)
                    wait(functools.partial(host_up, everyone, victim), 60, "rejoin")
                    time.sleep(1.0)
                assert not oracle.violations, oracle.violations
        finally:
            lab.stop_all()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--profiles", nargs="+", default=["safe", "fast"])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--leader-trials", type=int, default=10)
    ap.add_argument("--vms", type=int, default=50)
    args = ap.parse_args()
    report = []
    for i, (hosts, profile) in enumerate((h, p) for h in args.hosts for p in args.profiles):
        r = one_config(hosts, profile, args.trials, args.leader_trials, args.vms,
                       f"127.0.{60 + i}")
        report += [summary(f"{hosts} hosts, {profile}, host power loss -> its VMs running",
                           r["host"]),
                   summary(f"{hosts} hosts, {profile}, leader power loss -> new leader acting",
                           r["leader_acting"]),
                   summary(f"{hosts} hosts, {profile}, leader power loss -> its VMs running",
                           r["leader_vms"])]
    print("\n".join(report))


if __name__ == "__main__":
    main()
