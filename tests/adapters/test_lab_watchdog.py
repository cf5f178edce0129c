"""The lab's watchdog process (hacluster.lab.watchdog): it powers its host off once an armed
deadline passes, not while re-armed in time or disarmed, and sleeps between messages rather
than polling (48 of them share the machine a big lab measures)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .procfs import wakeups


class Dog:
    def __init__(self, tmp: Path, victim_marker: str = "hacluster.daemon") -> None:
        # the lab tells its processes from whatever reuses their pids by their command line
        self.victim = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)", victim_marker])
        (tmp / "lab.json").write_text(json.dumps(
            {"hosts": [{"name": "h1", "pids": {"haclusterd": self.victim.pid}}]}))
        self.path = str(tmp / "h1.watchdog")
        self.log = tmp / "watchdog.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hacluster.lab.watchdog", self.path, str(tmp), "h1"],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while "listening" not in self.log.read_text():
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.02)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, message: str) -> None:
        self.sock.sendto(message.encode(), self.path)

    def arm(self, seconds: float) -> None:
        self.send(f"arm {time.monotonic() + seconds}")  # CLOCK_MONOTONIC is system-wide

    def close(self) -> None:
        for p in (self.proc, self.victim):
            p.kill()
            p.wait()
        self.sock.close()


@pytest.fixture
def dog(tmp_path: Path) -> Iterator[Dog]:
    d = Dog(tmp_path)
    yield d
    d.close()


def test_an_armed_watchdog_not_rearmed_powers_the_host_off_at_its_deadline(dog: Dog) -> None:
    dog.arm(0.5)
    armed = time.monotonic()
    assert dog.victim.wait(timeout=5) == -9
    took = time.monotonic() - armed
    assert 0.45 < took < 1.5, took
    assert dog.proc.wait(timeout=5) == 0
    assert "FIRED" in dog.log.read_text()


def test_a_pid_of_the_lab_now_held_by_another_process_is_left_alone(tmp_path: Path) -> None:
    """lab.json may name a pid that has since been reused (a host whose daemon exited, a lab
    gone and its watchdog not yet): firing kills only what is still that host's."""
    dog = Dog(tmp_path, victim_marker="someone.else")
    try:
        dog.arm(0.2)
        assert dog.proc.wait(timeout=5) == 0
        assert "FIRED" in dog.log.read_text()
        assert dog.victim.poll() is None
    finally:
        dog.close()


def test_rearmed_in_time_or_disarmed_it_leaves_the_host_running(dog: Dog) -> None:
    for _ in range(8):  # 2 s of renewals, each well before the last deadline
        dog.arm(0.6)
        time.sleep(0.25)
    dog.send("disarm")
    time.sleep(1.5)  # past every deadline it was given
    assert dog.victim.poll() is None
    assert dog.proc.poll() is None
    assert "FIRED" not in dog.log.read_text()
    assert "disarmed" in dog.log.read_text()


def test_disarmed_it_sleeps(dog: Dog) -> None:
    before = wakeups(str(dog.proc.pid))
    time.sleep(1.5)
    # polling every 20 ms woke it 75 times (0.3-0.4 % of a core each, 48 in a big lab)
    assert wakeups(str(dog.proc.pid)) - before < 10
