"""How a browser or a script proves who it is to the web server.

Scripts send `Authorization: Bearer TOKEN`, as to the gRPC API. Browsers log in once (with a
token, or a user and password) and get a session: a token of its own (`web-...`, owner
`session-of:TOKEN` or `ldap:USER`), kept in a cookie that page scripts cannot read
(`__Host-` prefix: Secure, Path=/, no Domain; HttpOnly; SameSite=Strict). Because the session
is a replicated token, every member accepts it (behind one address or a load balancer),
`hactl token list` shows it, and revoking it, or the token it was opened with, ends it
everywhere within a second.

CSRF: a request carried by the cookie that changes something must also send the header
X-CSRF-Token, a value derived from the session's secret that only the console's own pages
can read (GET /api/v1/session), and come from this origin when the browser says where it
comes from. Bearer requests need neither: a browser never adds that header on its own.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from ..errors import fail

COOKIE = "__Host-hacluster-session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), b"hacluster web csrf", hashlib.sha256).hexdigest()


def credentials(request: web.Request) -> tuple[str | None, bool]:
    """(the token presented, whether it came in the session cookie)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None, False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


def check_csrf(request: web.Request, secret: str) -> None:
    """For a cookie-carried request that changes something (ApiError denied if forged)."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"https://{request.host}":
        fail("denied", f"cross-site request refused (Origin {origin[:100]})")
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(given.encode(), csrf_token(secret).encode()):
        fail("denied", f"missing or wrong {CSRF_HEADER} header: reload the console")


def set_cookie(response: web.StreamResponse, secret: str) -> None:
    """A browser-session cookie (no Max-Age: it goes when the browser closes; the token's
    own expiry ends it server-side in any case)."""
    response.set_cookie(COOKIE, secret, path="/", secure=True, httponly=True,
                        samesite="Strict")


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
