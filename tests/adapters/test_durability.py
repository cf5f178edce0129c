"""An acknowledged write is on the disks of a majority before the client hears OK, as the
kernel saw it: three members in processes of their own, each under strace, and for every
acknowledged command the journal write that holds it followed by an fdatasync of the
journal, on at least two members, before the `ok` its proposer printed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_raft import free_ports

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(\d+)\s+(\d+\.\d+) (\w+)\((.*)$")


def syscalls(trace: Path) -> list[tuple[float, str, str]]:
    out = []
    for line in trace.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if m:
            out.append((float(m.group(2)), m.group(3), m.group(4)))
    return out


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_an_acknowledged_write_is_fsynced_on_a_majority_first(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    procs = []
    for i, addr in enumerate(addrs):
        peers = ",".join(a for a in addrs if a != addr)
        procs.append(subprocess.Popen(
            ["strace", "-f", "-ttt", "-s", "65536", "-y", "-o", str(tmp_path / f"trace{i}"),
             "-e", "trace=pwrite64,fdatasync,write", sys.executable, "-m",
             "tests.adapters.raft_member", addr, peers, str(tmp_path / f"n{i}")],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        ids = [f"durable-{i}" for i in range(15)]
        deadline = time.monotonic() + 60
        proposer = procs[1]
        assert proposer.stdin is not None and proposer.stdout is not None
        acked = []
        for cmd_id in ids:
            while True:  # the first ones may meet an election still running
                proposer.stdin.write(f"propose {cmd_id}\n")
                proposer.stdin.flush()
                line = proposer.stdout.readline()
                if line.startswith(f"ok {cmd_id}"):
                    acked.append(cmd_id)
                    break
                assert time.monotonic() < deadline, line
    finally:
        for p in procs:
            if p.stdin is not None:
                p.stdin.write("quit\n")
                p.stdin.close()
        for p in procs:
            p.wait(20)
    traces = [syscalls(tmp_path / f"trace{i}") for i in range(3)]
    said_ok = {m.group(1): t for t, name, args in traces[1]
               if name == "write" and (m := re.search(r'"ok (durable-\d+)', args))}
    assert set(said_ok) == set(acked) == set(ids)
    for cmd_id in ids:
        durable_on = 0
        for calls in traces:
            written = [t for t, name, args in calls
                       if name == "pwrite64" and "raft.journal>" in args
                       and f'id\\":\\"{cmd_id}\\"' in args]
            assert len(written) <= 1, (cmd_id, written)  # a lagging member may not have it
            synced = [t for t, name, args in calls if name == "fdatasync"
                      and "raft.journal>" in args and written and t >= written[0]]
            if synced and synced[0] <= said_ok[cmd_id]:
                durable_on += 1
        assert durable_on >= 2, f"{cmd_id} was acknowledged durable on {durable_on} member(s)"
