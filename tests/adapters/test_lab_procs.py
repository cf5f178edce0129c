"""The lab's process helpers (hacluster.lab.procs): a process is the lab's only while its
command line says so, and one that ends says how, so that a daemon gone before writing a line
is not a mystery."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from hacluster.lab import procs


def _wait_reason(pid: int) -> str:
    deadline = time.monotonic() + 10
    while not (reason := procs.exit_reason(pid)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return reason


def test_a_spawned_process_is_alive_until_killed_and_then_says_how_it_ended(
        tmp_path: Path) -> None:
    pid = procs.spawn([sys.executable, "-c", "import time; time.sleep(60)",
                       "hacluster.lab.keeper"], tmp_path / "keeper.log")
    assert procs.alive(pid, "keeper")
    assert not procs.alive(pid, "haclusterd")  # the same pid, not that process
    assert procs.exit_reason(pid) == ""
    os.kill(pid, signal.SIGKILL)
    assert _wait_reason(pid) == "killed by SIGKILL"
    assert not procs.alive(pid, "keeper")


def test_an_exit_status_is_kept_and_output_goes_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "haclusterd.log"
    pid = procs.spawn([sys.executable, "-c", "print('bye'); raise SystemExit(3)"], log)
    assert _wait_reason(pid) == "exit status 3"
    assert log.read_text() == "bye\n"
    assert procs.exit_reason(os.getpid()) == ""  # not one of ours
