"""What a leader busy with its own clients costs the cluster, with its Raft member in the
daemon's process and in a process of its own (raft.process, raftproc.py), in one run.

    .venv/bin/python -m bench.busy_leader [--vms 2000] [--listers 4] [--hogs 4] [--seconds 30]

For each setting: a 3-host lab with `--vms` VMs (created stopped), then `--listers` threads
asking the leader for every VM as fast as it answers (its client pool busy with CPU work in
the daemon's process, as a 10,000-VM `vm list` or the leader loop at 48 hosts are) while
`--hogs` processes spin (a loaded machine: the thread holding the daemon's GIL is itself
descheduled). Reports heartbeat round trips, a committed write every 0.2 s (bench.busy_host)
and elections (term changes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time

from hacluster.client import Client, ClientError
from hacluster.lab import cluster as lab_mod

from .busy_host import SPIN, phase
from .labs import running_lab


def lister(lab: lab_mod.Lab, leader: str, stop: threading.Event, counts: list[int]) -> None:
    cl = lab.client(timeout=30, hosts=[leader])
    while not stop.is_set():
        try:
            cl.list_vms()
            counts[0] += 1
        except ClientError:
            time.sleep(0.1)


def run(base_ip: str, process: bool, vms: int, listers: int, hogs: int,
        seconds: float) -> None:
    print(f"-- raft.process = {str(process).lower()}", flush=True)
    with running_lab(base_ip, settings=(f"raft.process={str(process).lower()}",)) as lab:
        cl: Client = lab.client(timeout=30)
        for i in range(vms):
            cl.create_vm(f"s{i}", vcpus=1, memory_mib=16, stopped=True)
        leader = cl.status()["leader"]
        phase(cl, "quiet", seconds)
        stop = threading.Event()
        counts = [0]
        threads = [threading.Thread(target=lister, args=(lab, leader, stop, counts))
                   for _ in range(listers)]
        spinning = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(hogs)]
        for t in threads:
            t.start()
        try:
            time.sleep(1)
            phase(cl, f"busy leader ({listers} listing {vms})", seconds)
        finally:
            stop.set()
            for p in spinning:
                p.kill()
                p.wait()
            for t in threads:
                t.join()
        print(f"{'':34s} lists answered {counts[0]}; leader {leader} -> "
              f"{cl.status()['leader']}; incidents {len(cl.incidents())}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=2000)
    ap.add_argument("--listers", type=int, default=4)
    ap.add_argument("--hogs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--base-ip", default="127.0.67")
    args = ap.parse_args()
    for process in (False, True):
        run(args.base_ip, process, args.vms, args.listers, args.hogs, args.seconds)


if __name__ == "__main__":
    main()
