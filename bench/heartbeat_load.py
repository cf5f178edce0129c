"""What client load costs the heartbeats: heartbeat round trips on a real 3-host lab, quiet,
then with 200 event streams and 20 clients calling ListVms in a loop against the leader.

    .venv/bin/python -m bench.heartbeat_load [--seconds 30]

Each agent measures the round trip of every heartbeat it sends to the leader and reports it
with the next one; the leader shows it in `hactl host list` (heartbeat_rtt_ms). This samples
it 4 times a second on every host and prints p50/p99/max for each phase, with the load's own
throughput.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import time
from pathlib import Path

from hacluster.client import Client

from .labs import running_lab
from .write_latency import percentile

LOAD = Path(__file__).resolve().parents[1] / "tests" / "cluster" / "test_load.py"


def sample(cl: Client, seconds: float) -> list[float]:
    """Every host's reported heartbeat round trip, 4 times a second (ms)."""
    out: list[float] = []
    last: dict[str, float] = {}
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        for h in cl.list_hosts():
            rtt = h["heartbeat_rtt_ms"]
            if rtt is not None and last.get(h["name"]) != rtt:  # a new heartbeat's
                out.append(rtt)
                last[h["name"]] = rtt
        time.sleep(0.25)
    return out


def load_script() -> str:
    """The load generator of the cluster load test (tests/cluster/test_load.py)."""
    tree = ast.parse(LOAD.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LOAD":
            return str(ast.literal_eval(node.value))
    raise RuntimeError("no LOAD in tests/cluster/test_load.py")


def report(label: str, rtts: list[float]) -> None:
    print(f"{label:34s} heartbeats {len(rtts):4d}  p50 {percentile(rtts, 50):6.2f} ms  "
          f"p99 {percentile(rtts, 99):6.2f} ms  max {max(rtts):6.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--base-ip", default="127.0.64")
    args = ap.parse_args()
    with running_lab(args.base_ip) as lab:
        cl = lab.client()
        for i in range(9):
            cl.create_vm(f"vm{i}", vcpus=1, memory_mib=128)
        leader = cl.status()["leader"]
        target = next(h.api for h in lab.hosts if h.name == leader)
        time.sleep(3)
        report("quiet", sample(cl, args.seconds))
        load = subprocess.Popen([sys.executable, "-c", load_script(), target, "200", "20",
                                 str(int(args.seconds) + 5), lab.ca_file,
                                 lab.admin_token()], stdout=subprocess.PIPE, text=True)
        time.sleep(3)  # the streams open
        report("200 streams + 20 ListVms loops", sample(cl, args.seconds))
        counts = ast.literal_eval(load.communicate()[0])
        print(f"load on the leader: {counts['streams_open']} streams, "
              f"{counts['lists'] / (int(args.seconds) + 5):,.0f} ListVms/s, "
              f"{counts['errors']} refused (busy)")
        print(f"incidents: {len(cl.incidents())}, leader now {cl.status()['leader']} "
              f"(was {leader})")


if __name__ == "__main__":
    main()
