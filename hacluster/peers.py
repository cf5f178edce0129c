"""Channels to the other members' member ports: mutual TLS with this member's certificate,
so the one called knows who calls (a heartbeat is accepted only from the member it names)."""

from __future__ import annotations

import threading

import grpc

from .config import Config, Member


class Peers:
    def __init__(self, config: Config) -> None:
        tls = config.tls
        assert tls is not None
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
        self._by_raft = {m.raft: m for m in config.members}
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def by_raft(self, raft_addr: str | None) -> Member | None:
        return self._by_raft.get(raft_addr or "")

    def channel(self, member: Member) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(member.peer)
            if channel is None:
                channel = self._channels[member.peer] = grpc.secure_channel(
                    member.peer, self._credentials)
            return channel

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
