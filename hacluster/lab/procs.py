"""A lab host's processes: started detached, told apart from whatever reuses their pids, and
reaped with their exit status kept, so that "haclusterd exited" can say how (a daemon that
dies before writing a line leaves an empty log: a signal then names who ended it).

Light on imports: each lab host's watchdog imports it to power its host off."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

MARKERS = {"libvirtd": "libvirtd", "keeper": "hacluster.lab.keeper",
           "watchdog": "hacluster.lab.watchdog", "haclusterd": "hacluster.daemon"}

_reaped: dict[int, int] = {}  # pid -> its exit status, for the processes this one started


def alive(pid: int, proc: str) -> bool:
    """pid runs and is still the lab's `proc` (pids get reused): its command line says so."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return MARKERS[proc].encode() in cmdline and state != "Z"


def spawn(argv: list[str], log_path: Path, **kwargs: object) -> int:
    """Start a process of its own session (the lab's command may exit; it runs on)."""
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                **kwargs)  # type: ignore[call-overload]
    pid: int = proc.pid
    # Reaped when it exits, so that a killed process does not linger as a zombie of ours.
    threading.Thread(target=lambda: _reaped.__setitem__(pid, proc.wait()), daemon=True).start()
    return pid


def exit_reason(pid: int) -> str:
    """How a process this one started ended ("" if it runs or another started it)."""
    status = _reaped.get(pid)
    if status is None:
        return ""
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"
