"""A real lab per test: haclusterd, libvirtd and keeper processes, driven through hactl."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hacluster.client import Client, ClientError

pytestmark = pytest.mark.cluster

# each lab its own 127.0.N.0/24, N cycling through 90-249 (a run starts more labs than fit)
_subnets = (90 + (os.getpid() + i) % 160 for i in itertools.count())


class LabRun:
    """One lab: hactl as a user runs it, plus each host's libvirt asked directly."""

    def __init__(self, root: Path, nodes: int) -> None:
        self.dir = root
        self.base_ip = f"127.0.{next(_subnets)}"
        self.nodes = nodes

    @property
    def ca_file(self) -> Path:
        return self.dir / "pki" / "ca.pem"

    @property
    def token(self) -> str:
        """The lab's bootstrap admin token."""
        return (self.dir / "pki" / "admin.token").read_text().strip()

    def client_at(self, apis: list[str], timeout: float = 10.0,
                  token: str | None = None) -> Client:
        """A client of these members, as the lab's admin unless given another token."""
        return Client(apis, timeout, ca=self.ca_file.read_bytes(),
                      token=self.token if token is None else token)

    def hactl(self, *args: str, endpoints: str | None = None, check: bool = True,
              token: str | None = None, timeout: float = 120.0, stdin: str = ""
              ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        if self.ca_file.exists():
            env["HACTL_CA"] = str(self.ca_file)
            env["HACTL_TOKEN"] = self.token if token is None else token
        if endpoints is not None:
            env["HACTL_ENDPOINTS"] = endpoints
        proc = subprocess.run([sys.executable, "-m", "hacluster.cli", *args], env=env,
                              capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and proc.returncode != 0:
            raise AssertionError(f"hactl {' '.join(args)} failed ({proc.returncode}): "
                                 f"{proc.stderr}")
        return proc

    def json(self, *args: str, endpoints: str | None = None) -> Any:
        out = self.hactl("--output", "json", *args, endpoints=endpoints or self.endpoints)
        return json.loads(out.stdout)

    def lab(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.hactl("lab", *args, "--dir", str(self.dir))

    def status(self) -> list[dict[str, Any]]:
        out = self.hactl("--output", "json", "lab", "status", "--dir", str(self.dir))
        rows: list[dict[str, Any]] = json.loads(out.stdout)
        return rows

    @property
    def endpoints(self) -> str:
        return ",".join(h["api"] for h in self.status())

    def domains(self, host: str) -> dict[str, tuple[int, int]]:
        """What the host's own libvirt runs: managed domain name -> (libvirt id, state)."""
        uri = next(h["libvirt_uri"] for h in self.status() if h["name"] == host)
        conn = libvirt.openReadOnly(uri)
        try:
            return {d.name(): (d.ID(), d.state()[0]) for d in conn.listAllDomains()
                    if d.name() != "test"}
        finally:
            conn.close()

    def running(self) -> dict[str, list[str]]:
        """VM name -> hosts whose libvirt reports it running."""
        seen: dict[str, list[str]] = {}
        for h in self.status():
            if h["pids"]["libvirtd"] is None:
                continue
            for name, (_id, state) in self.domains(h["name"]).items():
                if state == libvirt.VIR_DOMAIN_RUNNING:
                    seen.setdefault(name, []).append(h["name"])
        return seen


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (AssertionError, ClientError):  # not yet, or the member is not up yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.2)


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Callable[..., LabRun]]:
    """Start a lab: make_lab(nodes=3, profile="safe", fence_agent=False)."""
    if shutil.which("libvirtd") is None and not Path("/usr/sbin/libvirtd").exists():
        pytest.skip("libvirtd is not installed (Debian: libvirt-daemon)")
    started: list[LabRun] = []

    def make(nodes: int = 3, profile: str = "safe", fence_agent: bool = False,
             hypervisor: str = "test", extra: tuple[str, ...] = ()) -> LabRun:
        run = LabRun(tmp_path / f"lab{len(started)}", nodes)
        extra = (*extra, *(["--fence-agent"] if fence_agent else []), "--hypervisor",
                 hypervisor)
        started.append(run)
        # `lab up` waits up to 2 minutes for the cluster itself: let it say why, not time out
        run.hactl("lab", "up", "--dir", str(run.dir), "--nodes", str(nodes), "--base-ip",
                  run.base_ip, "--profile", profile, *extra, timeout=240)
        return run

    yield make
    for run in started:
        run.hactl("lab", "down", "--dir", str(run.dir), check=False)


@pytest.fixture
def lab3(make_lab: Callable[..., LabRun]) -> LabRun:
    return make_lab(3)
