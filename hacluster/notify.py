"""systemd's sd_notify protocol (READY, STATUS, WATCHDOG), without a library: one datagram."""

from __future__ import annotations

import os
import socket


def sd_notify(message: str) -> bool:
    """Send message to systemd if it is listening (Type=notify); False when it is not."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), path)
        except OSError:
            return False
    return True
