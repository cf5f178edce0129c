"""Live migration of a tiny real guest between two QEMU lab hosts: how long the move takes
through hacluster, and how long the guest was paused (libvirt's own downtime figure).

    .venv/bin/python -m bench.migration [--moves 10]     # root; see the QEMU lab in README

Starts a 2-host QEMU lab (network namespaces, a QEMU libvirtd each, TCG guests), boots one
96 MiB guest, then moves it back and forth --moves times with `hactl vm migrate --wait`
semantics (request -> running on the target as its libvirt reports). Per move: the wall time,
libvirt's time_elapsed for the migration job, and its downtime (the guest's pause).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import libvirt

from hacluster.lab import cluster as lab_mod


def wait(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=10)
    args = ap.parse_args()
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    with tempfile.TemporaryDirectory() as tmp:
        lab = lab_mod.create(tmp, 2, "127.0.57", log_level="WARNING", hypervisor="qemu")
        try:
            for h in lab.hosts:
                lab.start_host(h)
            lab_mod.wait_until_up(lab)
            cl = lab.client()
            cl.create_vm("mig", vcpus=1, memory_mib=96)
            wait(lambda: cl.get_vm("mig")["status"] == "running", 60, "guest running")
            time.sleep(5)  # let it boot
            uris = {h.name: h.libvirt_uri for h in lab.hosts}
            walls, elapsed, downtimes = [], [], []
            for _ in range(args.moves):
                source = cl.get_vm("mig")["host"]
                target = next(h for h in uris if h != source)
                t0 = time.monotonic()
                cl.migrate_vm("mig", target)
                wait(lambda t=target: cl.get_vm("mig")["host"] == t
                     and not cl.get_vm("mig")["migrating_to"], 60, "moved")
                walls.append(time.monotonic() - t0)
                conn = libvirt.open(uris[target])
                stats = conn.lookupByName("mig").jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
                conn.close()
                elapsed.append(stats.get("time_elapsed", 0) / 1000)
                downtimes.append(stats.get("downtime", 0))
                time.sleep(1)
            print(f"{args.moves} live migrations of a 96 MiB TCG guest between two hosts:")
            print(f"  request -> running on target: median {statistics.median(walls):.2f} s, "
                  f"max {max(walls):.2f} s")
            print(f"  libvirt migration job: median {statistics.median(elapsed):.2f} s")
            print(f"  guest paused (libvirt downtime): median {statistics.median(downtimes):.0f} "
                  f"ms, max {max(downtimes):.0f} ms")
        finally:
            lab.stop_all()


if __name__ == "__main__":
    main()
