"""How long `hactl vm list` takes with 1,000 VMs, as a user runs it (a new process each time,
over TLS, with its token), on a real 3-host lab; and the ListVms call alone, in-process.

    .venv/bin/python -m bench.list_latency [--vms 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

from .labs import running_lab
from .write_latency import percentile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--base-ip", default="127.0.65")
    args = ap.parse_args()
    with running_lab(args.base_ip) as lab:
        def create(part: int) -> None:
            cl = lab.client()
            for i in range(part, args.vms, 4):
                cl.create_vm(f"vm{i:05d}", vcpus=1, memory_mib=64, stopped=True)

        threads = [threading.Thread(target=create, args=(p,)) for p in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        env = {**os.environ, "HACTL_ENDPOINTS": lab.endpoints, "HACTL_CA": lab.ca_file,
               "HACTL_TOKEN": lab.admin_token()}
        print(f"3 members, {args.vms} VMs, TLS and a token; {args.runs} runs each")
        for label, argv in (("hactl vm list (table)", ["vm", "list"]),
                            ("hactl -o json vm list", ["-o", "json", "vm", "list"])):
            samples = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, "-m", "hacluster.cli", *argv],
                                     env=env, capture_output=True, text=True, check=True)
                samples.append(time.perf_counter() - t0)
                assert out.stdout.count("vm0") >= args.vms
            print(f"{label:24s} p50 {percentile(samples, 50) * 1e3:6.1f} ms  "
                  f"p90 {percentile(samples, 90) * 1e3:6.1f} ms (a new process each time)")
        cl = lab.client()
        samples = []
        for _ in range(args.runs * 5):
            t0 = time.perf_counter()
            cl.list_vms()
            samples.append(time.perf_counter() - t0)
        print(f"{'ListVms call alone':24s} p50 {percentile(samples, 50) * 1e3:6.1f} ms  "
              f"mean {statistics.mean(samples) * 1e3:6.1f} ms")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hacluster.cli", "--help"], env=env,
                       capture_output=True, check=True)
        print(f"{'hactl --help (startup)':24s} {(time.perf_counter() - t0) * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
