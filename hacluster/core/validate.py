"""Input checks shared by the API (INVALID_ARGUMENT early) and by apply (the last guard)."""

from __future__ import annotations

import math

from .model import NAME_RE, POLICY_LIMITS, Policy, VmState

MAX_VCPUS = 1024
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB
MAX_DISK_GIB = 1024 * 1024  # 1 PiB
MAX_PRIORITY = 1000
# Size caps: every request and every record stays small, so no client can make the log,
# every member's memory or an apply grow without bound (a rule naming 150,000 VMs, say).
MAX_VMS = 50_000  # in the cluster
MAX_RULES = 2_000
MAX_TOKENS = 10_000
MAX_RULE_MEMBERS = 256  # VMs (or hosts) one rule names
MAX_TEXT = 1_000  # characters of a stored message (errors, reasons)
MAX_HEARTBEAT_VMS = 10_000  # VMs one heartbeat reports
MAX_MEMORY_REPORT_MIB = float(1 << 40)  # live figures beyond this are nonsense
MAX_DISK_REPORT_GIB = float(1 << 40)
WHOLE_POLICY_KEYS = {k for k, v in Policy().to_dict().items() if isinstance(v, int | bool)}


def text(value: object, limit: int = MAX_TEXT) -> str:
    """A message as stored: a string, cut to limit characters."""
    s = str(value)
    return s if len(s) <= limit else s[:limit - 3] + "..."


def check_int(label: str, value: object, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{label} must be an integer"
    if not low <= value <= high:
        return f"{label} must be between {low} and {high}, got {value}"
    return None


def shown(value: object, limit: int = 40) -> str:
    """A value quoted in an error message, never longer than limit (what a client sent may
    be megabytes, and a gRPC error travels in a header of at most 16 KiB)."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 3] + "..."


MAX_MEMBERS = 100  # vSphere's largest cluster is 96 hosts


def address_error(label: str, value: object) -> str | None:
    """'host:port' with a port in 1-65535 (an IPv6 host in brackets), or why not."""
    if isinstance(value, str) and ":" in value and len(value) <= 300:
        host, _, port = value.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return None
    return f"{label} must be 'host:port', got {shown(value)}"


def name_error(kind: str, name: object) -> str | None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        return (f"{kind} name {shown(name)} is invalid: use 1-63 lowercase letters, digits, "
                "'.', '_' or '-', starting and ending with a letter or digit")
    return None


def vm_spec_errors(name: object, vcpus: object, memory_mib: object, disk_gib: object,
                   priority: object, state: object) -> list[str]:
    """Every problem with a VM spec, in a stable order (empty list = valid)."""
    errors = [
        name_error("VM", name),
        check_int("vcpus", vcpus, 1, MAX_VCPUS),
        check_int("memory_mib", memory_mib, 1, MAX_MEMORY_MIB),
        check_int("disk_gib", disk_gib, 0, MAX_DISK_GIB),
        check_int("priority", priority, 0, MAX_PRIORITY),
        state_error(state),
    ]
    return [e for e in errors if e]


def state_error(state: object) -> str | None:
    if state not in {s.value for s in VmState}:
        return f"state must be one of {', '.join(s.value for s in VmState)}, got {shown(state)}"
    return None


def host_capacity_errors(cpus: object, memory_mib: object, disk_gib: object) -> list[str]:
    errors = [
        check_int("cpus", cpus, 1, 1 << 20),
        check_int("memory_mib", memory_mib, 1, MAX_MEMORY_MIB),
        check_int("disk_gib", disk_gib, 0, MAX_DISK_GIB),
    ]
    return [e for e in errors if e]


def policy_errors(changes: object) -> list[str]:
    """Every problem with a policy change: unknown keys, out of range, not a whole number
    where one is needed (max_restart=0.9 is refused, not truncated to 0)."""
    if not isinstance(changes, dict) or not changes:
        return ["no policy setting given"]
    errors = []
    for key, value in sorted(changes.items(), key=lambda kv: str(kv[0])):
        limits = POLICY_LIMITS.get(key)
        if limits is None:
            errors.append(f"unknown policy setting {shown(key)} (known: "
                          f"{', '.join(sorted(POLICY_LIMITS))})")
        elif (isinstance(value, bool) or not isinstance(value, int | float)
              or not math.isfinite(value) or not limits[0] <= value <= limits[1]):
            errors.append(f"{key} must be a number in [{limits[0]:g}, {limits[1]:g}]")
        elif key in WHOLE_POLICY_KEYS and value != int(value):
            errors.append(f"{key} must be a whole number, got {value:g}")
        elif key == "voters" and value % 2 == 0:
            errors.append("voters must be odd (3, 5 or 7): an even count adds no tolerance")
    return errors


def heartbeat_errors(cpu_load: float, memory_available_mib: float, disk_free_gib: float,
                     reported: int) -> list[str]:
    """Live figures an agent reports: finite and in range (a NaN load would win placement)."""
    errors = []
    if not (math.isfinite(cpu_load) and 0.0 <= cpu_load <= 1.0):
        errors.append(f"cpu_load must be in [0, 1], got {cpu_load!r}")
    if not (math.isfinite(memory_available_mib)
            and 0.0 <= memory_available_mib <= MAX_MEMORY_REPORT_MIB):
        errors.append(f"memory_available_mib must be in [0, 2^40], got {memory_available_mib!r}")
    if not (math.isfinite(disk_free_gib) and 0.0 <= disk_free_gib <= MAX_DISK_REPORT_GIB):
        errors.append(f"disk_free_gib must be in [0, 2^40], got {disk_free_gib!r}")
    if reported > MAX_HEARTBEAT_VMS:
        errors.append(f"a heartbeat reports at most {MAX_HEARTBEAT_VMS} VMs")
    return errors
