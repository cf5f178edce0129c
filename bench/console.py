"""The web console under load, on a real 3-host lab with 10,000 VMs (1,000 of them running):

1. pages: the JSON calls each page makes (dashboard, VM list with search, sort and paging,
   a VM), over one kept-alive HTTPS connection as a browser does, with a session cookie;
   p50 and p95 per call and per page (its calls in parallel, until the last answers);
2. commit to browser: a VM stopped and started through the gRPC API, the time until its
   delta arrives on a live stream of another member (p50, p99, max);
3. 500 live streams on the leader, open for a while as changes flow: the heartbeat round
   trips every host reports (as bench.heartbeat_load samples them) and leases lost.

    .venv/bin/python -m bench.console [--vms 10000] [--streams 500] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hacluster.client import Client
from hacluster.lab.web_client import Web

from .heartbeat_load import report, sample
from .labs import running_lab
from .write_latency import percentile

PAGES = {
    "dashboard": ["/api/v1/summary", "/api/v1/hosts", "/api/v1/incidents",
                  "/api/v1/events?follow=false&backlog=12"],
    "VM list": ["/api/v1/hosts", "/api/v1/vms?limit=50"],
    "VM list, search": ["/api/v1/vms?q=vm0099&limit=50"],
    "VM list, sorted, page 100": ["/api/v1/vms?sort=memory_mib&order=desc&offset=5000&limit=50"],
    "VM list, running only": ["/api/v1/vms?status=running&limit=50"],
    "VM": ["/api/v1/vms/vm00042", "/api/v1/rules", "/api/v1/hosts",
           "/api/v1/vms/vm00042/explain"],
}

STREAMS = """
import asyncio, ssl, sys, time, aiohttp
url, ca, token = sys.argv[1:4]
n, seconds = int(sys.argv[4]), float(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
async def one(session, counts):
    try:
        async with session.get(url, ssl=ctx, headers={"Authorization": "Bearer " + token},
                               timeout=aiohttp.ClientTimeout(total=None, sock_read=30)) as r:
            if r.status != 200:
                counts["refused"] += 1
                return
            counts["open"] += 1
            async for line in r.content:
                if line.startswith(b"event: delta"):
                    counts["deltas"] += 1
    except (aiohttp.ClientError, asyncio.TimeoutError):
        counts["dropped"] += 1
async def main():
    counts = {"open": 0, "refused": 0, "dropped": 0, "deltas": 0}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = [asyncio.create_task(one(session, counts)) for _ in range(n)]
        await asyncio.sleep(seconds)
        still = sum(1 for t in tasks if not t.done())
        for t in tasks:
            t.cancel()
    print(dict(counts, still_open=still))
asyncio.run(main())
"""


def populate(lab_client: Client, vms: int, running: int) -> None:
    def create(part: int) -> None:
        for i in range(part, vms, 4):
            lab_client.create_vm(f"vm{i:05d}", vcpus=1, memory_mib=64 + i % 7 * 32,
                                 stopped=i >= running)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(4)))


def pages(web: Web, runs: int) -> None:
    def timed(conn: object, path: str) -> float:
        t0 = time.perf_counter()
        conn.request("GET", path, headers=web.headers())  # type: ignore[attr-defined]
        reply = conn.getresponse()  # type: ignore[attr-defined]
        body = reply.read()
        assert reply.status == 200, (path, reply.status, body[:200])
        return time.perf_counter() - t0

    conns = [web.connection() for _ in range(4)]
    per_call: dict[str, list[float]] = {}
    with ThreadPoolExecutor(4) as pool:
        for name, paths in PAGES.items():
            totals = []
            for _ in range(runs):
                t0 = time.perf_counter()
                took = list(pool.map(timed, conns[:len(paths)], paths))
                totals.append(time.perf_counter() - t0)
                for path, t in zip(paths, took, strict=True):
                    per_call.setdefault(path, []).append(t)
            print(f"  page {name:27s} p50 {percentile(totals, 50) * 1e3:6.1f} ms  "
                  f"p95 {percentile(totals, 95) * 1e3:6.1f} ms")
    for path, samples in per_call.items():
        print(f"    {path:58s} p50 {percentile(samples, 50) * 1e3:6.1f}  "
              f"p95 {percentile(samples, 95) * 1e3:6.1f} ms")
    for conn in conns:
        conn.close()


def commit_to_browser(web: Web, cl: Client, n: int) -> None:
    """Stop/start a VM n times; each time, how long until the stream shows the new state."""
    arrivals: dict[str, float] = {}
    seen = threading.Condition()

    def listen() -> None:
        for _, kind, data in web.events("/api/v1/live", timeout=60):
            if kind == "delta":
                vm = (data.get("vms") or {}).get("vm00001")
                if vm is not None:
                    with seen:
                        arrivals.setdefault(vm["state"], time.perf_counter())
                        seen.notify_all()

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(1.0)
    samples = []
    for i in range(n):
        want = "stopped" if i % 2 == 0 else "started"
        with seen:
            arrivals.clear()
        (cl.stop_vm if want == "stopped" else cl.start_vm)("vm00001")
        acked = time.perf_counter()
        with seen:
            seen.wait_for(lambda w=want: w in arrivals, timeout=10)  # type: ignore[misc]
            got = arrivals.get(want)
        assert got is not None, f"no delta for {want}"
        samples.append(got - acked)
    print(f"  commit acknowledged -> delta on another member's stream, {n} changes: "
          f"p50 {percentile(samples, 50) * 1e3:.0f} ms  p99 {percentile(samples, 99) * 1e3:.0f}"
          f" ms  max {max(samples) * 1e3:.0f} ms")


def many_streams(lab: object, cl: Client, url: str, token: str, streams: int,
                 seconds: float) -> None:
    """Heartbeats quiet, then with a VM stopped and started every 0.5 s (the changes the
    streams will carry: at 10,000 VMs each costs the leader a planning pass), then the
    same with `streams` live streams open on the leader: the last two compared is what the
    streams cost."""
    ca = lab.ca_file  # type: ignore[attr-defined]
    before = len(cl.incidents())
    stop = threading.Event()

    def churn() -> None:  # changes for the streams to carry
        i = 0
        while not stop.wait(0.5):
            (cl.stop_vm if i % 2 == 0 else cl.start_vm)("vm00002")
            i += 1

    report("quiet", sample(cl, min(seconds, 15)))
    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    report("a change every 0.5 s", sample(cl, seconds))
    load = subprocess.Popen([sys.executable, "-c", STREAMS, url, ca, token, str(streams),
                             str(seconds + 6)], stdout=subprocess.PIPE, text=True)
    time.sleep(5)  # the streams open
    report(f"the same + {streams} live streams", sample(cl, seconds))
    stop.set()
    counts = json.loads(load.communicate()[0].replace("'", '"'))
    print(f"  streams: {counts}")
    print(f"  incidents (leases lost) during the run: {len(cl.incidents()) - before}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--running", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--streams", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--base-ip", default="127.0.66")
    args = ap.parse_args()
    settings = ["capacity.memory_mib=1000000", "capacity.cpus=512"]
    with running_lab(args.base_ip, settings=settings) as lab:
        cl = lab.client(timeout=30)
        t0 = time.monotonic()
        populate(cl, args.vms, args.running)
        while sum(1 for v in cl.list_vms() if v["status"] == "running") < args.running:
            time.sleep(1)
        print(f"{args.vms} VMs ({args.running} running) in {time.monotonic() - t0:.0f} s")
        status = cl.status()
        leader = status["leader"]
        follower = next(h for h in lab.hosts if h.name != leader)
        web = Web(follower.web, Path(lab.ca_file))
        assert web.login(lab.admin_token()).status == 200
        print(f"1. pages from {follower.name}'s console (a follower), {args.runs} runs each:")
        pages(web, args.runs)
        print("2. live updates:")
        commit_to_browser(web, cl, args.changes)
        print("3. many streams on the leader, heartbeat round trips (every host's):")
        on_leader = next(h for h in lab.hosts if h.name == leader)
        many_streams(lab, cl, on_leader.web + "api/v1/live", lab.admin_token(), args.streams,
                     args.seconds)


if __name__ == "__main__":
    main()
