"""A process as the kernel shows it in /proc/PID/stat: its state and CPU time. Read by the
lab (is a pid still its host's process, not a zombie) and by a Raft process (does its
daemon run). Imports nothing of hacluster: each lab watchdog loads it."""

from __future__ import annotations

from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """The fields after the process's name (state first: proc(5)'s field 3 on), or None if
    there is no such process. The name may hold spaces and brackets: it ends at the last ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def cpu_time_if_running(pid: int) -> int | None:
    """The process's CPU time in clock ticks, or None if it is stopped, a zombie or gone."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in "TtZX":
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime
