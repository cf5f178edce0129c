"""haclusterd's configuration file (TOML), parsed and checked before anything starts.

Every member lists the same `[[members]]`; `name` says which one this host is. A bad file is
refused with a message naming the field, never half-applied; so are key and secret files that
others can read, and secrets too weak to protect Raft traffic.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .certs import common_name, private_file_error
from .core.commands import CODE_VERSION
from .core.timing import PROFILES, RAFT_FOR_PROFILE, HaTimings, problems
from .core.validate import address_error, name_error


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RaftTimings:
    """Raft's timers and snapshot cadence (the Raft adapter turns them into pysyncobj's)."""

    append_entries_period: float = 0.05
    election_min: float = 0.3
    election_max: float = 0.6
    connection_timeout: float = 5.0  # long: idle follower links are judged on send (F3)
    connection_retry: float = 0.5
    leader_fallback: float = 1.5  # a leader without a majority steps down after this
    snapshot_entries: int = 10_000  # a snapshot at least every this many entries...
    snapshot_interval: float = 300.0  # ...or this many seconds
    fsync: bool = True  # off only for benchmarks that show what it costs
    critical_nice: int = -10  # a voter's Raft thread and the heartbeat loop: priority.py
    # the Raft member (and the member port) in a process of its own (raftproc.py): on since
    # two 48-host runs with 10,000 VMs held with it (README, Scale)
    process: bool = True

    @property
    def daemon_silence(self) -> float:
        """How long a Raft process waits on a silent daemon before it stops ticking: a
        leader change still fits in leader_fallback (a hung daemon's leases run out)."""
        return max(self.leader_fallback - self.election_max, 3 * self.append_entries_period)

    def problems(self) -> list[str]:
        """pysyncobj's own rules (it would fail an assert), said plainly."""
        out = []
        if self.election_min <= 3 * self.append_entries_period:
            out.append("raft.election_min must be more than 3 x append_entries_period")
        if self.election_max <= self.election_min:
            out.append("raft.election_max must be more than election_min")
        if self.connection_timeout < self.election_max:
            out.append("raft.connection_timeout must be at least election_max")
        if self.leader_fallback <= self.append_entries_period:
            out.append("raft.leader_fallback must be more than append_entries_period")
        if self.snapshot_entries < 100 or self.snapshot_interval < 1:
            out.append("raft.snapshot_entries must be >= 100 and snapshot_interval >= 1 s")
        if not -20 <= self.critical_nice <= 0:
            out.append("raft.critical_nice must be -20 to 0 (0: the daemon's own priority)")
        return out


@dataclass(frozen=True)
class DirectBoot:
    """Boot guests straight from a kernel and initramfs (the lab's tiny guests)."""

    kernel: str
    initrd: str
    cmdline: str = "console=ttyS0 quiet panic=-1"


VIRT_TYPES = ("auto", "kvm", "qemu")


@dataclass(frozen=True)
class Guests:
    """How this host's hypervisor runs the cluster's VMs."""

    virt_type: str = "auto"  # kvm | qemu (TCG) | auto: kvm where libvirt offers it
    console_dir: str = "/var/log/hacluster/consoles"  # serial console logs (NAME.log)
    migrate_unsafe: bool = False  # live-migrate disks libvirt cannot tell are shared
    boot: DirectBoot | None = None  # [qemu] kernel/initrd/cmdline: direct-boot guests


@dataclass(frozen=True)
class Member:
    name: str
    raft: str  # host:port of the Raft transport
    api: str  # host:port of the gRPC API (TLS; people and tools, with tokens)
    fence: tuple[str, ...] = ()  # fence agent argv: exit 0 means "this host is off now"
    peer: str = ""  # host:port of the member port (mutual TLS: heartbeats, live metrics)
    web: str = ""  # host:port of the web console and JSON API (HTTPS)
    voter: bool = True  # a Raft voter (configured members are), or a learner (README)


@dataclass(frozen=True)
class Tls:
    """The member's certificate and key and the cluster CA (PEM), read once at start."""

    ca: bytes
    cert: bytes
    key: bytes
    admin_sha256: str = ""  # the bootstrap admin token's hash: added once, by the first leader
    cert_path: str = ""  # the same files, for what loads them by name (the web server)
    key_path: str = ""


@dataclass(frozen=True)
class Directory:
    """An LDAP directory people log in with (`hactl login`); [directory] in the config."""

    url: str  # ldaps://host:636, or ldap://host:389 with start_tls
    user_dn: str  # the DN to bind as, "{user}" replaced: uid={user},ou=people,dc=example,dc=org
    group_base: str  # where groups are searched
    group_filter: str = "(member={dn})"  # "{dn}" is the user's DN
    ca: str = ""  # CA file for the directory's certificate ("" = the system's)
    start_tls: bool = False
    session_ttl: float = 8 * 3600.0  # how long a login's token lasts


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
    guests: Guests = field(default_factory=Guests)
    api: ApiLimits = field(default_factory=ApiLimits)
    tls: Tls | None = None  # always set by parse(): the API is served over TLS only
    previous_secrets: tuple[str, ...] = ()  # accepted while a new secret is rolled out
    directory: Directory | None = None
    # [testing] code_version: play an older member in a rolling-upgrade test (it reports
    # that version and halts, as such code would, on what is newer)
    code_version: int = CODE_VERSION
    # [cluster] join: member ports of the cluster a new host joins (after hactl host add); its
    # members list may then name only itself (hacluster.joining asks for the rest)
    join: tuple[str, ...] = ()

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
    if (err := address_error(label, value)) is not None:
        raise ConfigError(err)
    assert isinstance(value, str)
    return value


MIN_SECRET_BITS = 128


def secret_bits(secret: str) -> float:
    """A rough, generous estimate of a secret's entropy: its length times the bits of the
    character classes it uses, no more than its distinct characters allow."""
    pool = sum(size for chars, size in (("abcdefghijklmnopqrstuvwxyz", 26),
                                        ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26),
                                        ("0123456789", 10)) if any(c in chars for c in secret))
    pool += 32 if any(not c.isalnum() for c in secret) else 0
    distinct = len(set(secret))
    return len(secret) * math.log2(max(min(pool, distinct * 4), 2))


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false")
    return value


