"""Small builders for core tests: commands with fresh ids, hosts and VMs with defaults."""

from __future__ import annotations

import itertools
from typing import Any

from hacluster.core import commands as c
from hacluster.core.state import ClusterState, Result

_ids = itertools.count(1)


def cid() -> str:
    return f"cmd-{next(_ids)}"


def register(state: ClusterState, name: str, cpus: int = 16, memory_mib: int = 8192,
             disk_gib: int = 100) -> Result:
    return state.apply(c.RegisterHost(id=cid(), name=name, raft_addr=f"{name}:1",
                                      api_addr=f"{name}:2", cpus=cpus, memory_mib=memory_mib,
                                      disk_gib=disk_gib, lease=2.5, watchdog=1.0))


def create(s: ClusterState, name: str, **kw: Any) -> Result:
    spec: dict[str, Any] = {"vcpus": 1, "memory_mib": 512, "uuid": f"uuid-{name}"}
    spec.update(kw)
    return s.apply(c.CreateVm(id=cid(), name=name, **spec))


def assign(state: ClusterState, vm: str, host: str, term: int = 0) -> Result:
    return state.apply(c.AssignVm(id=cid(), term=term, name=vm, host=host,
                                  expect_version=state.vms[vm].version))
