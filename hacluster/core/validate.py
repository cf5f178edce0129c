"""Input checks shared by the API (INVALID_ARGUMENT early) and by apply (the last guard)."""

from __future__ import annotations

from .model import NAME_RE, VmState

MAX_VCPUS = 1024
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB
MAX_DISK_GIB = 1024 * 1024  # 1 PiB
MAX_PRIORITY = 1000


def _check_int(label: str, value: object, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{label} must be an integer"
    if not low <= value <= high:
        return f"{label} must be between {low} and {high}, got {value}"
    return None


def name_error(kind: str, name: object) -> str | None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        return (f"{kind} name {name!r} is invalid: use 1-63 lowercase letters, digits, '.', '_' "
                "or '-', starting and ending with a letter or digit")
    return None


def vm_spec_errors(name: object, vcpus: object, memory_mib: object, disk_gib: object,
                   priority: object, state: object) -> list[str]:
    """Every problem with a VM spec, in a stable order (empty list = valid)."""
    errors = [
        name_error("VM", name),
        _check_int("vcpus", vcpus, 1, MAX_VCPUS),
        _check_int("memory_mib", memory_mib, 1, MAX_MEMORY_MIB),
        _check_int("disk_gib", disk_gib, 0, MAX_DISK_GIB),
        _check_int("priority", priority, 0, MAX_PRIORITY),
        state_error(state),
    ]
    return [e for e in errors if e]


def state_error(state: object) -> str | None:
    if state not in {s.value for s in VmState}:
        return f"state must be one of {', '.join(s.value for s in VmState)}, got {state!r}"
    return None


def host_capacity_errors(cpus: object, memory_mib: object, disk_gib: object) -> list[str]:
    errors = [
        _check_int("cpus", cpus, 1, 1 << 20),
        _check_int("memory_mib", memory_mib, 1, MAX_MEMORY_MIB),
        _check_int("disk_gib", disk_gib, 0, MAX_DISK_GIB),
    ]
    return [e for e in errors if e]
