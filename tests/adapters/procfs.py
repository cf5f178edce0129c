"""What the kernel counts for a process or thread, read from /proc."""

from __future__ import annotations

from pathlib import Path


def wakeups(task: str) -> int:
    """How often `task` ("PID" or "self/task/TID") gave up the CPU to wait: a thread that
    polls on a timer wakes (and counts) every turn, one that sleeps until needed does not."""
    status = Path(f"/proc/{task}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])
