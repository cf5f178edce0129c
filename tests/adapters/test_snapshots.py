"""DESIGN rule 8 under load: readers hammer a live member (through the gRPC API and in
process) while its Raft thread applies thousands of commands (3,000 creates and deletes in
batches, and the leader's own); no reader ever sees a state
change under it or gets an answer that contradicts itself."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from hacluster.client import Client
from hacluster.core import commands as c
from hacluster.core.state import ClusterState
from hacluster.messages import vms_by_host

from ..conftest import admin_token
from .test_api import one_member

ROUNDS = 30
PER_ROUND = 50
MEMORY = 64


def hammer(tmp_path: Path, host_uri: str, pki: Path) -> list[str]:
    """Read hard while thousands of commands apply; what the readers found wrong."""
    with one_member(tmp_path, host_uri, pki) as (daemon, _client):
        raft = daemon.raft
        stop = threading.Event()
        errors: list[str] = []
        reads = {"api": 0, "local": 0}
        start_index = raft.status()["last_applied"]

        def api_reader() -> None:
            reader = Client([daemon.config.me.api], timeout=10,
                            ca=(pki / "ca.pem").read_bytes(), token=admin_token(pki))
            try:
                while not stop.is_set():
                    for host in reader.list_hosts():
                        # one answer, one state: what it lists on the host is what it counts
                        if host["memory_allocated_mib"] != MEMORY * len(host["vms"]):
                            errors.append(f"list_hosts: {host['name']} lists "
                                          f"{len(host['vms'])} VMs but "
                                          f"{host['memory_allocated_mib']} MiB allocated")
                    names = [vm["name"] for vm in reader.list_vms()]
                    if names != sorted(set(names)):
                        errors.append("list_vms: names repeated or out of order")
                    reads["api"] += 1
            except Exception as exc:  # any failure of a read is the finding
                errors.append(f"api reader: {exc!r}")
            finally:
                reader.close()

        def local_reader() -> None:
            try:
                while not stop.is_set():
                    state = raft.state
                    before = state.to_dict()
                    on_hosts = vms_by_host(state)
                    scanned: dict[str, list[str]] = {}
                    for vm in state.vms.values():
                        if vm.host is not None:
                            scanned.setdefault(vm.host, []).append(vm.name)
                    if {h: sorted(v) for h, v in scanned.items()} != on_hosts:
                        errors.append("the VMs by host changed between two passes")
                    if state.to_dict() != before:
                        errors.append("a published state changed while it was read")
                    reads["local"] += 1
            except Exception as exc:
                errors.append(f"local reader: {exc!r}")

        readers = [threading.Thread(target=api_reader), threading.Thread(target=api_reader),
                   threading.Thread(target=local_reader)]
        for t in readers:
            t.start()
        try:
            for r in range(ROUNDS):
                names = [f"s{r}-{i}" for i in range(PER_ROUND)]
                term = raft.state.leader_term  # batched as the leader batches its commands
                creates = tuple(c.CreateVm(id=uuid.uuid4().hex, ts=time.time(), term=term,
                                           name=name, uuid=str(uuid.uuid4()), vcpus=1,
                                           memory_mib=MEMORY) for name in names)
                deletes = tuple(c.DeleteVm(id=uuid.uuid4().hex, ts=time.time(), term=term,
                                           name=name) for name in names)
                for batch in (creates, deletes):
                    result = raft.propose(c.Batch(id=uuid.uuid4().hex, ts=time.time(),
                                                  term=term, commands=batch))
                    assert result.ok and all(p.ok for p in result.parts), result
        finally:
            stop.set()
            for t in readers:
                t.join(30)
        assert raft.status()["last_applied"] - start_index >= 2 * ROUNDS  # and the leader's
        assert reads["api"] > 20 and reads["local"] > 20, reads
        return errors


def test_readers_never_see_a_state_change_under_them(tmp_path: Path, host_uri: str,
                                                     pki: Path) -> None:
    errors = hammer(tmp_path, host_uri, pki)
    assert not errors, errors[:5]


def test_the_readers_catch_a_state_published_by_changing_it_in_place(
        tmp_path: Path, host_uri: str, pki: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: with copy-on-write off, apply changes the published state."""
    monkeypatch.setattr(ClusterState, "fork", lambda self: self)
    assert hammer(tmp_path, host_uri, pki)
