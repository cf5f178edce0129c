"""Directory accounts (LDAP, as Proxmox's LDAP realms): a person logs in with a directory
password and gets a short-lived token whose role comes from their groups, mapped in the
replicated state (`hactl directory grant GROUP --role ROLE`).

A simple bind as the user over TLS (ldaps://, or StartTLS) proves the password; the groups are
read with that same bind, so no service account is needed. Roles are looked up at every
login: someone removed from a group loses its role at their next login (their current token
lasts until it expires, session_ttl, or is revoked). Failed logins are rate-limited per user
and per address.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Mapping

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from .config import Directory
from .core.model import Role
from .errors import fail

MAX_FAILURES = 5  # within WINDOW seconds, then LOCKOUT seconds of refusals
WINDOW = 60.0
LOCKOUT = 30.0


class Throttle:
    """Failed logins by user and by address: past MAX_FAILURES in WINDOW, refuse at once."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, keys: tuple[str, ...], now: float) -> None:
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < WINDOW]
                self._failures[key] = recent
                if len(recent) >= MAX_FAILURES and now - recent[-1] < LOCKOUT:
                    fail("unauthenticated", f"too many failed logins; try again in "
                         f"{LOCKOUT - (now - recent[-1]):.0f}s")

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, []).append(now)
                del self._failures[key][:-MAX_FAILURES * 2]
            if len(self._failures) > 10_000:
                self._failures.clear()


class DirectoryLogin:
    def __init__(self, config: Directory) -> None:
        self.config = config
        self.throttle = Throttle()

    def role_of(self, user: str, password: str, peer: str,
                roles: Mapping[str, Role]) -> Role:
        """The highest role the user's groups give, once the password is proven."""
        if not user or len(user) > 256 or not password or len(password) > 1024:
            fail("invalid", "give a user name and a password")
        now = time.monotonic()
        keys = (f"user:{user}", f"peer:{peer.rsplit(':', 1)[0]}")
        self.throttle.check(keys, now)
        cfg = self.config
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=cfg.ca or None,
                        version=ssl.PROTOCOL_TLS_CLIENT)
        server = ldap3.Server(cfg.url, use_ssl=cfg.url.startswith("ldaps://"), tls=tls,
                              connect_timeout=5)
        user_dn = cfg.user_dn.replace("{user}", escape_rdn(user))
        conn = ldap3.Connection(server, user=user_dn, password=password, receive_timeout=5,
                                raise_exceptions=False)
        try:
            conn.open()
            if cfg.start_tls and not conn.start_tls():
                fail("unavailable", f"the directory refused StartTLS: {conn.result}")
            if not conn.bind():
                self.throttle.failed(keys, now)
                fail("unauthenticated", "wrong user name or password")
            conn.search(cfg.group_base,
                        cfg.group_filter.replace("{dn}", escape_filter_chars(user_dn)),
                        attributes=[])
            groups = {str(entry.entry_dn).lower() for entry in conn.entries}
        except ldap_errors.LDAPException as exc:
            fail("unavailable", f"the directory at {cfg.url} cannot be reached: {exc}")
        finally:
            conn.unbind()
        granted = [role for group, role in roles.items() if group.lower() in groups]
        if not granted:
            fail("denied", f"permission denied: {user} is in no group that has a role here "
                 "(hactl directory grant GROUP --role ROLE)")
        return max(granted, key=lambda r: r.rank)
