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
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .config import Config, Member
from .core.model import MemberRecord
from .core.state import ClusterState
from .raft import Unavailable
from .raftproc import RaftMember
from .raftstore import write_atomically

log = logging.getLogger(__name__)

MEMBERS_FILE = "MEMBERS.json"
KEEP_EVERY = 1.0  # seconds between two looks at Raft's voters against the recorded ones
STRANDED_AFTER = 15.0  # seconds without a leader before a voter asks if it still is one


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
    return tuple(Member(r.name, r.raft, r.api, fence.get(r.name, ()), r.peer, r.web, r.voter)
                 for r in sorted(records.values(), key=lambda r: r.name))


def save(data_dir: str, records: Mapping[str, MemberRecord]) -> None:
    """The applied member list, synced (by Keeper, on a change only)."""
    write_atomically(Path(data_dir) / MEMBERS_FILE,
                     json.dumps([r.to_dict() for r in records.values()]).encode())


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


class Keeper:
    """Raft follows the replicated member list, one change at a time: on the leader, a
    recorded voter missing from Raft is added, a Raft voter no longer recorded as one is
    removed (never the leader itself: pysyncobj cannot); on every member, a learner the
    leader promoted becomes a voter (RaftNode.become_voter), and a voter its caught-up
    replica shows demoted a learner.

    A voter that hears no leader for STRANDED_AFTER asks the others whether it still is one:
    demoted while it was down and started while nobody answered (joining.fresher asks only
    then), it would wait for a leader that no longer counts it, for good; it becomes a
    learner instead.

    It also keeps MEMBERS_FILE, once the replica has caught up: a restarted member replays
    from a snapshot that may predate the last change, and writing the lists it passes through
    would put an older list on disk than the one it had already applied."""

    def __init__(self, name: str, raft: RaftMember, data_dir: str,
                 newer: Callable[[dict[str, MemberRecord]], dict[str, MemberRecord]]) -> None:
        """newer(records): the list another member holds if newer (joining.fresher)."""
        self.name = name
        self.raft = raft
        self.data_dir = data_dir
        self.last = ""
        self._on_disk: object = None  # the replicated dict last written (or found equal)
        self.newer = newer
        self._leaderless_since: float | None = None  # monotonic, as a voter
        self._asked = float("-inf")

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(KEEP_EVERY):
            try:
                said = self.step()
            except Unavailable as exc:
                said = f"membership change not done yet: {exc}"
            if said and said != self.last:
                log.info("%s", said)
            self.last = said

    def step(self) -> str:
        return "; ".join(said for said in (self.keep_file(), self.follow()) if said)

    def keep_file(self) -> str:
        """MEMBERS_FILE as applied; what went wrong writing it, if anything (tried again)."""
        records = self.raft.state.members
        if not records or records is self._on_disk or not self.raft.is_ready():
            return ""
        try:
            current = saved(self.data_dir)
        except ValueError:
            current = None  # unreadable: replaced by the applied list
        try:
            if current != dict(records):
                save(self.data_dir, records)
        except OSError as exc:
            return f"the member list could not be saved: {exc}"
        self._on_disk = records
        return ""

    def follow(self) -> str:
        state = self.raft.state
        me = state.members.get(self.name)
        if me is None or self.raft.halted:
            return ""
        if self.raft.voter and self.raft.leader_addr() is None:
            return self._stranded(state.members)
        self._leaderless_since = None
        if me.voter != self.raft.voter and self.raft.is_ready():
            voters = sorted(m.raft for m in state.members.values()
                            if m.voter and m.name != self.name)
            if me.voter:
                self.raft.become_voter(voters)
                return "promoted to Raft voter"
            self.raft.become_learner(voters)
            return "demoted while away (its replica says so): a Raft learner from now on"
        if not self.raft.is_leader():
            return ""
        wanted = {m.raft for m in state.members.values() if m.voter}
        actual = self.raft.raft_members()
        if missing := sorted(wanted - actual):  # one change at a time
            self.raft.change_membership(True, missing[0], timeout=10.0)
            return f"Raft voter added: {missing[0]}"
        if extra := sorted(actual - wanted - {self.raft.self_addr}):
            self.raft.change_membership(False, extra[0], timeout=10.0)
            return f"Raft voter removed: {extra[0]}"
        return ""

    def _stranded(self, records: dict[str, MemberRecord]) -> str:
        now = time.monotonic()
        if self._leaderless_since is None:
            self._leaderless_since = now
        if now - max(self._leaderless_since, self._asked) < STRANDED_AFTER:
            return ""
        self._asked = now
        theirs = self.newer(dict(records))
        mine = theirs.get(self.name)
        if mine is None:
            return ("no leader, and another member's list no longer holds this one: removed "
                    "(hactl host remove) while it was away")
        if mine.voter:
            return ""
        self.raft.become_learner(sorted(m.raft for m in theirs.values() if m.voter))
        return "no leader, and another member's list makes this one a learner: one from now on"
