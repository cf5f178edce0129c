"""Who the members are now, and where they listen.

Once the cluster runs version 2 the member list is replicated (core.state.ClusterState.members:
`hactl host add` / `host remove`); before that, and until the leader has recorded it, it is the
configuration's `[[cluster.members]]`. Each member also keeps the list it last applied in its
data directory (MEMBERS.json), so that a restarted member knows its Raft partners before it has
replayed anything, and a host that joined knows them although its configuration names only
itself. Fence agents stay in the configuration (a command to run is not something a client
may hand the cluster).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from .config import Config, Member
from .core.model import MemberRecord
from .core.state import ClusterState

MEMBERS_FILE = "MEMBERS.json"


class Membership:
    def __init__(self, config: Config, state: Callable[[], ClusterState]) -> None:
        self._state = state
        self._fence = {m.name: m.fence for m in config.members}
        self._configured = config.members
        # (the replicated dict it was built from, members, by name, by Raft address)
        self._cache: tuple[object, tuple[Member, ...], dict[str, Member], dict[str, Member]] \
            = (None, (), {}, {})

    def current(self) -> tuple[Member, ...]:
        return self._view()[1]

    def by_name(self, name: str) -> Member | None:
        return self._view()[2].get(name)

    def by_raft(self, addr: str | None) -> Member | None:
        return self._view()[3].get(addr or "")

    def _view(self) -> tuple[object, tuple[Member, ...], dict[str, Member], dict[str, Member]]:
        records = self._state().members
        cache = self._cache
        if cache[0] is not records:  # copy-on-write: a changed list is a new dict
            members = to_members(records, self._fence) if records else self._configured
            cache = self._cache = (records, members, {m.name: m for m in members},
                                   {m.raft: m for m in members})
        return cache


def to_members(records: Mapping[str, MemberRecord],
               fence: Mapping[str, tuple[str, ...]]) -> tuple[Member, ...]:
    return tuple(Member(r.name, r.raft, r.api, fence.get(r.name, ()), r.peer, r.web)
                 for r in sorted(records.values(), key=lambda r: r.name))


def save(data_dir: str, records: Mapping[str, MemberRecord]) -> None:
    """The applied member list, synced (written from the Raft thread, on a change only)."""
    path = Path(data_dir) / MEMBERS_FILE
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump([r.to_dict() for r in records.values()], f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def saved(data_dir: str) -> dict[str, MemberRecord] | None:
    """The member list this member last applied, or None if it never recorded one."""
    try:
        rows = json.loads((Path(data_dir) / MEMBERS_FILE).read_text())
        return {r["name"]: MemberRecord.from_dict(r) for r in rows}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{Path(data_dir) / MEMBERS_FILE}: unreadable ({exc}); move it "
                         "aside: the configuration's list is used then") from exc
