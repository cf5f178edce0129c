"""The gRPC front end: an asyncio server on a thread of its own, in front of the service layer.

Two ports, TLS on both (there is no plaintext port): the API port, where people and tools
present a bearer token; the member port, where members present their certificate (mutual
TLS: the cluster CA must have signed it). Every call is checked by auth.Authenticator before
it runs (default deny), and event streams are checked again every second, so a revoked or
expired token stops working everywhere within a second, streams included.

Why asyncio (the issue that 16 `hactl events --follow` took the whole cluster down): in
grpcio's threaded server every call, streams included, holds one of a fixed set of worker
threads, so watchers starved the heartbeats. Here:
- member calls (Heartbeat, LiveMetrics) run on the event loop itself, ahead of any client
  work: they are short and never block; the two that ask libvirt (InspectDomain,
  HostConsole) run in a small pool of their own;
- client calls run in a small pool of their own, with a bounded queue: past it, a client gets
  RESOURCE_EXHAUSTED at once, instead of everyone waiting;
- event streams are coroutines fed by EventLog's fan-out: no thread each, a capped number,
  and a reader that falls behind is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .auth import Authenticator, Caller, operation
from .config import Config
from .errors import ApiError
from .eventlog import EventLog, TooManyStreams
from .loopthread import LoopThread
from .membership import Membership
from .priority import like_the_daemon
from .service import ClusterService, MemberService
from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc

log = logging.getLogger(__name__)

STATUS = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "exists": grpc.StatusCode.ALREADY_EXISTS,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "busy": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "disk_full": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "denied": grpc.StatusCode.PERMISSION_DENIED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
}
# member calls that ask this host's libvirt (run off the event loop)
ASKS_LIBVIRT = {"InspectDomain", "HostConsole"}
CLUSTER = pb.DESCRIPTOR.services_by_name["Cluster"]
AGENT = pb.DESCRIPTOR.services_by_name["Agent"]


def caller_of(auth: Authenticator, membership: Membership, method: str, request: Any,
              context: aio.ServicerContext) -> Caller:
    """Who calls (ApiError if nobody we know, or not allowed to)."""
    metadata = dict(context.invocation_metadata() or ())
    header = str(metadata.get("authorization", ""))
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    names = (context.auth_context() or {}).get("x509_common_name") or []
    member = names[0].decode(errors="replace") if names else None
    if member is not None and membership.by_name(member) is None:
        member = None  # signed by our CA, but not one of our members
    return auth.check(operation(method, request), token, member, context.peer())


def on_loop(who: Callable[[str, Any, aio.ServicerContext], Caller], method: str,
            fn: Callable[[Any, Caller], Any]
            ) -> Callable[[Any, aio.ServicerContext], Awaitable[Any]]:
    """A member call: short and non-blocking, answered right on the event loop, once
    `who` (caller_of) has said who calls."""
    async def handler(request: Any, context: aio.ServicerContext) -> Any:
        try:
            return fn(request, who(method, request, context))
        except ApiError as exc:
            await context.abort(STATUS[exc.code], exc.message)
    return handler


def member_credentials(config: Config) -> grpc.ServerCredentials:
    """The member port's: mutual TLS, the caller's certificate signed by the cluster CA."""
    tls = config.tls
    assert tls is not None
    return grpc.ssl_server_credentials([(tls.key, tls.cert)], root_certificates=tls.ca,
                                       require_client_auth=True)


class ApiServer:
    def __init__(self, config: Config, cluster: ClusterService, member: MemberService,
                 events: EventLog, auth: Authenticator, member_port: bool = True) -> None:
        """member_port: also serve the member port (not when the Raft process does)."""
        self.config = config
        self.member_port = member_port
        self.address = config.me.api
        self.cluster = cluster
        self.member = member
        self.events = events
        self.auth = auth
        self.membership = member.membership
        self.limits = config.api
        events.max_streams = self.limits.streams
        # started by the event loop, whose priority they would inherit (priority.py)
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="api",
                                        initializer=like_the_daemon)
        self._libvirt_pool = ThreadPoolExecutor(2, thread_name_prefix="api-libvirt",
                                                initializer=like_the_daemon)
        self._waiting = 0  # client calls queued or running
        self._server: aio.Server | None = None
        self._health = health_aio.HealthServicer()
        # heartbeats and lease grants are answered on this loop, ahead of a busy host
        self._thread = LoopThread("api-loop", self._serve, nice=config.raft.critical_nice)
        self._loop = self._thread.loop

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start(f"cannot serve the API on {self.address}")

    async def _serve(self) -> None:
        server = aio.server(options=[("grpc.so_reuseport", 0)])
        rpc.add_ClusterServicer_to_server(self._cluster_servicer(), server)
        rpc.add_AgentServicer_to_server(self._member_servicer(), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (CLUSTER.full_name, AGENT.full_name, reflection.SERVICE_NAME, health.SERVICE_NAME),
            server)
        tls = self.config.tls
        assert tls is not None
        ports = [(self.address, grpc.ssl_server_credentials([(tls.key, tls.cert)]))]
        if self.member_port:
            ports.append((self.config.me.peer, member_credentials(self.config)))
        for address, credentials in ports:
            if server.add_secure_port(address, credentials) == 0:
                raise OSError(f"cannot listen on {address}")
        await server.start()
        await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        self._server = server

    def set_serving(self, serving: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        asyncio.run_coroutine_threadsafe(self._health.set("", status), self._loop)

    def stop(self, grace: float = 1.0) -> None:
        self._thread.stop(self._server.stop(grace) if self._server is not None else None,
                          grace + 2)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._libvirt_pool.shutdown(wait=False, cancel_futures=True)

    def forwarded(self, method: str, request: Any, caller: Caller,
                  reply: Callable[[bool, Any], None]) -> None:
        """A member call the Raft process took on the member port (memberport.py), answered
        as this server would answer it there: on the loop, or off it if it asks libvirt.
        reply(True, message) or reply(False, (code, message))."""
        async def run() -> None:
            fn = getattr(self.member, method)
            try:
                if method in ASKS_LIBVIRT:
                    answer = await self._loop.run_in_executor(self._libvirt_pool, fn, request,
                                                              caller)
                else:
                    answer = fn(request, caller)
            except ApiError as exc:
                reply(False, (exc.code, exc.message))
            except Exception as exc:
                log.exception("forwarded %s", method)
                reply(False, ("unavailable", f"{method} failed: {exc}"))
            else:
                reply(True, answer)
        asyncio.run_coroutine_threadsafe(run(), self._loop)

    # ---- servicers built from the service descriptors ----------------------------------------

    def _cluster_servicer(self) -> Any:
        servicer = rpc.ClusterServicer()
        for method in CLUSTER.methods:
            if method.server_streaming:
                continue
            setattr(servicer, method.name,
                    self._in_pool(method.name, getattr(self.cluster, method.name)))
        servicer.WatchEvents = self._watch_events  # type: ignore[method-assign]
        return servicer

    def _member_servicer(self) -> Any:
        servicer = rpc.AgentServicer()
        for method in AGENT.methods:
            fn = getattr(self.member, method.name)
            setattr(servicer, method.name, self._off_loop(method.name, fn)
                    if method.name in ASKS_LIBVIRT else self._on_loop(method.name, fn))
        return servicer

    def _caller(self, method: str, request: Any, context: aio.ServicerContext) -> Caller:
        return caller_of(self.auth, self.membership, method, request, context)

    def _in_pool(self, method: str, fn: Callable[[Any, Caller], Any]
                 ) -> Callable[[Any, aio.ServicerContext], Awaitable[Any]]:
        """A client call: checked, then run in the API pool, or refused at once when the
        queue is full."""
        async def handler(request: Any, context: aio.ServicerContext) -> Any:
            try:
                caller = self._caller(method, request, context)
            except ApiError as exc:
                await context.abort(STATUS[exc.code], exc.message)
            if self._waiting >= self.limits.workers + self.limits.queue:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"member busy: {self._waiting} requests in progress; "
                                    "retry shortly or use another member")
            self._waiting += 1
            try:
                return await self._loop.run_in_executor(self._pool, fn, request, caller)
            except ApiError as exc:
                await context.abort(STATUS[exc.code], exc.message)
            finally:
                self._waiting -= 1
        return handler

    def _on_loop(self, method: str, fn: Callable[[Any, Caller], Any]
                 ) -> Callable[[Any, aio.ServicerContext], Awaitable[Any]]:
        return on_loop(self._caller, method, fn)

    def _off_loop(self, method: str, fn: Callable[[Any, Caller], Any]
                  ) -> Callable[[Any, aio.ServicerContext], Awaitable[Any]]:
        """A member call that asks this host's libvirt, which may be slow or hung: in a pool
        of its own, so neither it nor client load can hold up the loop's heartbeats."""
        async def handler(request: Any, context: aio.ServicerContext) -> Any:
            try:
                caller = self._caller(method, request, context)
                return await self._loop.run_in_executor(self._libvirt_pool, fn, request, caller)
            except ApiError as exc:
                await context.abort(STATUS[exc.code], exc.message)
        return handler

    async def _watch_events(self, request: pb.WatchEventsRequest,
                            context: aio.ServicerContext) -> AsyncIterator[pb.Event]:
        try:
            self._caller("WatchEvents", request, context)
        except ApiError as exc:
            await context.abort(STATUS[exc.code], exc.message)
        if request.backlog < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "backlog must be >= 0")
        try:
            sub = self.events.subscribe(min(request.backlog, 1000))
        except TooManyStreams as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        try:
            while True:
                if not request.follow and not sub.backlog:
                    return
                event = await sub.next(timeout=1.0)
                try:  # a token revoked or expired meanwhile ends the stream within a second
                    self._caller("WatchEvents", request, context)
                except ApiError as exc:
                    await context.abort(STATUS[exc.code], exc.message)
                if sub.overflowed:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        "this stream fell too far behind and was dropped; "
                                        "reconnect to follow again")
                if event is not None:
                    yield pb.Event(seq=event.seq, ts=event.ts, kind=event.kind,
                                   message=event.message)
        finally:
            sub.close()
