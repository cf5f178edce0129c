"""What a busy Python thread costs the others of its process: a message round trip between
two threads (a socket pair, as a Raft thread's sends and answers are system calls), alone
and beside one thread busy with CPU work, at several GIL switch intervals in one run.

    .venv/bin/python -m bench.gil_convoy [--intervals 5,1,0.5] [--trips 300]

A thread that returns from a system call waits for the GIL until the busy thread is made
to drop it, up to the switch interval (Python's default 5 ms; haclusterd sets
1 ms, daemon.py). A leader's Raft thread makes one such call per member it sends to.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time

from .write_latency import percentile


def round_trips(trips: int) -> list[float]:
    near, far = socket.socketpair()

    def echo() -> None:
        while (data := far.recv(64)):
            far.send(data)
    threading.Thread(target=echo, daemon=True).start()
    samples = []
    for _ in range(trips):
        t = time.perf_counter()
        near.send(b"x")
        near.recv(64)
        samples.append(time.perf_counter() - t)
        time.sleep(0.001)
    near.close()
    return samples


def busy(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--intervals", default="5,1,0.5", help="switch intervals, ms")
    ap.add_argument("--trips", type=int, default=300)
    args = ap.parse_args()
    for ms in (float(x) for x in args.intervals.split(",")):
        sys.setswitchinterval(ms / 1000)
        alone = round_trips(args.trips)
        stop = threading.Event()
        worker = threading.Thread(target=busy, args=(stop,), daemon=True)
        worker.start()
        time.sleep(0.1)
        beside = round_trips(args.trips)
        stop.set()
        worker.join()
        print(f"switch interval {ms:g} ms: round trip p50 / p99 alone "
              f"{percentile(alone, 50) * 1e3:.2f} / {percentile(alone, 99) * 1e3:.2f} ms, "
              f"beside a busy thread {percentile(beside, 50) * 1e3:.2f} / "
              f"{percentile(beside, 99) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
