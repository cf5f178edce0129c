"""The member port served by the Raft process (`raft.process = true`): heartbeats answered and
leases granted beside Raft, never behind the daemon's GIL.

Why: at 48 hosts and 10,000 VMs the Raft tick no longer waited for the leader daemon's GIL
(raftproc.py), but its heartbeat answers still did; a leader daemon starved for a second
answered nobody, then judged 17 hosts silent at once, marked them down, and so refused their
leases: every HA VM of those hosts was stopped for nothing.

How: the Raft process serves the member port (mutual TLS, this member's certificate).
Heartbeat is answered here, checked as the daemon checks it (heartbeat.checked), granted by
core.lease from this process's replica and majority proof, and forwarded to the daemon's
leader loop as ("beat", beat, when, granted). Forwarded beats travel in one queue with the
commands applied, and a grant is decided and queued under the lock the applied commands are
queued under: a grant made while the replica said a host was up reaches the daemon before the
command that marked it down, so the leader's recovery arithmetic (core.lease.recovery_at)
never misses one. Every 50 ms this port's loop queues ("heard", t): everything it answered
before t is on its way, so the daemon judges silence only up to the last mark it took
(live.LiveState.heard_until): a daemon that ran late sees late hosts, never silent ones.

Every other member call (live metrics, history, member list, libvirt's) is forwarded to the
daemon, which answers it as its own port would (api.ApiServer.forwarded).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from grpc import aio

from .api import AGENT, STATUS, caller_of, member_credentials, on_loop
from .auth import Authenticator, Caller
from .config import Config
from .core import lease
from .errors import ApiError, fail
from .heartbeat import NOT_LEADER, checked
from .loopthread import LoopThread
from .membership import Membership
from .raft import RaftNode
from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc

log = logging.getLogger(__name__)

HEARD_EVERY = 0.05  # seconds between two ("heard", t) marks
FORWARD_TIMEOUT = 60.0  # the most a forwarded call waits for the daemon (if no deadline)


class MemberPort:
    """Runs in the Raft process, beside the RaftNode whose replica and majority it grants
    leases from. `put` queues a message for the daemon; `order` is held while an applied
    command is queued."""

    def __init__(self, config: Config, node: RaftNode, order: threading.Lock,
                 put: Callable[[tuple[Any, ...]], None]) -> None:
        self.config, self.node, self.order, self.put = config, node, order, put
        self.membership = Membership(config, lambda: node.state)
        self.auth = Authenticator(lambda: node.state)
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._server: aio.Server | None = None
        self._marks: asyncio.Task[None] | None = None
        self._thread = LoopThread("member-port", self._serve, nice=config.raft.critical_nice
                                  if config.me.voter else 0)
        self._loop = self._thread.loop

    def _caller(self, method: str, request: Any, context: aio.ServicerContext) -> Caller:
        return caller_of(self.auth, self.membership, method, request, context)

    def start(self) -> None:
        self._thread.start(f"cannot serve the member port on {self.config.me.peer}")

    def stop(self) -> None:
        self._thread.stop(self._server.stop(0.5) if self._server is not None else None, 2.5)

    async def _serve(self) -> None:
        server = aio.server(options=[("grpc.so_reuseport", 0)])
        servicer = rpc.AgentServicer()
        for method in AGENT.methods:
            setattr(servicer, method.name, on_loop(self._caller, method.name, self.answer)
                    if method.name == "Heartbeat" else self._forwarding(method.name))
        rpc.add_AgentServicer_to_server(servicer, server)
        if server.add_secure_port(self.config.me.peer, member_credentials(self.config)) == 0:
            raise OSError(f"cannot listen on {self.config.me.peer}")
        await server.start()
        self._server = server
        self._marks = self._loop.create_task(self._mark_heard())  # held (the loop does not)

    async def _mark_heard(self) -> None:
        """On this loop, after the answers it made: each mark follows them in the queue.
        Only while this member leads: a follower's marks would wake its daemon 20 times a
        second for nothing."""
        while True:
            if self.node.is_leader():
                self.put(("heard", time.monotonic()))
            await asyncio.sleep(HEARD_EVERY)

    # ---- heartbeats ---------------------------------------------------------------------------

    def answer(self, request: pb.HeartbeatRequest, caller: Caller) -> pb.HeartbeatResponse:
        """The leader's answer (LeaderLoop.answer's, from this replica), and the beat queued
        for the daemon: decided and queued under `order` (module docstring)."""
        node = self.node
        beat = checked(request, caller.name, self.membership)
        with self.order:
            state = node.state
            term = node.term()
            leading = node.is_leader()
            # acting leader: our claim of this very term committed (LeaderLoop.begin)
            active = leading and (state.leader_term, state.leader) == (term, self.config.name)
            now = time.monotonic()
            if not active:
                if leading:  # its claim pending: a sign of life all the same (checked)
                    self.put(("beat", beat, now, False))
                fail("conflict", NOT_LEADER)
            fresh = lease.leader_fresh(active, term, term, node.majority_confirmed_at(), now,
                                       self.config.ha.grant_window)
            seconds, why = lease.grant(state, beat.host, fresh)
            self.put(("beat", beat, now, seconds > 0))
        return pb.HeartbeatResponse(leader_term=term, lease_seconds=seconds, message=why,
                                    revision=state.revision)

    # ---- every other member call: the daemon answers -----------------------------------------

    def _forwarding(self, method: str
                    ) -> Callable[[Any, aio.ServicerContext], Awaitable[Any]]:
        async def handler(request: Any, context: aio.ServicerContext) -> Any:
            try:
                caller = self._caller(method, request, context)
                return await self._forward(method, request, caller, context.time_remaining())
            except ApiError as exc:
                await context.abort(STATUS[exc.code], exc.message)
        return handler

    async def _forward(self, method: str, request: Any, caller: Any,
                       timeout: float | None) -> Any:
        ident = next(self._ids)
        future = self._waiting[ident] = self._loop.create_future()
        self.put(("member", ident, method, request, caller))
        try:
            ok, payload = await asyncio.wait_for(future, min(timeout or FORWARD_TIMEOUT,
                                                             FORWARD_TIMEOUT))
        except TimeoutError:
            fail("unavailable", f"{self.config.name}'s daemon did not answer {method} in time")
        finally:
            self._waiting.pop(ident, None)
        if not ok:
            fail(*payload)
        return payload

    def resolve(self, ident: int, ok: bool, payload: Any) -> None:
        """The daemon's answer to a forwarded call (from the thread that reads its messages)."""
        self._loop.call_soon_threadsafe(self._resolve, ident, ok, payload)

    def _resolve(self, ident: int, ok: bool, payload: Any) -> None:
        future = self._waiting.get(ident)
        if future is not None and not future.done():
            future.set_result((ok, payload))

