"""A VM's serial console on this host, for `hactl vm console` (asked of whichever member runs
the VM, so nobody needs libvirt access of their own).

Output is read from the console's log file, which QEMU appends to whether or not anyone is
attached (so the lines before a crash are still there); input goes through libvirt's console
stream into the pty. Callers poll with the offset of the previous answer: nothing is held
open between calls, so a forgotten `vm console` costs the host nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .core.model import Observed, Vm
from .errors import fail
from .hypervisor import Hypervisor, HypervisorError
from .v1 import cluster_pb2 as pb

MAX_INPUT = 4096  # bytes typed per call: a line, a paste, not a file transfer
MAX_TAIL_LINES = 10_000
MAX_CHUNK = 256 * 1024  # output per answer; a caller behind by more asks again


def request_errors(request: pb.ConsoleRequest) -> list[str]:
    errors = []
    if not 0 <= request.tail_lines <= MAX_TAIL_LINES:
        errors.append(f"tail_lines must be 0-{MAX_TAIL_LINES}")
    if request.HasField("after") and request.after < 0:
        errors.append("after must be an offset >= 0 (the offset of a previous answer)")
    if len(request.input) > MAX_INPUT:
        errors.append(f"input must be at most {MAX_INPUT} bytes per call")
    return errors


def read_log(path: str, tail_lines: int, after: int | None) -> tuple[str, int]:
    """(text, offset): the last tail_lines lines of the log, or what follows `after`, and
    the offset where that text ends. A log shorter than `after` was started anew (the VM
    was defined again elsewhere, or the file rotated): it is read from its beginning."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if after is not None:
                start = after if after <= size else 0
                f.seek(start)
                data = _whole_chars(f.read(min(size - start, MAX_CHUNK)))
                return data.decode(errors="replace"), start + len(data)
            start = max(0, size - MAX_CHUNK)
            f.seek(start)
            data = _whole_chars(f.read(size - start))
    except FileNotFoundError:  # nothing printed yet
        return "", 0
    lines = data.decode(errors="replace").splitlines(keepends=True)
    return "".join(lines[-tail_lines:]) if tail_lines else "", start + len(data)


def _whole_chars(data: bytes) -> bytes:
    """Data without a UTF-8 character cut at its end (it comes whole with the next read)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # ASCII or the first byte of a character
            need = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if need <= back else data[:-back]
    return data


Console = Callable[[Vm, pb.ConsoleRequest], pb.ConsoleOutput]
"""This host's console access (the daemon sets it on the services)."""


def host_console(hv: Hypervisor, host: str) -> Console:
    def serve(vm: Vm, request: pb.ConsoleRequest) -> pb.ConsoleOutput:
        try:
            if request.input:
                if not (vm.host == host and vm.observed is Observed.RUNNING):
                    fail("conflict", f"VM {vm.name} is not running on {host}: nothing to type "
                         "into")
                hv.console_input(vm.uuid, request.input)
            path = hv.console_log(vm.uuid)
        except HypervisorError as exc:
            if "not found" in str(exc).lower():
                fail("not_found", f"VM {vm.name} is not defined on {host}")
            fail("conflict", f"console of {vm.name} on {host}: {exc}")
        if path is None:
            fail("conflict", f"VM {vm.name} on {host} has no console log: its domain defines "
                 "no serial console (the test driver's domains have none)")
        try:
            text, offset = read_log(path, request.tail_lines,
                                    request.after if request.HasField("after") else None)
        except OSError as exc:
            fail("unavailable", f"{host} cannot read the console log of {vm.name}: {exc} "
                 "(README, Consoles)")
        return pb.ConsoleOutput(host=host, text=text, offset=offset)

    return serve
