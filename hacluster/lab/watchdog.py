"""The lab's watchdog, one per lab host, outside haclusterd (so SIGSTOP of haclusterd cannot
stop it): if it is armed and not re-armed before its deadline, it powers the host off (SIGKILL
of the host's haclusterd, keeper and libvirtd: its VMs die), like a hardware watchdog.

    python -m hacluster.lab.watchdog SOCKET LAB_DIR HOST

Messages (datagrams): "arm <deadline on the monotonic clock>" and "disarm".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from .procs import alive


def power_off(lab_dir: str, host: str) -> list[str]:
    data = json.loads((Path(lab_dir) / "lab.json").read_text())
    pids = next(h["pids"] for h in data["hosts"] if h["name"] == host)
    killed = []
    for proc in ("haclusterd", "keeper", "libvirtd"):
        pid = pids.get(proc)
        if pid and alive(pid, proc):  # still that host's process: pids get reused
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(f"{proc}({pid})")
    return killed


def main() -> int:
    path, lab_dir, host = sys.argv[1:4]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"watchdog of {host} listening on {path}", flush=True)
    deadline: float | None = None
    while True:
        # asleep until a message or the deadline: 48 lab hosts polling every 20 ms cost a
        # sixth of a core between them, on the machine whose saturation the bench measures
        sock.settimeout(None if deadline is None else max(0.001, deadline - time.monotonic()))
        try:
            message = sock.recv(128).decode()
        except TimeoutError:
            message = ""
        if message.startswith("arm "):
            if deadline is None:
                print(f"{time.time():.3f} armed", flush=True)
            deadline = float(message.split()[1])
        elif message == "disarm" and deadline is not None:
            print(f"{time.time():.3f} disarmed", flush=True)
            deadline = None
        if deadline is not None and time.monotonic() > deadline:
            late = time.monotonic() - deadline
            print(f"{time.time():.3f} FIRED ({late * 1000:.0f} ms after the deadline): "
                  f"power off {host}: {', '.join(power_off(lab_dir, host))}", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
