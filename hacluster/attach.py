"""`hactl vm console NAME`: a VM's serial console on this terminal, through the API.

Line mode, by polling: each line read from stdin is typed into the console with the next
poll, and what the VM printed since the last answer's offset is written out. Nothing stays
open on the members between polls. When the VM moves (a failover, a migration), its new
host's console follows, announced on stderr.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import BinaryIO, TextIO

from .client import Client

POLL = 0.5  # seconds between polls while nothing is typed
LINGER = 2.0  # after piped input ends: what the VM answers in that time is still shown
BACKLOG_LINES = 20
MAX_TYPED = 4096  # per call (the API's limit)


def _read_lines(stream: BinaryIO, lines: queue.Queue[bytes | None]) -> None:
    for line in iter(stream.readline, b""):
        lines.put(line)
    lines.put(None)  # end of input


def attach(client: Client, name: str, stdin: BinaryIO | None = None,
           out: TextIO | None = None, err: TextIO | None = None) -> None:
    stdin = stdin or sys.stdin.buffer
    out, err = out or sys.stdout, err or sys.stderr
    lines: queue.Queue[bytes | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(stdin, lines), daemon=True).start()
    reply = client.console(name, tail_lines=BACKLOG_LINES)
    host, offset = reply["host"], reply["offset"]
    err.write(f"--- {name} on {host}: lines typed are sent; Ctrl-C leaves ---\n")
    out.write(reply["text"])
    out.flush()
    ended: float | None = None
    while ended is None or time.monotonic() < ended + LINGER:
        typed = b""
        while len(typed) < MAX_TYPED - 512:
            try:
                line = lines.get(timeout=POLL if not typed and ended is None else 0)
            except queue.Empty:
                break
            if line is None:
                ended = time.monotonic()
                break
            typed += line[:MAX_TYPED - len(typed)]
        if not typed and ended is not None:
            time.sleep(POLL)
        reply = client.console(name, after=offset, typed=typed)
        if reply["host"] != host:  # it moved: follow it on its new host
            reply = client.console(name, tail_lines=BACKLOG_LINES)
            err.write(f"\n--- {name} now on {reply['host']} ---\n")
        host, offset = reply["host"], reply["offset"]
        out.write(reply["text"])
        out.flush()
