"""What a machine busy with other work costs the cluster, with its critical threads ahead of
that work (raft.critical_nice, priority.py) and without.

    .venv/bin/python -m bench.busy_host [--hogs 8] [--seconds 30]

For each setting, in one run: a 3-host lab with 9 VMs, quiet, then while `--hogs` processes
spin at the default priority (guests that want every CPU; here they share the two cores with
all three members, so each member sees the load of the whole machine). It samples every
host's heartbeat round trip as the leader reports it (4 times a second), times a committed
write every 0.2 s, and counts incidents (a host declared down) and elections (term changes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time

from hacluster.client import Client

from .heartbeat_load import report, sample
from .labs import running_lab
from .write_latency import percentile

SPIN = "while True: pass"


def writes(cl: Client, prefix: str, stop: threading.Event, out: list[float]) -> None:
    """A committed write every 0.2 s (a VM created stopped), its latency in ms."""
    i = 0
    while not stop.wait(0.2):
        t0 = time.perf_counter()
        cl.create_vm(f"{prefix}{i}", vcpus=1, memory_mib=64, ha=False, stopped=True)
        out.append((time.perf_counter() - t0) * 1000)
        i += 1


def phase(cl: Client, label: str, seconds: float) -> None:
    lat: list[float] = []
    stop = threading.Event()
    writer = threading.Thread(target=writes, args=(cl, label.split()[0], stop, lat))
    term = cl.status()["term"]
    writer.start()
    rtts = sample(cl, seconds)
    stop.set()
    writer.join()
    report(label, rtts)
    print(f"{'':34s} writes {len(lat):4d}  p50 {percentile(lat, 50):6.2f} ms  "
          f"p99 {percentile(lat, 99):6.2f} ms  max {max(lat):6.2f} ms  "
          f"elections {cl.status()['term'] - term}")


def run(base_ip: str, nice: int, hogs: int, seconds: float) -> None:
    print(f"-- raft.critical_nice = {nice}")
    with running_lab(base_ip, settings=(f"raft.critical_nice={nice}",)) as lab:
        cl = lab.client(timeout=30)
        for i in range(9):
            cl.create_vm(f"vm{i}", vcpus=1, memory_mib=128)
        time.sleep(3)
        phase(cl, "quiet", seconds)
        spinning = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(hogs)]
        try:
            time.sleep(1)
            phase(cl, f"busy ({hogs} spinning processes)", seconds)
        finally:
            for p in spinning:
                p.kill()
                p.wait()
        print(f"{'':34s} incidents (hosts declared down): {len(cl.incidents())}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hogs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--base-ip", default="127.0.66")
    args = ap.parse_args()
    for nice in (-10, 0):
        run(args.base_ip, nice, args.hogs, args.seconds)


if __name__ == "__main__":
    main()
