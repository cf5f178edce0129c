"""Who may do what: one table for every operation any front end offers, and the check every
front end calls (gRPC today, the web console and metrics later). Default deny: an operation
not in the table is refused.

People and tools present a bearer token; the cluster keeps only its sha256 (a random 256-bit
secret needs no slow hash), with a name, a role, an owner and an optional expiry. Members
present their certificate (mutual TLS on the member port): the name in it is who they are.
Roles, as vCenter's and Proxmox's: viewer (read and watch), operator (VM lifecycle,
migration, maintenance, balancing), admin (policy, rules, fencing, tokens, directory).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .certs import token_hash
from .core.model import Role
from .core.state import ClusterState
from .errors import fail

log = logging.getLogger(__name__)


class Need(Enum):
    """What an operation needs when it is not a role."""

    PUBLIC = "public"  # no credentials (a directory login: it checks a password itself)
    MEMBER = "member"  # a cluster member's certificate, on the member port


VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN
PUBLIC, MEMBER = Need.PUBLIC, Need.MEMBER

REQUIRED: dict[str, Role | Need] = {
    # reading and watching
    "GetStatus": VIEWER, "ListHosts": VIEWER, "GetHost": VIEWER, "GetVm": VIEWER,
    "ListVms": VIEWER, "ListIncidents": VIEWER, "GetIncident": VIEWER, "WatchEvents": VIEWER,
    "GetPolicy": VIEWER, "ExplainVm": VIEWER, "ListRules": VIEWER, "BalancePlan": VIEWER,
    "ListPools": VIEWER, "ListNetworks": VIEWER,
    "WhoAmI": VIEWER, "WhatIf": VIEWER, "ListAlarms": VIEWER,
    # the web console's own reads, its live stream, sessions, metrics
    "GetSummary": VIEWER, "ListOperations": VIEWER, "WatchLive": VIEWER, "GetHistory": VIEWER,
    "Metrics": VIEWER, "OpenSession": VIEWER, "CloseSession": VIEWER,
    # running VMs and hosts
    "CreateVm": OPERATOR, "ImportVm": OPERATOR, "ResizeVm": OPERATOR, "Console": OPERATOR,
    "StartVm": OPERATOR,
    "StopVm": OPERATOR, "DeleteVm": OPERATOR,
    "SetVmState": OPERATOR, "MigrateVm": OPERATOR, "SetMaintenance": OPERATOR,
    "BalanceRun": OPERATOR, "AckAlarm": OPERATOR,
    # the cluster's own settings, fencing and credentials
    "SetPolicy": ADMIN, "CreateRule": ADMIN, "DeleteRule": ADMIN, "ConfirmFenced": ADMIN,
    "AddMember": ADMIN, "RemoveMember": ADMIN,
    "CreateToken": ADMIN, "ListTokens": ADMIN, "RevokeToken": ADMIN,
    "GetDirectoryRoles": ADMIN, "SetDirectoryRoles": ADMIN,
    "CreateUser": ADMIN, "ListUsers": ADMIN, "DeleteUser": ADMIN,
    "CreatePool": ADMIN, "DeletePool": ADMIN, "CreateNetwork": ADMIN, "DeleteNetwork": ADMIN,
    # admin for anyone's; a user logged in with their password for their own (the service)
    "SetPassword": VIEWER,
    # members only
    "Heartbeat": MEMBER, "LiveMetrics": MEMBER, "History": MEMBER, "InspectDomain": MEMBER,
    "HostConsole": MEMBER, "ListMembers": MEMBER,
    # anyone (a password is checked against the directory)
    "Login": PUBLIC,
}


def operation(method: str, request: object) -> str:
    """The operation a call asks for: Balance plans (a read) or runs (a change)."""
    if method == "Balance":
        return "BalanceRun" if getattr(request, "apply", False) else "BalancePlan"
    return method


@dataclass(frozen=True)
class Caller:
    kind: str  # token | member | public
    name: str  # the token's name, or the member's
    role: Role | None
    peer: str  # where the call came from

    @property
    def actor(self) -> str:
        """Who, as the audit trail records it."""
        return f"{self.kind}:{self.name}" if self.name else self.kind


class RefusalLog:
    """Refused attempts, logged with the reason, at most one line per peer and reason a
    minute (a client retrying in a loop must not fill the disk)."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self.suppressed = 0

    def note(self, peer: str, why: str) -> None:
        key, now = (peer, why), self.clock()
        if now - self._last.get(key, float("-inf")) < self.every:
            self.suppressed += 1
            return
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = now
        log.warning("refused from %s: %s", peer, why)


class Authenticator:
    def __init__(self, state: Callable[[], ClusterState],
                 clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock
        self.refusals = RefusalLog()

    def check(self, op: str, token: str | None, member: str | None, peer: str) -> Caller:
        """The caller, or ApiError (unauthenticated: no or bad credentials; denied: not
        allowed), noted in the log."""
        try:
            return self._check(op, token, member, peer)
        except Exception as exc:
            self.refusals.note(peer, f"{op}: {exc}")
            raise

    def _check(self, op: str, token: str | None, member: str | None, peer: str) -> Caller:
        need = REQUIRED.get(op)
        if need is None:
            fail("denied", f"{op} is not an operation of this cluster")
        if need is PUBLIC:
            return Caller("public", "", None, peer)
        if need is MEMBER:
            if member is None:
                fail("unauthenticated", f"{op} is for cluster members: it needs a member "
                     "certificate from the cluster CA, on the member port")
            return Caller("member", member, None, peer)
        if not token:
            fail("unauthenticated", "no token: hactl takes one with --token, HACTL_TOKEN or "
                 "~/.config/hacluster/token; HTTP clients send Authorization: Bearer TOKEN")
        state = self.state()
        name = state.token_hashes.get(token_hash(token))
        record = state.tokens.get(name) if name else None
        if record is None:
            fail("unauthenticated", "unknown or revoked token")
        if record.expires_at and self.clock() >= record.expires_at:
            fail("unauthenticated", f"token {record.name} has expired")
        assert isinstance(need, Role)
        if record.role.rank < need.rank:
            fail("denied", f"permission denied: {op} needs the {need.value} role; token "
                 f"{record.name} has {record.role.value}")
        return Caller("token", record.name, record.role, peer)
