"""pysyncobj's TCP transport with a deadline on connecting (FORK.md 11).

pysyncobj checks a connection's timeout only when its socket has an event or something is
sent on it. A connect whose SYN is dropped (a cut link, a firewall) has neither: the socket
sits in SYN-SENT while the kernel backs off its retries (1, 2, 4, ... 32 s apart, about two
minutes in all), and no new connect is tried meanwhile. A member cut off for 45 s then
stayed unreachable for up to a minute after the link came back, long enough to be fenced
twice over. Here a connect that has not completed within the connection timeout is dropped,
so the transport starts a fresh one: after a heal, the next SYN leaves within seconds.
"""

from __future__ import annotations

from typing import Any

from pysyncobj.monotonic import monotonic
from pysyncobj.tcp_connection import CONNECTION_STATE
from pysyncobj.transport import TCPTransport


class DeadlineTCPTransport(TCPTransport):  # type: ignore[misc]  # pysyncobj is untyped
    def _onTick(self) -> None:
        super()._onTick()
        self._drop_stalled_connects()

    def _drop_stalled_connects(self) -> None:
        now = monotonic()
        deadline: float = self._syncObj.conf.connectionTimeout
        stalled: list[Any] = [
            conn for node, conn in self._connections.items()
            if conn.state == CONNECTION_STATE.CONNECTING
            and now - self._lastConnectAttempt.get(node, now) > deadline]
        for conn in stalled:
            conn.disconnect()  # its disconnect callback connects again at once
