"""Cutting a lab host off the network, for real, on one machine.

All lab hosts share the loopback interface, and their outgoing connections all leave from
127.0.0.1, so addresses alone cannot tell whose packet is whose. Each host's haclusterd
therefore runs in a cgroup (v2) of its own, and iptables matches on it: packets that host's
daemon sends to other hosts, and packets anyone else sends to the host's address, are dropped.
Root only (iptables and cgroups); everything else in the lab works without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path


class NetFaultError(Exception):
    pass


def _cgroup2_root() -> Path | None:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        parts = line.split()
        if len(parts) > 2 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


def _relative(tag: str, host: str) -> str:
    return f"/hacluster-lab-{tag}/{host}"


def enter_cgroup(tag: str, host: str, pid: int) -> bool:
    """Move pid into the host's cgroup; False where that is impossible (not root)."""
    root = _cgroup2_root()
    if root is None or os.geteuid() != 0:
        return False
    path = root / _relative(tag, host).lstrip("/")
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "cgroup.procs").write_text(str(pid))
    except OSError:
        return False
    return True


def _chain(tag: str, host: str) -> str:
    return f"HACL-{tag}-{host}"[:28]


def _iptables(*args: str, check: bool = True) -> bool:
    binary = shutil.which("iptables")
    if binary is None:
        raise NetFaultError("iptables is not installed (Debian: iptables)")
    proc = subprocess.run([binary, "-w", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetFaultError(f"iptables {' '.join(args)}: {proc.stderr.strip()}")
    return proc.returncode == 0


def isolate(tag: str, host: str, ip: str, others: list[str]) -> None:
    if os.geteuid() != 0:
        raise NetFaultError("cutting a host off needs root (iptables, cgroups)")
    if _cgroup2_root() is None:
        raise NetFaultError("no cgroup2 hierarchy is mounted")
    heal(tag, host)
    chain, cgroup = _chain(tag, host), _relative(tag, host)
    _iptables("-N", chain)
    for other in others:  # what the host's daemon sends to the others
        _iptables("-A", chain, "-m", "cgroup", "--path", cgroup, "-d", other, "-j", "DROP")
    # what anyone else sends to the host
    _iptables("-A", chain, "-d", ip, "-m", "cgroup", "!", "--path", cgroup, "-j", "DROP")
    _iptables("-I", "OUTPUT", "-j", chain)


def heal(tag: str, host: str) -> None:
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        return
    chain = _chain(tag, host)
    while _iptables("-D", "OUTPUT", "-j", chain, check=False):
        pass
    _iptables("-F", chain, check=False)
    _iptables("-X", chain, check=False)


def remove_cgroups(tag: str) -> None:
    root = _cgroup2_root()
    if root is None:
        return
    base = root / f"hacluster-lab-{tag}"
    if base.is_dir():
        for sub in base.iterdir():
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()
