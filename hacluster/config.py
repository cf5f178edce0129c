"""haclusterd's configuration file (TOML), parsed and checked before anything starts.

Every member lists the same `[[members]]`; `name` says which one this host is. A bad file is
refused with a message naming the field, never half-applied.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .core.timing import PROFILES, RAFT_FOR_PROFILE, HaTimings, problems
from .core.validate import name_error
from .hypervisor import DirectBoot
from .raft import RaftTimings


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Member:
    name: str
    raft: str  # host:port of the Raft transport
    api: str  # host:port of the gRPC API
    fence: tuple[str, ...] = ()  # fence agent argv: exit 0 means "this host is off now"


@dataclass(frozen=True)
class CapacityOverride:
    cpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None


@dataclass(frozen=True)
class ApiLimits:
    """How much client work a member takes at once ([api] in the config)."""

    workers: int = 4  # client calls served in parallel
    queue: int = 64  # more wait; beyond that a call is refused at once (RESOURCE_EXHAUSTED)
    streams: int = 1000  # live event streams (hactl events --follow, web console tabs)


@dataclass(frozen=True)
class Config:
    name: str
    members: tuple[Member, ...]
    secret: str
    data_dir: str
    libvirt_uri: str = "qemu:///system"
    storage_dir: str = "/var/lib/libvirt/images"
    stop_timeout: float = 60.0  # graceful shutdown before a stopped VM is destroyed
    capacity: CapacityOverride = field(default_factory=CapacityOverride)
    raft: RaftTimings = field(default_factory=RaftTimings)
    ha: HaTimings = PROFILES["safe"]
    profile: str = "safe"
    watchdog: str = "none"  # none | /dev/watchdog (or another device) | lab:/path/to/socket
    log_level: str = "INFO"
    libvirt_migration_uri: str = ""  # how other hosts' libvirtd reach this host's
    boot: DirectBoot | None = None  # [qemu] kernel/initrd/console_dir: direct-boot guests
    api: ApiLimits = field(default_factory=ApiLimits)

    @property
    def migration_uri(self) -> str:
        return self.libvirt_migration_uri or self.libvirt_uri

    @property
    def heartbeat_interval(self) -> float:
        return self.ha.heartbeat

    @property
    def me(self) -> Member:
        return next(m for m in self.members if m.name == self.name)

    @property
    def peers(self) -> list[Member]:
        return [m for m in self.members if m.name != self.name]


def _addr(label: str, value: Any) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{label} must be 'host:port', got {value!r}")
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{label} must be 'host:port', got {value!r}")
    return value


def _secret(data: dict[str, Any], base: Path) -> str:
    secret = data.get("secret")
    secret_file = data.get("secret_file")
    if secret_file:
        path = Path(secret_file) if Path(secret_file).is_absolute() else base / secret_file
        try:
            secret = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cluster.secret_file: cannot read {path}: {exc}") from exc
    if not isinstance(secret, str) or len(secret) < 16:
        raise ConfigError("cluster.secret (or cluster.secret_file) is required and must be at "
                          "least 16 characters: Raft traffic is pickled, so without a secret "
                          "anyone who reaches the Raft port can run code on this host")
    return secret


def load(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    return parse(data, p.parent)


def parse(data: dict[str, Any], base: Path = Path(".")) -> Config:
    name = data.get("name")
    if (err := name_error("host", name)) is not None:
        raise ConfigError(f"name: {err}")
    assert isinstance(name, str)
    cluster = data.get("cluster", {})
    raw_members = cluster.get("members", [])
    if not isinstance(raw_members, list) or not raw_members:
        raise ConfigError("cluster.members: list every member as {name, raft, api}")
    members = []
    for i, m in enumerate(raw_members):
        label = f"cluster.members[{i}]"
        if not isinstance(m, dict):
            raise ConfigError(f"{label} must be a table with name, raft and api")
        if (err := name_error("member", m.get("name"))) is not None:
            raise ConfigError(f"{label}.name: {err}")
        fence = m.get("fence", [])
        if not isinstance(fence, list) or not all(isinstance(a, str) for a in fence):
            raise ConfigError(f"{label}.fence must be a command as a list of strings")
        members.append(Member(m["name"], _addr(f"{label}.raft", m.get("raft")),
                              _addr(f"{label}.api", m.get("api")), tuple(fence)))
    if len({m.name for m in members}) != len(members):
        raise ConfigError("cluster.members: names must be unique")
    if len({m.raft for m in members}) != len(members):
        raise ConfigError("cluster.members: raft addresses must be unique")
    if name not in {m.name for m in members}:
        raise ConfigError(f"name: {name!r} is not one of cluster.members")

    cap = data.get("capacity", {})
    ha_section = dict(data.get("ha", {}))
    profile = str(ha_section.pop("profile", "safe"))
    if profile not in PROFILES:
        raise ConfigError(f"ha.profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    watchdog = str(ha_section.pop("watchdog_device", "none"))
    if not (watchdog == "none" or watchdog.startswith(("/", "lab:"))):
        raise ConfigError(f"ha.watchdog_device must be none, a device path (/dev/watchdog) or "
                          f"lab:/socket, got {watchdog!r}")
    try:
        ha = replace(PROFILES[profile], **{k: float(v) for k, v in ha_section.items()})
        raft_section: dict[str, Any] = {k: float(v) for k, v in data.get("raft", {}).items()
                                         if k not in ("snapshot_entries", "fsync")}
        raw = data.get("raft", {})
        raft = RaftTimings(**{**RAFT_FOR_PROFILE[profile], **raft_section},
                           snapshot_entries=int(raw.get("snapshot_entries", 10_000)),
                           fsync=raw.get("fsync", True) is not False)
    except TypeError as exc:
        raise ConfigError(f"ha or raft: {exc}") from exc
    granularity = 1.0 if watchdog.startswith("/") else 0.0
    broken = raft.problems() + problems(ha, raft.election_max, raft.leader_fallback,
                                        granularity)
    if broken:
        raise ConfigError("HA timings are unsafe: " + "; ".join(broken))
    agent = data.get("agent", {})
    try:
        api = ApiLimits(**{k: int(v) for k, v in data.get("api", {}).items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"api: {exc}") from exc
    if not (1 <= api.workers <= 64 and 0 <= api.queue <= 10_000 and 1 <= api.streams
            <= 100_000):
        raise ConfigError("api: workers must be 1-64, queue 0-10000, streams 1-100000")
    try:
        return Config(
            name=name,
            members=tuple(members),
            secret=_secret(cluster, base),
            data_dir=str(data.get("data_dir", "/var/lib/hacluster")),
            libvirt_uri=str(data.get("libvirt_uri", "qemu:///system")),
            storage_dir=str(data.get("storage_dir", "/var/lib/libvirt/images")),
            stop_timeout=float(agent.get("stop_timeout", 60.0)),
            ha=ha, profile=profile, watchdog=watchdog,
            capacity=CapacityOverride(**{k: int(v) for k, v in cap.items()}),
            raft=raft,
            log_level=str(data.get("log_level", "INFO")).upper(),
            libvirt_migration_uri=str(data.get("libvirt_migration_uri", "")),
            boot=DirectBoot(**data["qemu"]) if "qemu" in data else None,
            api=api,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
