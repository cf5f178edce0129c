"""The member list a member starts with, and how a new host joins.

A member starts with the list it last applied (membership.MEMBERS_FILE) if it has one: after a
`hactl host add` or `host remove` its configuration's list is out of date. A new host's
configuration names only itself and `[cluster] join`: it asks a member for the list (its
certificate, issued by the cluster CA, is accepted once `hactl host add` has recorded it),
then starts Raft with those partners and catches up from the leader (snapshot and log).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import grpc

from .config import Config
from .core.model import MemberRecord
from .core.state import ClusterState
from .membership import Membership, saved, to_members
from .peers import Peers
from .v1 import cluster_pb2 as pb
from .v1 import cluster_pb2_grpc as rpc

log = logging.getLogger(__name__)

ASK_AT_START = 4  # members asked (1 s each) whether the list changed while this one was away
ASK_EVERY = 2.0  # seconds between two rounds of asking the join addresses
SAY_EVERY = 10.0  # a line in the log at most this often while waiting


class NotAMember(Exception):
    """This host is not (or no longer) a member: its daemon must not run."""


def starting_config(config: Config, stop: threading.Event) -> Config | None:
    """config with the member list to start with; None if stopped while waiting to join."""
    records = saved(config.data_dir)
    if records is None and config.join:
        records = ask_to_join(config, stop)
        if records is None:
            return None
    elif records is not None:
        records = fresher(config, records)
    if records is None:
        return config
    if config.name not in records:
        raise NotAMember(f"{config.name} was removed from the cluster (hactl host remove): "
                         "to bring it back, `hactl host add` it and start it with an empty "
                         "data directory and a [cluster] join list")
    fence = {m.name: m.fence for m in config.members}
    return dataclasses.replace(config, members=to_members(records, fence))


def fresher(config: Config, records: dict[str, MemberRecord]) -> dict[str, MemberRecord]:
    """The list a running member holds, if one answers at once and it is newer than ours:
    a voter demoted while it was down learns that it comes back as a learner (as a voter it
    would be no Raft member any more), a host removed meanwhile that it is out."""
    peers = Peers(config, Membership(config, ClusterState))
    newest = max(r.version for r in records.values())
    try:
        for m in to_members(records, {})[:ASK_AT_START]:
            if m.name == config.name:
                continue
            try:
                theirs = ask(peers, m.peer, timeout=1.0)
            except grpc.RpcError:
                continue  # down, or starting too (a whole cluster powered on at once)
            if max((r.version for r in theirs.values()), default=0) > newest:
                log.info("the member list changed while this member was away: %s's is used",
                         m.name)
                return theirs
            return records
        return records
    finally:
        peers.close()


def ask(peers: Peers, addr: str, timeout: float) -> dict[str, MemberRecord]:
    """The member list a member's port answers with (grpc.RpcError if it does not)."""
    reply = rpc.AgentStub(peers.channel_at(addr)).ListMembers(pb.ListMembersRequest(),
                                                              timeout=timeout)
    return {m.name: MemberRecord(m.name, m.raft_addr, m.api_addr, m.peer_addr, m.web_addr,
                                 voter=m.voter, version=m.record_version)
            for m in reply.members}


def ask_to_join(config: Config, stop: threading.Event) -> dict[str, MemberRecord] | None:
    """The cluster's members, from the first join address that answers with a list naming
    this host; waits (saying why) until someone has run `hactl host add` for it."""
    peers = Peers(config, Membership(config, ClusterState))
    said = 0.0
    try:
        while not stop.is_set():
            why = []
            for addr in config.join:
                try:
                    records = ask(peers, addr, timeout=5.0)
                except grpc.RpcError as exc:
                    why.append(f"{addr}: {exc.details() or exc.code()}")
                    continue
                mine = records.get(config.name)
                me = config.me
                if mine is not None and (mine.raft, mine.api, mine.peer, mine.web) != (
                        me.raft, me.api, me.peer, me.web):
                    raise NotAMember(
                        f"the cluster added {config.name} as raft {mine.raft}, api {mine.api}, "
                        f"peer {mine.peer}, web {mine.web}; this configuration says {me.raft}, "
                        f"{me.api}, {me.peer}, {me.web}")
                if mine is not None:
                    log.info("joining through %s: %d members", addr, len(records))
                    return records
                why.append(f"{addr}: not added yet")
            if time.monotonic() - said > SAY_EVERY:
                said = time.monotonic()
                log.warning("waiting to join: run `hactl host add %s --raft %s --api %s` "
                            "(%s)", config.name, config.me.raft, config.me.api, "; ".join(why))
            stop.wait(ASK_EVERY)
        return None
    finally:
        peers.close()
