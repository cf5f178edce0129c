"""Shared fixtures: a libvirt test-driver host of a given size, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacluster import certs

NODE_XML = """<node>
  <cpu>
    <mhz>2000</mhz><model>x86_64</model><active>{cpus}</active>
    <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
  </cpu>
  <memory>{memory_kib}</memory>
</node>
"""


@pytest.fixture
def host_uri(tmp_path: Path) -> str:
    """A private in-process test-driver host: 8 CPUs, 8 GiB, no domains."""
    path = tmp_path / "host.xml"
    path.write_text(NODE_XML.format(cpus=8, memory_kib=8 * 1024 * 1024))
    return f"test://{path}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cluster CA with certificates for the names tests use (solo, h1, h2, hv1...)."""
    root = tmp_path_factory.mktemp("pki")
    certs.init(root)
    for name in ("solo", "h1", "h2", "hv1", "hv2", "hv3", "ldap"):
        certs.issue(root, name, ["127.0.0.1"])
    return root


def tls_section(pki: Path, name: str) -> dict[str, str]:
    """The [tls] section of a config for member `name`."""
    return {"ca": str(pki / "ca.pem"), "cert": str(pki / f"{name}.pem"),
            "key": str(pki / f"{name}.key"),
            "admin_token_sha256_file": str(pki / "admin.token.sha256")}


def admin_token(pki: Path) -> str:
    return (pki / "admin.token").read_text().strip()
