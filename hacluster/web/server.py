"""The web server every member runs: the console's pages, its JSON API (/api/v1), its live
stream and Prometheus' /metrics, over HTTPS with the member's certificate.

On an asyncio loop of its own thread (aiohttp), apart from the gRPC server's: nothing a
browser does can hold up a heartbeat. Work that renders records runs in a small pool of its
own with a bounded queue (past it: 503 at once); reads come from the member's own replica,
writes go through the service layer like hactl's (validation, roles, the audit trail). Every
request is checked by the same Authenticator as the gRPC API (default deny).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from ..auth import Authenticator, Caller
from ..config import Config
from ..errors import ApiError, fail
from ..loopthread import LoopThread
from .feed import ChangeFeed
from .session import check_csrf, credentials

log = logging.getLogger(__name__)
T = TypeVar("T")

HTTP_STATUS = {"invalid": 400, "not_found": 404, "exists": 409, "conflict": 409, "busy": 503,
               "unavailable": 503, "disk_full": 507, "denied": 403, "unauthenticated": 401}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Strict-Transport-Security": "max-age=31536000",
           "Cross-Origin-Opener-Policy": "same-origin",
           "Cross-Origin-Resource-Policy": "same-origin"}
MAX_BODY = 64 * 1024


def error_response(code: str, message: str) -> web.Response:
    response = web.json_response({"error": message, "code": code},
                                 status=HTTP_STATUS.get(code, 400))
    if code == "unauthenticated":
        response.headers["WWW-Authenticate"] = 'Bearer realm="hacluster"'
    if code == "busy":
        response.headers["Retry-After"] = "1"
    return response


class WebServer:
    def __init__(self, config: Config, auth: Authenticator, feed: ChangeFeed,
                 routes: Callable[[WebServer], list[web.AbstractRouteDef]]) -> None:
        self.config = config
        self.address = config.me.web
        self.auth = auth
        self.limits = config.api
        self.pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="web")
        self.feed = feed
        self._routes = routes
        self._waiting = 0
        self._thread = LoopThread("web-loop", self._serve)
        self._loop = self._thread.loop
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # loops that run while it serves (the live stream's)
        self.background: list[Callable[[], Coroutine[Any, Any, None]]] = []

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start(f"cannot serve the web console on {self.address}")

    def tls(self) -> ssl.SSLContext:
        tls = self.config.tls
        assert tls is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(tls.cert_path, tls.key_path)
        return context

    async def _serve(self) -> None:
        self.app = app = web.Application(middlewares=[self._errors], client_max_size=MAX_BODY)
        app.on_response_prepare.append(self._headers)
        app.add_routes(self._routes(self))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, _, port = self.address.rpartition(":")
        site = web.TCPSite(runner, host, int(port), ssl_context=self.tls(), backlog=512)
        await site.start()
        self._runner = runner
        self._tasks = [asyncio.create_task(job()) for job in self.background]

    def stop(self) -> None:
        self._thread.stop(self._shutdown() if self._runner is not None else None, 3)
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- every request -----------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        """ApiError and aiohttp's own refusals, as JSON with the matching HTTP status."""
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.code, exc.message)
        except web.HTTPException as exc:
            if not request.path.startswith("/api/") or exc.status < 400:
                raise
            code = {401: "unauthenticated", 403: "denied", 404: "not_found",
                    503: "busy"}.get(exc.status, "invalid")
            message = ("no such endpoint" if exc.status == 404 else
                       f"method {request.method} not allowed here" if exc.status == 405
                       else exc.reason)
            response = error_response(code, message)
            response.set_status(exc.status)
            return response

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")

    def caller(self, request: web.Request, op: str) -> Caller:
        """Who sends the request, allowed to do `op` (ApiError otherwise); a request carried
        by the session cookie must also pass the CSRF check."""
        token, via_cookie = credentials(request)
        caller = self.auth.check(op, token, None, request.remote or "?")
        if via_cookie and token:
            check_csrf(request, token)
        return caller

    async def in_pool(self, fn: Callable[[], T]) -> T:
        """Run fn in the web pool, or refuse at once (busy) when the queue is full."""
        if self._waiting >= self.limits.workers + self.limits.queue:
            fail("busy", f"member busy: {self._waiting} requests in progress; retry shortly "
                 "or use another member")
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn)
        finally:
            self._waiting -= 1

    async def call(self, request: web.Request, op: str, fn: Callable[[Caller], T]) -> T:
        caller = self.caller(request, op)
        return await self.in_pool(lambda: fn(caller))

    def run_soon(self, job: Callable[..., Any], *args: Any) -> None:
        """From any thread: schedule job on the web loop."""
        self._loop.call_soon_threadsafe(job, *args)
