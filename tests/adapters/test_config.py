"""haclusterd's config file: a bad one is refused with the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hacluster import config as cfg

MEMBERS = [{"name": "h1", "raft": "10.0.0.1:7400", "api": "10.0.0.1:7401"},
           {"name": "h2", "raft": "10.0.0.2:7400", "api": "10.0.0.2:7401"}]


def good(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "h1", "cluster": {"secret": "s" * 32, "members": MEMBERS}}
    data.update(over)
    return data


def test_a_good_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("f" * 40 + "\n")
    path = tmp_path / "haclusterd.toml"
    path.write_text("""name = "h2"
libvirt_uri = "test:///default"
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
""")
    c = cfg.load(path)
    assert c.me.api == "10.0.0.2:7401" and [p.name for p in c.peers] == ["h1"]
    assert c.secret == "f" * 40 and c.capacity.memory_mib == 4096 and c.capacity.cpus is None
    assert c.raft.election_max == 1.0


@pytest.mark.parametrize(("data", "fragment"), [
    (good(cluster={"members": MEMBERS}), "secret"),
    (good(cluster={"secret": "short", "members": MEMBERS}), "at least 16"),
    (good(name="h9"), "not one of cluster.members"),
    (good(name="Bad Name"), "name"),
    (good(cluster={"secret": "s" * 32, "members": []}), "cluster.members"),
    (good(cluster={"secret": "s" * 32, "members": [{"name": "h1", "raft": "nope",
                                                    "api": "a:1"}]}), "host:port"),
    (good(cluster={"secret": "s" * 32, "members": MEMBERS + MEMBERS[:1]}), "unique"),
    (good(raft={"bogus": 1}), "raft"),
    (good(ha={"profile": "reckless"}), "ha.profile"),
    (good(ha={"lease": 0.5}), "lease .* must be at least 2 x heartbeat"),
    (good(ha={"margin": 0.01}), "margin"),
    (good(ha={"watchdog_seconds": 1}), "ha or raft"),
    (good(ha={"watchdog_device": "softdog"}), "watchdog_device must be"),
    (good(raft={"election_min": 0.1}), "election_min must be more than 3"),
])
def test_bad_files_are_refused(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(cfg.ConfigError, match=fragment):
        cfg.parse(data)


def test_profiles_and_watchdog_granularity() -> None:
    fast = cfg.parse(good(ha={"profile": "fast"}))
    assert fast.ha.lease == 1.0 and fast.raft.election_max == 0.3
    with pytest.raises(cfg.ConfigError, match="finer than the device allows"):
        cfg.parse(good(ha={"watchdog_device": "/dev/watchdog", "profile": "fast"}))


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="cannot read"):
        cfg.load(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(cfg.ConfigError, match="not valid TOML"):
        cfg.load(tmp_path / "bad.toml")


def test_the_shipped_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "systemd" / "haclusterd.toml.example"
    (tmp_path / "cluster.secret").write_text("z" * 32)
    text = example.read_text().replace("/etc/hacluster/cluster.secret",
                                       str(tmp_path / "cluster.secret"))
    (tmp_path / "haclusterd.toml").write_text(text)
    c = cfg.load(tmp_path / "haclusterd.toml")
    assert c.name == "hv1" and len(c.members) == 3 and c.libvirt_uri == "qemu:///system"
