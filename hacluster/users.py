"""Local accounts' passwords: argon2id (RFC 9106's memory-hard hash, argon2-cffi's defaults:
3 passes over 64 MiB, 4 lanes), so the replicated hash resists guessing even from a copy of
the state. Hashing and checking run in the API's worker pool (about 50 ms each, by design);
failed logins are throttled per user and per address as directory logins are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .core.model import Role, User
from .directory import Throttle
from .errors import fail

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_hasher = PasswordHasher()
# checked against when the user does not exist, so an unknown name costs the same time
_DECOY = _hasher.hash("no such user: this hash only spends the time a real one would")


def password_error(password: str) -> str | None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    return None


def hash_password(password: str) -> str:
    if (err := password_error(password)) is not None:
        fail("invalid", err)
    return _hasher.hash(password)


class LocalLogin:
    def __init__(self) -> None:
        self.throttle = Throttle()

    def role_of(self, users: Mapping[str, User], name: str, password: str, peer: str
                ) -> Role | None:
        """The user's role once the password is proven; None if there is no such local
        user (a directory may know them); unauthenticated if the password is wrong."""
        if not name or len(name) > 256 or not password or len(password) > MAX_PASSWORD:
            fail("invalid", "give a user name and a password")
        now = time.monotonic()
        keys = (f"user:{name}", f"peer:{peer.rsplit(':', 1)[0]}")
        self.throttle.check(keys, now)
        user = users.get(name)
        try:
            _hasher.verify(user.password_hash if user else _DECOY, password)
        except (VerificationError, InvalidHashError):
            if user is not None:
                self.throttle.failed(keys, now)
                fail("unauthenticated", "wrong user name or password")
        return user.role if user is not None else None
