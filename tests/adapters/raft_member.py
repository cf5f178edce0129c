"""A Raft member in a process of its own, for tests that watch it from outside (strace):
    python -m tests.adapters.raft_member SELF PEER,PEER DATA_DIR
(RAFT_PROCESS=1: the member in a process of its own, raftproc.RaftProcess, as raft.process.)
Reads lines from stdin: `propose ID` commits a command with that id and prints `ok ID` once
propose returns (the client's acknowledgement); `leader?` prints yes or no; `quit` exits."""

from __future__ import annotations

import os
import sys

from hacluster.config import RaftTimings
from hacluster.core import commands as c
from hacluster.raft import RaftNode
from hacluster.raftproc import RaftProcess

SECRET = "test-secret-0123456789"


def main() -> int:
    me, peers, data = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    member = RaftProcess if os.environ.get("RAFT_PROCESS") == "1" else RaftNode
    node = member(me, peers, data, SECRET,
                  RaftTimings(fsync=os.environ.get("RAFT_FSYNC") != "0"))
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["propose"]:
            result = node.propose(c.SetPolicy(id=words[1], changes={"max_restart": 2}))
            print(f"ok {words[1]} {result.ok}", flush=True)
        elif words[:1] == ["leader?"]:
            print("yes" if node.is_leader() else "no", flush=True)
        elif words[:1] == ["quit"]:
            break
    node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