def _path(value: str, base: Path) -> Path:
    return Path(value) if Path(value).is_absolute() else base / value


def _read_private(label: str, value: Any, base: Path) -> bytes:
    """A file only haclusterd (and its group) may read: a key or a secret."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{label} must be a file path")
    path = _path(value, base)
    if (why := private_file_error(path, label)) is not None:
        raise ConfigError(why)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read {path}: {exc.strerror}") from exc


def _secret(data: dict[str, Any], base: Path, key: str = "secret") -> str:
    secret = data.get(key)
    secret_file = data.get(f"{key}_file")
    if secret_file:
        secret = _read_private(f"cluster.{key}_file", secret_file, base).decode().strip()
    if not isinstance(secret, str) or secret_bits(secret) < MIN_SECRET_BITS:
        raise ConfigError(f"cluster.{key} (or cluster.{key}_file) is required and must be "
                          f"random, {MIN_SECRET_BITS} bits or more (head -c 32 /dev/urandom | "
                          "base64): it encrypts Raft traffic, which is pickled, so whoever "
                          "knows it can run code on every member")
    return secret


def _tls(data: dict[str, Any], base: Path, name: str) -> Tls:
    if not data:
        raise ConfigError("[tls] is required (ca, cert, key): the API is served over TLS only "
                          "and members prove who they are with their certificates; make them "
                          "with `hactl cert init` and `hactl cert issue` (README: Deploying)")
    try:
        ca = _path(data["ca"], base).read_bytes()
        cert = _path(data["cert"], base).read_bytes()
    except KeyError as exc:
        raise ConfigError(f"tls.{exc.args[0]} is required (hactl cert init / cert issue)") \
            from exc
    except OSError as exc:
        raise ConfigError(f"tls: cannot read {exc.filename}: {exc.strerror}") from exc
    key = _read_private("tls.key", data.get("key"), base)
    try:
        subject = common_name(cert)
    except ValueError as exc:
        raise ConfigError(f"tls.cert: not a PEM certificate: {exc}") from exc
    if subject != name:
        raise ConfigError(f"tls.cert is issued to {subject!r}, not to this member ({name!r}): "
                          f"hactl cert issue {name} ...")
    admin = str(data.get("admin_token_sha256", ""))
    if data.get("admin_token_sha256_file"):
        try:
            admin = _path(data["admin_token_sha256_file"], base).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"tls.admin_token_sha256_file: {exc.strerror}") from exc
    return Tls(ca=ca, cert=cert, key=key, admin_sha256=admin,
               cert_path=str(_path(data["cert"], base)), key_path=str(_path(data["key"], base)))


def _directory(data: dict[str, Any]) -> Directory | None:
    if not data:
        return None
    try:
        directory = Directory(**data)
    except TypeError as exc:
        raise ConfigError(f"directory: {exc}") from exc
    if not directory.url.startswith(("ldaps://", "ldap://")):
        raise ConfigError("directory.url must be ldaps://HOST[:PORT] or ldap://HOST[:PORT]")
    if directory.url.startswith("ldap://") and not directory.start_tls:
        raise ConfigError("directory: passwords never travel in the clear: use ldaps:// or "
                          "start_tls = true")
    if "{user}" not in directory.user_dn:
        raise ConfigError("directory.user_dn must contain {user}")
    return directory


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
        api_addr = _addr(f"{label}.api", m.get("api"))
        host, _, port = api_addr.rpartition(":")
        peer = _addr(f"{label}.peer", m.get("peer", f"{host}:{int(port) + 2}"))
        web = _addr(f"{label}.web", m.get("web", f"{host}:{int(port) + 1}"))
        members.append(Member(m["name"], _addr(f"{label}.raft", m.get("raft")), api_addr,
                              tuple(fence), peer, web))
    join = cluster.get("join", [])
    if not isinstance(join, list):
        raise ConfigError("cluster.join must be a list of member ports ('host:port')")
    join = [_addr(f"cluster.join[{i}]", a) for i, a in enumerate(join)]
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
                                         if k not in ("snapshot_entries", "fsync",
                                                      "critical_nice", "process")}
        raw = data.get("raft", {})
        if not isinstance(raw.get("process", True), bool):
            raise ConfigError(f"raft.process must be true or false, got {raw['process']!r}")
        raft = RaftTimings(**{**RAFT_FOR_PROFILE[profile], **raft_section},
                           snapshot_entries=int(raw.get("snapshot_entries", 10_000)),
                           fsync=raw.get("fsync", True) is not False,
                           critical_nice=int(raw.get("critical_nice", -10)),
                           process=raw.get("process", True))
    except (TypeError, ValueError) as exc:
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
    qemu = dict(data.get("qemu", {}))
    # [qemu] console_dir: where the lab of earlier versions put it (console_dir now)
    console_dir = qemu.pop("console_dir", "/var/log/hacluster/consoles")
    code_version = data.get("testing", {}).get("code_version", CODE_VERSION)
    if not (isinstance(code_version, int) and 1 <= code_version <= CODE_VERSION):
        raise ConfigError(f"testing.code_version must be 1-{CODE_VERSION} (this code's)")
    virt_type = str(data.get("virt_type", "auto"))
    if virt_type not in VIRT_TYPES:
        raise ConfigError(f"virt_type must be one of {', '.join(VIRT_TYPES)}")
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
            guests=Guests(virt_type=virt_type, console_dir=str(data.get("console_dir",
                                                                       console_dir)),
                          migrate_unsafe=_bool(data, "libvirt_migrate_unsafe"),
                          boot=DirectBoot(**qemu) if qemu else None),
            api=api,
            tls=_tls(data.get("tls", {}), base, name),
            previous_secrets=(_secret(cluster, base, "previous_secret"),)
            if ("previous_secret" in cluster or "previous_secret_file" in cluster) else (),
            directory=_directory(data.get("directory", {})),
            code_version=code_version,
            join=tuple(join),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
