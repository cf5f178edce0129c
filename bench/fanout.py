"""Commit throughput of concurrent writers when the leader has many members to send to.

    .venv/bin/python -m bench.fanout [--learners 8] [--writers 8] [--each 150]

Three voters and LEARNERS learners (RaftNode adapters, real pysyncobj over loopback TCP,
fsync on), all in this one process, so the figure is CPU-bound: how much work the leader
does per commit. WRITERS threads each commit EACH CreateVm through the leader. What it
showed: sending one append_entries per member per tick instead of one per command (FORK.md
13) took 8 writers on 3 voters + 8 learners from 81 to 190 commits/s.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from hacluster.raft import RaftNode
from tests.adapters.test_raft import SECRET, create, free_ports, wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=8)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--each", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        voters = [f"127.0.0.1:{p}" for p in free_ports(3)]
        nodes = [RaftNode(a, [b for b in voters if b != a], str(root / f"v{i}"), SECRET)
                 for i, a in enumerate(voters)]
        nodes += [RaftNode(f"127.0.0.1:{p}", voters, str(root / f"l{i}"), SECRET, voter=False)
                  for i, p in enumerate(free_ports(args.learners))]
        try:
            wait(lambda: any(n.is_leader() for n in nodes), timeout=30)
            leader = next(n for n in nodes if n.is_leader())

            def write(k: int) -> None:
                for i in range(args.each):
                    assert leader.propose(create(f"w{k}-{i}"), timeout=30).ok
            t = time.monotonic()
            threads = [threading.Thread(target=write, args=(k,)) for k in range(args.writers)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            took = time.monotonic() - t
            total = args.writers * args.each
            print(f"{total} commits from {args.writers} writers, 3 voters + {args.learners} "
                  f"learners: {took:.1f} s, {total / took:.0f} commits/s")
        finally:
            for n in nodes:
                n.close()


if __name__ == "__main__":
    main()
