"""Shared fixtures: a libvirt test-driver host of a given size, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

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
