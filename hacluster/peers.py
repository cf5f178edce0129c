"""Channels to the other members' member ports: mutual TLS with this member's certificate,
so the one called knows who calls (a heartbeat is accepted only from the member it names)."""

from __future__ import annotations

import threading

import grpc

from .config import Config, Member
from .membership import Membership


class Peers:
    def __init__(self, config: Config, membership: Membership) -> None:
        tls = config.tls
        assert tls is not None
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
        self.membership = membership
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def by_raft(self, raft_addr: str | None) -> Member | None:
        return self.membership.by_raft(raft_addr)

    def channel(self, member: Member) -> grpc.Channel:
        return self.channel_at(member.peer)

    def channel_at(self, peer: str) -> grpc.Channel:
        """A channel to a member port by its address (a joining host knows no member yet)."""
        with self._lock:
            channel = self._channels.get(peer)
            if channel is None:
                channel = self._channels[peer] = grpc.secure_channel(peer, self._credentials)
            return channel

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
