"""Watchdogs: something outside this process that powers the host off if haclusterd stops
feeding it while HA VMs run here, so a hung daemon cannot keep them running past its lease.

The agent arms it with an absolute deadline on the host's monotonic clock (lease expiry plus
the configured watchdog time) after every lease renewal, and disarms it (magic close) when no
HA VM runs here any more. Backends:
- DeviceWatchdog: /dev/watchdog (softdog or hardware): each feed sets the timeout to the time
  left until the deadline (whole seconds, rounded up) and pings.
- SocketWatchdog: the lab's watchdog process (hacluster.lab.watchdog), one per lab host.
- NoWatchdog: none; the host then registers watchdog = 0 and the leader will not recover its
  VMs on lease expiry alone (a fence agent or an operator must confirm the host is off).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import socket
import struct
import time

log = logging.getLogger(__name__)

WDIOC_KEEPALIVE = 0x80045705  # _IOR('W', 5, int)
WDIOC_SETTIMEOUT = 0xC0045706  # _IOWR('W', 6, int)


class WatchdogError(Exception):
    pass


class Watchdog:
    kind = "none"

    def arm(self, deadline: float) -> None:
        """Power the host off at `deadline` (time.monotonic()) unless armed again before."""

    def disarm(self) -> None:
        """Nothing here needs fencing any more: stand down (magic close)."""

    def close(self) -> None:
        """haclusterd stops. Stays armed if it was: HA VMs still run here, and if haclusterd
        does not come back before the deadline this host must not keep them."""


class NoWatchdog(Watchdog):
    pass


class SocketWatchdog(Watchdog):
    """The lab's watchdog process, reached by datagrams on a unix socket."""

    kind = "lab"

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def _send(self, message: str) -> None:
        try:
            self._sock.sendto(message.encode(), self.path)
        except OSError as exc:
            # It is gone: the lab's power is off or it was never started. Nothing to feed.
            log.warning("lab watchdog at %s unreachable: %s", self.path, exc)

    def arm(self, deadline: float) -> None:
        self._send(f"arm {deadline:.6f}")

    def disarm(self) -> None:
        self._send("disarm")


class DeviceWatchdog(Watchdog):
    """Linux /dev/watchdog: opened on first arm, closed with the magic 'V' on disarm."""

    kind = "device"

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def arm(self, deadline: float) -> None:
        seconds = max(1, math.ceil(deadline - time.monotonic()))
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY)
            fcntl.ioctl(self._fd, WDIOC_SETTIMEOUT, struct.pack("i", seconds))
            fcntl.ioctl(self._fd, WDIOC_KEEPALIVE, struct.pack("i", 0))
        except OSError as exc:
            raise WatchdogError(f"{self.path}: {exc.strerror}") from exc

    def disarm(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._fd, b"V")
                os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # no magic 'V': the kernel keeps the timer running
            self._fd = None


def open_watchdog(spec: str) -> tuple[Watchdog, str]:
    """The configured watchdog, checked: (watchdog, "") if it works, else (NoWatchdog(),
    why). A host whose watchdog does not work registers as having none, so the leader never
    counts on it to fence the host (only a fence agent or an operator can)."""
    if spec == "none":
        return NoWatchdog(), ""
    if spec.startswith("lab:"):
        path = spec[4:]
        if not os.path.exists(path):
            return NoWatchdog(), f"lab watchdog socket {path} does not exist"
        return SocketWatchdog(path), ""
    if spec.startswith("/"):
        why = probe_device(spec)
        return (NoWatchdog(), why) if why else (DeviceWatchdog(spec), "")
    return NoWatchdog(), f"watchdog must be none, a device path or lab:/socket, got {spec!r}"


def probe_device(path: str) -> str:
    """Why the device cannot serve (or ""): it must open, and stand down on a magic close
    (nowayout would reboot the host whenever haclusterd stands it down)."""
    name = os.path.basename(os.path.realpath(path))
    nowayout = f"/sys/class/watchdog/{name}/nowayout"
    try:
        with open(nowayout) as f:
            if f.read().strip() == "1":
                return (f"{path} has nowayout set: haclusterd stands the watchdog down when no "
                        "HA VM runs; load the driver with nowayout=0")
    except OSError:
        pass  # no sysfs entry: nothing to tell
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        return f"cannot open {path}: {exc.strerror} (see README: the watchdog device)"
    try:
        os.write(fd, b"V")  # magic close: stand down again at once
    finally:
        os.close(fd)
    return ""
