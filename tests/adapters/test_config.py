"""haclusterd's config file: a bad one is refused with the field named; so are key and
secret files others can read, weak secrets and certificates issued to another member."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hacluster import config as cfg

from ..conftest import tls_section

MEMBERS = [{"name": "h1", "raft": "10.0.0.1:7400", "api": "10.0.0.1:7401"},
           {"name": "h2", "raft": "10.0.0.2:7400", "api": "10.0.0.2:7401"}]
SECRET = "Hq8v2mTz0Lw5Rk1Nc7Yb3Xp9Js4Df6Ga"  # 32 random characters
PKI: Path


@pytest.fixture(autouse=True)
def _pki(pki: Path) -> Iterator[None]:
    global PKI
    PKI = pki
    yield


def good(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "h1", "cluster": {"secret": SECRET, "members": MEMBERS}}
    data.update(over)
    return data


def parse(data: dict[str, Any]) -> cfg.Config:
    """cfg.parse, with h1's certificate unless the data has its own [tls]."""
    return cfg.parse({"tls": tls_section(PKI, "h1"), **data})


def test_a_good_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "secret").chmod(0o640)
    path = tmp_path / "haclusterd.toml"
    tls = tls_section(PKI, "h2")
    path.write_text("""name = "h2"
libvirt_uri = "test:///default"
[tls]
ca = "CA"
cert = "CERT"
key = "KEY"
[cluster]
secret_file = "secret"
members = [
  { name = "h1", raft = "10.0.0.1:7400", api = "10.0.0.1:7401" },
  { name = "h2", raft = "10.0.0.2:7400", api = "10.0.0.2:7401" },
]
[capacity]
memory_mib = 4096
[raft]
election_min = 0.5
election_max = 1.0
""".replace("CA", tls["ca"]).replace("CERT", tls["cert"]).replace("KEY", tls["key"]))
    c = cfg.load(path)
    assert c.me.api == "10.0.0.2:7401" and [p.name for p in c.peers] == ["h1"]
    assert c.me.peer == "10.0.0.2:7403"  # the member port: the API port + 2 unless given
    assert c.secret == SECRET and c.capacity.memory_mib == 4096 and c.capacity.cpus is None
    assert c.raft.election_max == 1.0 and c.tls is not None and b"BEGIN" in c.tls.key


@pytest.mark.parametrize(("secret", "ok"), [
    ("s" * 32, False), ("short", False), ("password1234567890", False),
    ("correcthorsebatterystaple", False), (SECRET, True),
    ("kBx3Jq0p9uXyZ1vQw8rT2sLmN4aG7hCd", True)])
def test_secrets_need_real_entropy(secret: str, ok: bool) -> None:
    data = good(cluster={"secret": secret, "members": MEMBERS})
    if ok:
        assert parse(data).secret == secret
    else:
        with pytest.raises(cfg.ConfigError, match="random, 128 bits or more"):
            parse(data)


def test_key_and_secret_files_others_can_read_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET)
    os.chmod(tmp_path / "secret", 0o644)
    with pytest.raises(cfg.ConfigError, match="readable by others"):
        parse(good(cluster={"secret_file": str(tmp_path / "secret"), "members": MEMBERS}))
    key = tmp_path / "h1.key"
    key.write_bytes((PKI / "h1.key").read_bytes())
    os.chmod(key, 0o604)
    with pytest.raises(cfg.ConfigError, match=r"tls\.key .* readable by others"):
        parse(good(tls={**tls_section(PKI, "h1"), "key": str(key)}))


def test_tls_is_required_and_the_certificate_must_be_this_members() -> None:
    with pytest.raises(cfg.ConfigError, match=r"\[tls\] is required"):
        cfg.parse({"name": "h1", "cluster": {"secret": SECRET, "members": MEMBERS}})
    with pytest.raises(cfg.ConfigError, match="issued to 'h2', not to this member"):
        parse(good(tls=tls_section(PKI, "h2")))


@pytest.mark.parametrize(("data", "fragment"), [
    (good(cluster={"members": MEMBERS}), "secret"),
    (good(cluster={"secret": "short", "members": MEMBERS}), "128 bits"),
    (good(name="h9"), "not one of cluster.members"),
    (good(name="Bad Name"), "name"),
    (good(cluster={"secret": SECRET, "members": []}), "cluster.members"),
    (good(cluster={"secret": SECRET, "members": [{"name": "h1", "raft": "nope",
                                                  "api": "a:1"}]}), "host:port"),
    (good(cluster={"secret": SECRET, "members": MEMBERS + MEMBERS[:1]}), "unique"),
    (good(raft={"bogus": 1}), "raft"),
    (good(ha={"profile": "reckless"}), "ha.profile"),
    (good(ha={"lease": 0.5}), "lease .* must be at least 2 x heartbeat"),
    (good(ha={"margin": 0.01}), "margin"),
    (good(ha={"watchdog_seconds": 1}), "ha or raft"),
    (good(ha={"watchdog_device": "softdog"}), "watchdog_device must be"),
    (good(raft={"election_min": 0.1}), "election_min must be more than 3"),
    (good(raft={"critical_nice": -21}), "critical_nice must be -20 to 0"),
    (good(raft={"critical_nice": "high"}), "ha or raft"),
    (good(raft={"process": "yes"}), "raft.process must be true or false"),
])
def test_bad_files_are_refused(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(cfg.ConfigError, match=fragment):
        parse(data)


def test_profiles_and_watchdog_granularity() -> None:
    fast = parse(good(ha={"profile": "fast"}))
    assert fast.ha.lease == 1.0 and fast.raft.election_max == 0.3
    with pytest.raises(cfg.ConfigError, match="finer than the device allows"):
        parse(good(ha={"watchdog_device": "/dev/watchdog", "profile": "fast"}))


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="cannot read"):
        cfg.load(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(cfg.ConfigError, match="not valid TOML"):
        cfg.load(tmp_path / "bad.toml")


def test_the_shipped_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "systemd" / "haclusterd.toml.example"
    (tmp_path / "cluster.secret").write_text(SECRET)
    os.chmod(tmp_path / "cluster.secret", 0o640)
    text = example.read_text().replace("/etc/hacluster/cluster.secret",
                                       str(tmp_path / "cluster.secret"))
    for name in ("ca.pem", "hv1.pem", "hv1.key", "admin.token.sha256"):
        text = text.replace(f"/etc/hacluster/{name}", str(PKI / name))
    (tmp_path / "haclusterd.toml").write_text(text)
    c = cfg.load(tmp_path / "haclusterd.toml")
    assert c.name == "hv1" and len(c.members) == 3 and c.libvirt_uri == "qemu:///system"


def test_the_configuration_imports_no_adapter() -> None:
    # a config check (haclusterd --check, hactl) needs neither libvirt nor Raft nor gRPC
    probe = ("import sys, hacluster.config; print(sorted({'libvirt', 'pysyncobj', 'grpc', "
             "'hacluster.hypervisor', 'hacluster.raft'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
